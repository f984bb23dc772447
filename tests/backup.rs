//! `hookline backup`: a consistent copy of a running server's data, taken
//! under load, from which `hookline serve` starts with every request that
//! was answered before the backup began.

mod support;

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Admin;

/// Runs `hookline backup <to> --data-dir <data>`; answers success and output.
async fn backup(data: &std::path::Path, to: &std::path::Path) -> (bool, String) {
    let out = tokio::process::Command::new(support::binary())
        .arg("backup")
        .arg(to)
        .arg("--data-dir")
        .arg(data)
        .env_remove("HOOKLINE_DATA_DIR")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_every_request_answered_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, copy) = (dir.path().join("data"), dir.path().join("copy"));
    let a = Admin::start_in(&data);
    let trigger = a
        .create(
            "/v1/triggers",
            json!({"name": "Backed up", "identifier": "email", "transform": "email = email"}),
        )
        .await;
    let id = trigger["id"].as_str().unwrap().to_string();
    let url = trigger["url"].as_str().unwrap().to_string();

    // Load until told to stop (at most 20,000 requests), four at a time.
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|w| {
            let (accepted, stop, url) = (accepted.clone(), stop.clone(), url.clone());
            tokio::spawn(async move {
                let http = support::client();
                for n in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = json!({"email": format!("u{w}-{n}@example.com")});
                    let resp = http.post(&url).json(&body).send().await.unwrap();
                    let (status, v) = support::answer(resp).await;
                    assert_eq!(status, 200, "{v}");
                    let request = v["request_id"].as_str().unwrap().to_string();
                    accepted.lock().unwrap().push(request);
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of 300 requests accepted within 60 s",
            accepted.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: Vec<String> = accepted.lock().unwrap().clone();
    let (ok, out) = backup(&data, &copy).await;
    assert!(ok, "{out}");
    assert!(out.contains("backup written to"), "{out}");
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let all = accepted.lock().unwrap().len();
    assert!(all > before.len(), "the load went on during the backup");

    // A backup never writes over anything.
    let (ok, out) = backup(&data, &copy).await;
    assert!(!ok && out.contains("is not empty"), "{out}");
    let (status, _) = a.server.stop();
    assert!(status.success());

    // The copy serves, and applies what it holds queued.
    let restored = Admin::start_in(&copy);
    restored.all_applied(&id, &before).await;
    let (status, _) = restored.server.stop();
    assert!(status.success());

    // With no server running, the backup is made by the command itself.
    let offline = dir.path().join("offline");
    let (ok, out) = backup(&data, &offline).await;
    assert!(ok, "{out}");
    let a = Admin::start_in(&offline);
    let every: Vec<String> = accepted.lock().unwrap().clone();
    a.all_applied(&id, &every).await;
    let (status, _) = a.server.stop();
    assert!(status.success());

    // A backup cut short is never served as if it were whole.
    let cut = dir.path().join("cut");
    std::fs::create_dir_all(cut.join(".incomplete")).unwrap();
    let refused = support::Server::try_start(&cut, &[]).err().unwrap();
    assert!(
        refused.contains("a backup that did not finish"),
        "{refused}"
    );
}
