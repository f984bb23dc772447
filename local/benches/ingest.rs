//! `POST /hooks/{id}` on the release `hookline` binary under many concurrent
//! connections, next to a bare hyper server that reads the body and answers
//! 200, driven by the same load generator in the same run.
//! Run: `cargo bench -p hookline-local --bench ingest`.
//!
//! Phases: the bare server, closed loop; then hookline twice, with its apply
//! workers paused (the ingest face alone, as the `ingest` Lambda function
//! runs on AWS) and running (one machine doing everything on the same two
//! cores as the load generator, with its default apply workers): each closed
//! loop, then a fresh server at half of that maximum, open loop. While
//! applying, the closed loop's requests are also timed until applied. Last,
//! what the first closed loop left queued is applied by a server restarted
//! with its workers, timed. Open-loop latency counts from when a request
//! was due whenever its connection was still busy (no coordinated omission),
//! and from its send when the connection was idle but the generator's timer
//! woke late; the line also shows p99 counted from the schedule throughout.
//!
//! The generator is one thread writing HTTP/1.1 by hand on raw sockets, so
//! that it takes as little of the two cores as it can from the servers.
//!
//! Settings (environment): `BENCH_CONNECTIONS` (default 64);
//! `BENCH_HOOKLINE`, the `hookline` binary to measure (default: the one this
//! build made), so that two builds can be compared turn about;
//! `BENCH_RATE`, to run only the open-loop phase of hookline alone, and the
//! bare server, at that many requests/s (a quick, repeatable latency A/B);
//! with `BENCH_APPLYING` set, hookline applies meanwhile.

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

/// A fresh hookline: with its apply workers paused (the ingest face alone),
/// or with as many as it starts by default.
fn hookline(dir: &std::path::Path, paused: bool) -> (Proc, String) {
    let binary =
        std::env::var_os("BENCH_HOOKLINE").unwrap_or_else(|| env!("CARGO_BIN_EXE_hookline").into());
    let mut cmd = Command::new(binary);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    if paused {
        cmd.args(["--apply-workers", "0"]);
    }
    cmd.arg("--data-dir")
        .arg(dir)
        .env("HOOKLINE_ADMIN_KEY", ADMIN_KEY)
        .env("HOOKLINE_LOG", "warn");
    spawn(cmd, "hookline listening on ")
}

/// POSTs `body` to the admin API; answers the created object.
async fn create(
    client: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> serde_json::Value {
    let answer = client
        .post(url)
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer.json().await.unwrap()
}

/// A trigger like the Mixmax seed: transform and a list.
async fn seed_trigger(client: &reqwest::Client, base: &str) -> String {
    let list = create(
        client,
        format!("{base}/v1/lists"),
        serde_json::json!({"name": "Bench"}),
    )
    .await;
    let trigger = create(
        client,
        format!("{base}/v1/triggers"),
        serde_json::json!({
            "name": "Bench", "transform": "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name",
            "actions": [{"type": "add_to_list", "list_id": list["id"]}]
        }),
    )
    .await;
    trigger["url"].as_str().unwrap().to_string()
}

/// Waits, up to a minute, for the disk to be quiet again after a phase that
/// wrote a lot (applying a backlog writes hundreds of megabytes, and the
/// host keeps writing them out well after `sync` answers): until 50 small
/// syncs in a row each take under 2 ms. Called once the next phase's server
/// has started and its trigger exists, just before the load: otherwise that
/// latency would measure the previous phase's writes and the start's.
fn settle() {
    use std::io::Write;
    let _ = Command::new("sync").status();
    let path = std::env::temp_dir().join(format!("hookline-bench-settle-{}", std::process::id()));
    let start = Instant::now();
    let mut file = std::fs::File::create(&path).unwrap();
    while start.elapsed() < Duration::from_secs(60) {
        let quiet = (0..50).all(|_| {
            let t = Instant::now();
            file.write_all(&[0; 512]).unwrap();
            file.sync_data().unwrap();
            t.elapsed() < Duration::from_millis(2)
        });
        if quiet {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::fs::remove_file(&path);
    eprintln!(
        "  (the disk was quiet again after {:.1} s)",
        start.elapsed().as_secs_f64()
    );
}

/// Seconds until the contact of every connection's last accepted request
/// exists: the queue is received oldest first, so that is when the backlog
/// has been applied, give or take the messages in flight.
async fn drain(client: &reqwest::Client, base: &str, last: &[Option<u64>]) -> f64 {
    let start = Instant::now();
    let mut waiting: Vec<String> = last
        .iter()
        .enumerate()
        .filter_map(|(c, i)| i.map(|i| format!("c{c}-{i}@example.com")))
        .collect();
    while !waiting.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the backlog was not applied in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut still = Vec::new();
        for email in waiting {
            let status = client
                .get(format!("{base}/v1/contacts"))
                .query(&[("email", &email)])
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap()
                .status();
            match status.as_u16() {
                200 => {}
                404 => still.push(email),
                other => panic!("contact lookup answered {other}"),
            }
        }
        waiting = still;
    }
    start.elapsed().as_secs_f64()
}

struct Result {
    rate: f64,
    /// From when each request was sent, or from when it was due if the
    /// connection was still busy with the one before (open loop).
    latencies: Vec<Duration>,
    /// Open loop: from when each request was due, timer lateness included.
    from_schedule: Vec<Duration>,
    errors: usize,
    /// Per connection, the index of its last request answered 200.
    last: Vec<Option<u64>>,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// One keep-alive HTTP/1.1 connection that speaks just enough of the
/// protocol to POST and read the answer: far cheaper than a client library,
/// so that the generator leaves most of the two cores to the server measured.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(host: &str) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// POSTs `body` as JSON; answers the status.
    async fn post(&mut self, host: &str, path: &str, body: &str) -> std::io::Result<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bad = |what: &str| std::io::Error::other(what.to_string());
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.buf.clear();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(|_| bad("head"))?;
                let status = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("status line"))?;
                let length: usize = head
                    .split("\r\n")
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .ok_or_else(|| bad("an answer without content-length"))?;
                while self.buf.len() < end + 4 + length {
                    if self.stream.read_buf(&mut self.buf).await? == 0 {
                        return Err(bad("closed mid-answer"));
                    }
                }
                return Ok(status);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(bad("closed"));
            }
        }
    }
}

