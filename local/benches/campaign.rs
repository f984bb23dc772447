//! A campaign run end to end on the release `hookline` binary: 100,000
//! profiles set with `POST /v1/profiles` (1,000 a call), a campaign whose
//! `where` matches them all, `POST /v1/campaigns/{id}/run`, and the time
//! until a local receiver answering 200 has every user (2,000 form posts
//! of 50). Next to it, in the same run, the floor: the same 2,000 posts
//! sent to the receiver straight from here, 40 at a time.
//! Run: `cargo bench -p hookline-local --bench campaign`.
//!
//! Settings (environment): `BENCH_PROFILES` (default 100,000),
//! `BENCH_HOOKLINE` (the binary to measure; default the one this build made).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "bench-admin-key-0123456789";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A receiver that answers 200 and counts the users posted to it.
async fn receiver(users: Arc<AtomicU64>) -> String {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let users = users.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let users = users.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let form: Vec<(String, String)> =
                                url::form_urlencoded::parse(&body).into_owned().collect();
                            let list: Vec<serde_json::Value> =
                                serde_json::from_str(&form[0].1).unwrap();
                            users.fetch_add(list.len() as u64, Ordering::Relaxed);
                            Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                                hyper::body::Bytes::from_static(b"ok"),
                            )))
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    base
}

fn hookline(dir: &std::path::Path) -> (Proc, String) {
    let binary =
        std::env::var_os("BENCH_HOOKLINE").unwrap_or_else(|| env!("CARGO_BIN_EXE_hookline").into());
    let mut cmd = Command::new(binary);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("HOOKLINE_ADMIN_KEY", ADMIN_KEY)
        .env("HOOKLINE_ALLOW_PRIVATE_TARGETS", "1")
        .env("HOOKLINE_LOG", "warn");
    let mut child = Proc(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("address printed").expect("readable");
        if let Some(addr) = line.strip_prefix("hookline listening on ") {
            std::thread::spawn(move || for _ in lines {});
            return (child, addr.trim().to_string());
        }
    }
}

fn profile(i: usize) -> serde_json::Value {
    serde_json::json!({"$distinct_id": format!("user{i:07}"), "$properties": {
        "plan": "pro", "Last Seen": "2026-10-01T10:00:00", "$city": "Los Angeles",
        "$email": format!("user{i}@example.com"), "seats": i % 50}})
}

/// The floor: the same posts, straight to the receiver.
async fn direct(base: &str, profiles: usize, users: &AtomicU64) -> Duration {
    hookline::egress::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let bodies: Vec<String> = (0..profiles)
        .collect::<Vec<_>>()
        .chunks(50)
        .map(|chunk| {
            let list: Vec<serde_json::Value> = chunk.iter().map(|i| profile(*i)).collect();
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("users", &serde_json::to_string(&list).unwrap())
                .finish()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    users.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (client, url, bodies, next) = (
                client.clone(),
                format!("{base}/direct"),
                bodies.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = bodies.get(i) else { break };
                    client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(users.load(Ordering::Relaxed), profiles as u64);
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let profiles: usize = std::env::var("BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let users = Arc::new(AtomicU64::new(0));
    let receiver_base = receiver(users.clone()).await;
    let floor = direct(&receiver_base, profiles, &users).await;

    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = hookline(dir.path());
    hookline::egress::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let start = Instant::now();
    for chunk in (0..profiles).collect::<Vec<_>>().chunks(1000) {
        let list: Vec<serde_json::Value> = chunk.iter().map(|i| profile(*i)).collect();
        let answer = client
            .post(format!("{base}/v1/profiles"))
            .bearer_auth(ADMIN_KEY)
            .json(&list)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let loading = start.elapsed();
    let answer = client
        .post(format!("{base}/v1/campaigns"))
        .bearer_auth(ADMIN_KEY)
        .json(
            &serde_json::json!({"name": "bench", "url": format!("{receiver_base}/mp"),
            "where": "user.plan == 'pro' && time(user['Last Seen']) < now - duration('504h')",
            "active": false,
            "schedule": {"type": "scheduled", "at": "03:00", "days": ["sun"]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let campaign: serde_json::Value = answer.json().await.unwrap();
    let id = campaign["id"].as_str().unwrap();
    users.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let answer = client
        .post(format!("{base}/v1/campaigns/{id}/run"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    while users.load(Ordering::Relaxed) < profiles as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "only {} users arrived",
            users.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let run = start.elapsed();
    println!("a campaign run end to end on one machine ({profiles} profiles, all in the audience)");
    println!(
        "  profiles set (POST /v1/profiles, 1,000 a call): {:.1} s, {:.0} profiles/s",
        loading.as_secs_f64(),
        profiles as f64 / loading.as_secs_f64()
    );
    println!(
        "  run: matched and delivered in {:.2} s ({:.0} users/s)",
        run.as_secs_f64(),
        profiles as f64 / run.as_secs_f64()
    );
    println!(
        "  floor (the same {} posts straight to the receiver): {:.2} s; the run takes {:.1}x as long",
        profiles.div_ceil(50),
        floor.as_secs_f64(),
        run.as_secs_f64() / floor.as_secs_f64()
    );
}
