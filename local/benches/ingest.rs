//! `POST /hooks/{id}` on the release `hookline` binary under many concurrent
//! connections, next to a bare hyper server that reads the body and answers
//! 200, driven by the same load generator in the same run.
//! Run: `cargo bench -p hookline-local --bench ingest`.
//!
//! Phases: the bare server, closed loop; then hookline twice, with its apply
//! workers paused (the ingest face alone, as the `ingest` Lambda function
//! runs on AWS) and running (one machine doing everything on the same two
//! cores as the load generator): each closed loop, then a fresh server at half
//! of that maximum, open loop, latency measured from each request's scheduled
//! start (no coordinated omission).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Concurrent keep-alive connections (`BENCH_CONNECTIONS`, default 64).
fn connections() -> usize {
    std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}
const PHASE: Duration = Duration::from_secs(5);
const ADMIN_KEY: &str = "bench-admin-key-0123456789";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` and answers it with the address it prints after `prefix`.
fn spawn(mut cmd: Command, prefix: &str) -> (Proc, String) {
    // Owned by `Proc` at once, so every path out of here reaps it.
    let mut child = Proc(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("server printed its address")
            .expect("readable");
        if let Some(addr) = line.strip_prefix(prefix) {
            let addr = addr.trim().to_string();
            std::thread::spawn(move || for _ in lines {});
            return (child, addr);
        }
    }
}

async fn bare_server() {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!(
        "bare listening on http://{}",
        listener.local_addr().unwrap()
    );
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    std::hint::black_box(body);
                    let answer = r#"{"message":"Request captured successfully","request_id":"req_01jd0000000000000000000000"}"#;
                    Ok::<_, hyper::Error>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(hyper::body::Bytes::from(answer)))
                            .unwrap(),
                    )
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// A fresh hookline; `apply_workers` 0 measures the ingest face alone.
fn hookline(dir: &std::path::Path, apply_workers: usize) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--apply-workers",
        &apply_workers.to_string(),
        "--data-dir",
    ])
    .arg(dir)
    .env("HOOKLINE_ADMIN_KEY", ADMIN_KEY)
    .env("HOOKLINE_LOG", "warn");
    spawn(cmd, "hookline listening on ")
}

/// A trigger like the Mixmax seed: transform and a list.
async fn seed_trigger(client: &reqwest::Client, base: &str) -> String {
    let list: serde_json::Value = client
        .post(format!("{base}/v1/lists"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "Bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trigger: serde_json::Value = client
        .post(format!("{base}/v1/triggers"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({
            "name": "Bench", "transform": "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name",
            "actions": [{"type": "add_to_list", "list_id": list["id"]}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    trigger["url"].as_str().unwrap().to_string()
}

struct Result {
    rate: f64,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Result {
    fn pct(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

/// `connections()` keep-alive connections. With `rate`, each sends on a fixed
/// schedule (open loop); without, as fast as answers come (closed loop).
async fn drive(url: &str, rate: Option<f64>) -> Result {
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(connections())
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections())
        .map(|c| {
            let (client, url, stop) = (client.clone(), url.to_string(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let interval = rate.map(|r| Duration::from_secs_f64(connections() as f64 / r));
                let mut next = start + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections() as f64));
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if interval.is_some() {
                        tokio::time::sleep_until(next.into()).await;
                    } else {
                        next = Instant::now();
                    }
                    let body = format!(
                        r#"{{"candidate":{{"email":"c{c}-{i}@example.com","first_name":"John","last_name":"Doe","id":{i}}}}}"#
                    );
                    let ok = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if ok {
                        latencies.push(next.elapsed());
                    } else {
                        errors += 1;
                    }
                    if let Some(interval) = interval {
                        next += interval;
                    }
                    i += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    Result {
        rate: all.len() as f64 / elapsed,
        latencies: all,
        errors,
    }
}

fn show(name: &str, r: &Result, baseline: f64) {
    println!(
        "{name:<46} {:>9.0} req/s  {:>5.2}x   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
        r.rate,
        r.rate / baseline,
        r.pct(0.50).as_secs_f64() * 1e3,
        r.pct(0.99).as_secs_f64() * 1e3,
        r.errors
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if std::env::args().any(|a| a == "--bare-server") {
        runtime.block_on(bare_server());
        return;
    }
    runtime.block_on(async {
        println!(
            "ingest benchmark: {} connections, {} s per phase, loopback",
            connections(),
            PHASE.as_secs()
        );
        let mut bare_cmd = Command::new(std::env::current_exe().unwrap());
        bare_cmd.arg("--bare-server");
        let (bare, bare_addr) = spawn(bare_cmd, "bare listening on ");
        let bare_result = drive(&format!("{bare_addr}/hooks/x"), None).await;
        drop(bare);
        show(
            "bare hyper server (baseline)",
            &bare_result,
            bare_result.rate,
        );

        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for (workers, label) in [
            (0, "ingest alone (apply paused)"),
            (2, "ingest while applying"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (server, base) = hookline(dir.path(), workers);
            let url = seed_trigger(&client, &base).await;
            let max = drive(&url, None).await;
            drop(server);
            show(&format!("hookline, {label}, max"), &max, bare_result.rate);

            let dir = tempfile::tempdir().unwrap();
            let (_server, base) = hookline(dir.path(), workers);
            let url = seed_trigger(&client, &base).await;
            let half = drive(&url, Some(max.rate / 2.0)).await;
            show(
                &format!("  at half that ({:.0}/s, open loop)", max.rate / 2.0),
                &half,
                bare_result.rate,
            );
        }
    });
}
