//! Deliveries end to end on the release `hookline` binary: events
//! published with `POST /v1/events` (batches of 100), delivered signed to a
//! local receiver that answers 200, for one webhook and for 50; next to the
//! receiver's own ceiling, measured in the same run by a load generator
//! posting to it directly. Prints events and deliveries a second, p50/p99
//! from publish to the receiver's receipt of the first attempt, and
//! hookline's CPU seconds per 1,000 deliveries (from /proc).
//! Run: `cargo bench -p hookline-local --bench delivery`.
//!
//! Settings (environment): `BENCH_EVENTS` (events published a phase,
//! default 20,000 for one webhook; a fifth of it for 50), `BENCH_HOOKLINE`
//! (the binary to measure; default the one this build made).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ADMIN_KEY: &str = "bench-admin-key-0123456789";
const BATCH: usize = 100;
const PUBLISHERS: usize = 4;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// What the receiver saw: deliveries, and each one's delay since its
/// event was published (the `bench_ns` field the publisher put in it).
#[derive(Default)]
struct Seen {
    count: AtomicU64,
    delays_us: Mutex<Vec<u64>>,
}

async fn receiver(seen: Arc<Seen>) -> String {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let at = now_ns();
                            // The publish time, without parsing the whole body.
                            if let Some(i) = body.windows(10).position(|w| w == b"\"bench_ns\"") {
                                let digits: Vec<u8> = body[i + 11..]
                                    .iter()
                                    .skip_while(|b| !b.is_ascii_digit())
                                    .take_while(|b| b.is_ascii_digit())
                                    .copied()
                                    .collect();
                                if let Ok(t) =
                                    std::str::from_utf8(&digits).unwrap_or("").parse::<u64>()
                                {
                                    seen.delays_us
                                        .lock()
                                        .unwrap()
                                        .push(at.saturating_sub(t) / 1000);
                                }
                            }
                            seen.count.fetch_add(1, Ordering::Relaxed);
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
        .env("HOOKLINE_WEBHOOK_LIMIT", "100")
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

/// User and system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// Posts to the receiver directly from 64 connections for 3 s: its ceiling.
async fn ceiling(base: &str, seen: &Seen) -> f64 {
    hookline::egress::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = r#"{"event":"delivered","email":"a@example.com","id":"evt_x"}"#;
    let start_count = seen.count.load(Ordering::Relaxed);
    let start = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/ceiling"));
            tokio::spawn(async move {
                while start.elapsed() < Duration::from_secs(3) {
                    client
                        .post(&url)
                        .body(body)
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
    (seen.count.load(Ordering::Relaxed) - start_count) as f64 / start.elapsed().as_secs_f64()
}

async fn phase(webhooks: usize, events: usize, receiver_base: &str, seen: &Arc<Seen>) {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = hookline(dir.path());
    hookline::egress::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for i in 0..webhooks {
        let answer = client
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(ADMIN_KEY)
            .json(
                &serde_json::json!({"name": format!("bench {i}"), "events": ["delivered"],
                "channel": {"type": "web", "url": format!("{receiver_base}/w{i}"),
                            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    seen.count.store(0, Ordering::Relaxed);
    seen.delays_us.lock().unwrap().clear();
    let expected = (events * webhooks) as u64;
    let cpu_before = cpu_seconds(server.0.id());
    let start = Instant::now();
    let batches = events / BATCH;
    let next = Arc::new(AtomicU64::new(0));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let (client, base, next) = (client.clone(), base.clone(), next.clone());
            tokio::spawn(async move {
                while (next.fetch_add(1, Ordering::Relaxed) as usize) < batches {
                    let t = now_ns();
                    let list: Vec<serde_json::Value> = (0..BATCH)
                        .map(|i| serde_json::json!({"event": "delivered", "email": format!("{i}@example.com"),
                            "sending_domain": "mail.example.com", "bench_ns": t}))
                        .collect();
                    let answer = client
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(ADMIN_KEY)
                        .json(&serde_json::json!({"events": list}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(answer.status(), 202);
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let published = start.elapsed();
    while seen.count.load(Ordering::Relaxed) < expected {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{} of {expected} delivered",
            seen.count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = start.elapsed();
    let cpu = cpu_seconds(server.0.id()) - cpu_before;
    let mut delays = seen.delays_us.lock().unwrap().clone();
    delays.sort_unstable();
    let delivered = seen.count.load(Ordering::Relaxed);
    println!(
        "{webhooks:>2} webhook(s): {events} events published in {:.2} s, {delivered} deliveries in {:.2} s: \
         {:.0} events/s, {:.0} deliveries/s; publish -> receipt p50 {:.1} ms, p99 {:.1} ms; \
         {:.3} CPU s per 1,000 deliveries ({:.2} ms each)",
        published.as_secs_f64(),
        all.as_secs_f64(),
        events as f64 / all.as_secs_f64(),
        delivered as f64 / all.as_secs_f64(),
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
        cpu / delivered as f64 * 1000.0,
        cpu / delivered as f64 * 1000.0,
    );
    drop(server);
}

/// Publishes `rate` events a second (10 every 10 ms) for 5 s to one
/// webhook, below what it can take: the latency of a service not queueing.
async fn paced(rate: usize, receiver_base: &str, seen: &Arc<Seen>) {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = hookline(dir.path());
    hookline::egress::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(ADMIN_KEY)
        .json(
            &serde_json::json!({"name": "paced", "events": ["delivered"],
            "channel": {"type": "web", "url": format!("{receiver_base}/paced"),
                        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    seen.count.store(0, Ordering::Relaxed);
    seen.delays_us.lock().unwrap().clear();
    let per_tick = (rate / 100).max(1);
    let ticks = 500;
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let mut sends = Vec::new();
    for _ in 0..ticks {
        interval.tick().await;
        let (client, base) = (client.clone(), base.clone());
        sends.push(tokio::spawn(async move {
            let t = now_ns();
            let list: Vec<serde_json::Value> = (0..per_tick)
                .map(|i| serde_json::json!({"event": "delivered", "email": format!("{i}@example.com"), "bench_ns": t}))
                .collect();
            let answer = client
                .post(format!("{base}/v1/events"))
                .bearer_auth(ADMIN_KEY)
                .json(&serde_json::json!({"events": list}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 202);
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    let expected = (per_tick * ticks) as u64;
    let start = Instant::now();
    while seen.count.load(Ordering::Relaxed) < expected {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "paced: not all delivered"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut delays = seen.delays_us.lock().unwrap().clone();
    delays.sort_unstable();
    println!(
        " 1 webhook(s) at {} events/s for 5 s: publish -> receipt p50 {:.1} ms, p99 {:.1} ms",
        per_tick * 100,
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
    );
    drop(server);
}

fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let seen = Arc::new(Seen::default());
        let base = receiver(seen.clone()).await;
        let top = ceiling(&base, &seen).await;
        println!("receiver alone (64 connections posting to it): {top:.0} requests/s");
        phase(1, events, &base, &seen).await;
        paced(1000, &base, &seen).await;
        phase(50, events / 5, &base, &seen).await;
    });
}