/// `connections()` keep-alive connections. With `rate`, each sends on a fixed
/// schedule (open loop); without, as fast as answers come (closed loop).
async fn drive(url: &str, rate: Option<f64>) -> Result {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections())
        .map(|c| {
            let (host, path, stop) = (host.to_string(), path.to_string(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut from_schedule = Vec::new();
                let mut errors = 0;
                let interval = rate.map(|r| Duration::from_secs_f64(connections() as f64 / r));
                let mut due = start
                    + interval.map_or(Duration::ZERO, |i| {
                        i.mul_f64(c as f64 / connections() as f64)
                    });
                let mut conn = None;
                let mut i = 0u64;
                let mut last = None;
                while !stop.load(Ordering::Relaxed) {
                    // tokio's timer wakes up to a millisecond late: when the
                    // connection was idle that lateness is the generator's,
                    // and latency counts from the send; when it was busy
                    // past `due`, from `due`.
                    let sent = match interval {
                        Some(_) if Instant::now() < due => {
                            tokio::time::sleep_until(due.into()).await;
                            Instant::now()
                        }
                        Some(_) => due,
                        None => Instant::now(),
                    };
                    if conn.is_none() {
                        conn = Conn::open(&host).await.ok();
                    }
                    let body = format!(
                        r#"{{"candidate":{{"email":"c{c}-{i}@example.com","first_name":"John","last_name":"Doe","id":{i}}}}}"#
                    );
                    let status = match conn.as_mut() {
                        Some(conn) => conn.post(&host, &path, &body).await.ok(),
                        None => None,
                    };
                    if status == Some(200) {
                        last = Some(i);
                        latencies.push(sent.elapsed());
                        if interval.is_some() {
                            from_schedule.push(due.elapsed());
                        }
                    } else {
                        errors += 1;
                        if status.is_none() {
                            conn = None;
                        }
                    }
                    if let Some(interval) = interval {
                        due += interval;
                    }
                    i += 1;
                }
                (latencies, from_schedule, errors, last)
            })
        })
        .collect();
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut from_schedule, mut errors, mut last) =
        (Vec::new(), Vec::new(), 0, Vec::new());
    for t in tasks {
        let (l, s, e, i) = t.await.unwrap();
        latencies.extend(l);
        from_schedule.extend(s);
        errors += e;
        last.push(i);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    from_schedule.sort();
    Result {
        rate: latencies.len() as f64 / elapsed,
        latencies,
        from_schedule,
        errors,
        last,
    }
}

