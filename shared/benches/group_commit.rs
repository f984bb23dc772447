//! Durable queue sends (the log) and item puts (redb) per second on the
//! embedded adapters, with 1 and with 64 concurrent writers, next to the raw
//! sync rate of the same disk measured in the same run. Run: `cargo bench -p hookline --bench group_commit`.
//! `BENCH_DIR` picks the disk (default: a temporary directory under target/).

use hookline::adapters::embedded::{Embedded, EmbeddedQueue, EmbeddedStore};
use hookline::ports::{Key, Put, Queue, Store, SystemClock};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(3);

/// Syncs per second of small appends to one file: what a commit per write
/// would be capped by.
fn raw_sync_rate(dir: &std::path::Path) -> f64 {
    let path = dir.join("sync-probe");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = [7u8; 512];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(path).unwrap();
    rate
}

/// Runs `op` from `writers` concurrent tasks for `RUN`: answers operations
/// per second and the slowest one.
async fn rate<F, Fut>(writers: usize, op: F) -> (f64, Duration)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let count = Arc::new(AtomicU64::new(0));
    let worst = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (op, count, worst) = (op.clone(), count.clone(), worst.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while start.elapsed() < RUN {
                    let t = Instant::now();
                    op(w, i).await;
                    worst.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (rate, Duration::from_micros(worst.load(Ordering::Relaxed)))
}

fn show(what: &str, writers: usize, (rate, worst): (f64, Duration), sync: f64) {
    println!(
        "{what}, {writers:>2} writer(s): {rate:>10.0} /s  ({:>5.2}x the sync rate, slowest {:.1} ms)",
        rate / sync,
        worst.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let base = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    println!("group commit benchmark, disk under {}", base.display());

    let sync = raw_sync_rate(dir.path());
    println!("raw sync rate (512 B append + fdatasync): {sync:>10.0} syncs/s");

    let body = format!("{{\"payload\":\"{}\"}}", "x".repeat(200));
    for writers in [1usize, 64] {
        let log = dir.path().join(format!("q{writers}.log"));
        let queue = Arc::new(EmbeddedQueue::open(&log, 8, Arc::new(SystemClock)).unwrap());
        let body = body.clone();
        let result = rate(writers, move |_, _| {
            let (queue, body) = (queue.clone(), body.clone());
            async move {
                queue.send(body, Duration::ZERO).await.unwrap();
            }
        })
        .await;
        show("durable queue sends (log) ", writers, result, sync);
    }
    for writers in [1usize, 64] {
        let db = Embedded::open(
            &dir.path().join(format!("s{writers}.redb")),
            Arc::new(SystemClock),
        )
        .unwrap();
        let store = Arc::new(EmbeddedStore::new(db));
        let doc = serde_json::json!({"payload": "x".repeat(200)});
        let result = rate(writers, move |w, i| {
            let (store, doc) = (store.clone(), doc.clone());
            async move {
                let key = Key::new(format!("bench#{w}"), format!("{i:08}"));
                store.put(Put::new(key, doc)).await.unwrap();
            }
        })
        .await;
        show("durable item puts (redb)  ", writers, result, sync);
    }
}
