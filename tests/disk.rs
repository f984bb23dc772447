//! A full disk under the data directory, for real: a size-limited tmpfs
//! mounted for the test (the tests run as root, here and in CI). Ingest
//! refuses with 503 while it is full, `/health` says why, and once space is
//! back everything recovers by itself with every accepted request applied.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::Admin;

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk has no room left; answers its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 64 << 10];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                break;
            }
        }
        // Whatever fits in the last bytes too.
        while f.write_all(&[7u8]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `/health` on a connection of its own: a refused request's connection is
/// closed by the server (its body unread), and a pooled client could send
/// the next request on it just as it closes.
async fn health(a: &Admin) -> (u16, Value) {
    let fresh = support::client();
    support::answer(fresh.get(a.server.url("/health")).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_503_then_recovers_by_itself_losing_nothing() {
    let disk = SmallDisk::mount("48m");
    let a = Admin::start_in(&disk.path().join("data"));
    let trigger = a
        .create(
            "/v1/triggers",
            json!({"name": "Full disk", "identifier": "email", "transform": "email = email"}),
        )
        .await;
    let (id, url) = (
        trigger["id"].as_str().unwrap().to_string(),
        trigger["url"].as_str().unwrap().to_string(),
    );
    let pad = "x".repeat(48 << 10);
    let mut accepted = Vec::new();
    let mut send = async |n: usize| -> u16 {
        let body = json!({"email": format!("user{n}@example.com"), "pad": pad});
        // A refusal must be read as an answer: no connection reset mid-body.
        let resp = a
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("an answer");
        let retry_after = resp.headers().get("retry-after").cloned();
        let (status, v) = support::answer(resp).await;
        match status {
            200 => accepted.push(v["request_id"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!(v["error"]["code"], "storage_unavailable", "{v}");
                assert!(retry_after.is_some(), "503 without Retry-After");
            }
            _ => panic!("{status}: {v}"),
        }
        status
    };
    for n in 0..20 {
        assert_eq!(send(n).await, 200);
    }

    let filler = disk.fill();
    // The queue log has room allocated ahead; past it, refusals.
    let mut n = 20;
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused < 5 {
        assert!(
            Instant::now() < deadline,
            "no 503 within 60 s of a full disk"
        );
        if send(n).await == 503 {
            refused += 1;
        }
        n += 1;
    }
    let (status, v) = health(&a).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{v}"
    );

    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = health(&a).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not healthy 30 s after space came back: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for m in n..n + 20 {
        assert_eq!(send(m).await, 200, "accepted again once space is back");
    }

    // Every request answered 200, before, during and after, is applied.
    a.all_applied(&id, &accepted).await;
    let (dead, v) = a.get("/v1/dead-letters").await;
    assert_eq!(dead, 200, "{v}");
    assert_eq!(v["data"], json!([]), "nothing was dead-lettered: {v}");
    let (status, out) = a.server.stop();
    assert!(status.success(), "{status}");
    // Both failed and recovered: the queue log, and the store under it.
    assert!(
        out.iter().any(|l| l.contains("the store failed a write")),
        "the store was never refused a write: {out:?}"
    );
}