fn show(name: &str, r: &Result, baseline: f64) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut line = format!(
        "{name:<46} {:>9.0} req/s  {:>5.2}x   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
        r.rate,
        r.rate / baseline,
        ms(pct(&r.latencies, 0.50)),
        ms(pct(&r.latencies, 0.99)),
        r.errors
    );
    if !r.from_schedule.is_empty() {
        line += &format!(
            "   (p99 from schedule {:.2} ms)",
            ms(pct(&r.from_schedule, 0.99))
        );
    }
    println!("{line}");
}

fn main() {
    if std::env::args().any(|a| a == "--bare-server") {
        // A server gets every core, as hookline's runtime does.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(bare_server());
        return;
    }
    // The load generator keeps to one thread, as `wrk -t1` would.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "ingest benchmark: {} connections, {} s per phase, loopback",
            connections(),
            PHASE.as_secs()
        );
        let mut bare_cmd = Command::new(std::env::current_exe().unwrap());
        bare_cmd.arg("--bare-server");
        // Kept for the whole run (idle, it costs nothing): after each open
        // loop it is driven at the same rate, the latency baseline.
        let (_bare, bare_addr) = spawn(bare_cmd, "bare listening on ");
        let bare_url = format!("{bare_addr}/hooks/x");
        hookline::egress::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
        if let Some(rate) = std::env::var("BENCH_RATE").ok().map(|r| {
            r.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .expect("BENCH_RATE: requests per second")
        }) {
            let applying = std::env::var_os("BENCH_APPLYING").is_some();
            let dir = tempfile::tempdir().unwrap();
            let (_server, base) = hookline(dir.path(), !applying);
            let url = seed_trigger(&client, &base).await;
            settle();
            let r = drive(&url, Some(rate)).await;
            let what = if applying { "applying" } else { "alone" };
            show(
                &format!("hookline {what} at {rate:.0}/s, open loop"),
                &r,
                rate,
            );
            let r = drive(&bare_url, Some(rate)).await;
            show("bare server at that rate", &r, rate);
            return;
        }
        let bare_result = drive(&bare_url, None).await;
        show(
            "bare hyper server (baseline)",
            &bare_result,
            bare_result.rate,
        );

        // What ingest alone left queued, applied last: it writes hundreds of
        // megabytes, which the open loops after it would have measured.
        let mut backlog = None;
        for (paused, label) in [
            (true, "ingest alone (apply paused)"),
            (false, "ingest while applying"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (server, base) = hookline(dir.path(), paused);
            let url = seed_trigger(&client, &base).await;
            let max = drive(&url, None).await;
            show(&format!("hookline, {label}, max"), &max, bare_result.rate);
            if !paused {
                // Accepted is not done: what was left queued when the load
                // stopped, applied, gives the rate of requests done.
                let secs = drain(&client, &base, &max.last).await;
                let done = max.latencies.len() as f64;
                let rate = done / (PHASE.as_secs_f64() + secs);
                println!(
                    "{:<46} {rate:>9.0} req/s  {:>5.2}x   ({done:.0} applied {secs:.1} s after the load stopped)",
                    "  accepted and applied",
                    rate / bare_result.rate,
                );
            }
            drop(server);
            if paused {
                backlog = Some((dir, max.last.clone(), max.latencies.len()));
            }

            let dir = tempfile::tempdir().unwrap();
            let (_server, base) = hookline(dir.path(), paused);
            let url = seed_trigger(&client, &base).await;
            settle();
            let half = drive(&url, Some(max.rate / 2.0)).await;
            show(
                &format!("  at half that ({:.0}/s, open loop)", max.rate / 2.0),
                &half,
                bare_result.rate,
            );
            let same = drive(&bare_url, Some(max.rate / 2.0)).await;
            show("  bare server at that rate", &same, bare_result.rate);
        }
        if let Some((dir, last, queued)) = backlog {
            // A server restarted with its workers and nothing else to do.
            let (_server, base) = hookline(dir.path(), false);
            let secs = drain(&client, &base, &last).await;
            let rate = queued as f64 / secs;
            println!(
                "{:<46} {rate:>9.0} req/s  {:>5.2}x   ({queued} queued requests applied in {secs:.1} s)",
                "hookline applying what ingest alone queued",
                rate / bare_result.rate,
            );
        }
    });
}
