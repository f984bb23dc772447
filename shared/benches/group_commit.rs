//! Durable queue sends per second on the embedded adapter, with 1 and with 64
//! concurrent writers, next to the raw sync rate of the same disk measured in
//! the same run. Run: `cargo bench -p hookline --bench group_commit`.
//! `BENCH_DIR` picks the disk (default: a temporary directory under target/).

use hookline::adapters::embedded::{Embedded, EmbeddedQueue};
use hookline::ports::{Queue, SystemClock};
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

async fn sends_per_sec(queue: Arc<EmbeddedQueue>, writers: usize) -> (f64, Duration) {
    let count = Arc::new(AtomicU64::new(0));
    let worst = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (queue, count, worst) = (queue.clone(), count.clone(), worst.clone());
            tokio::spawn(async move {
                let body = format!("{{\"writer\":{w},\"payload\":\"{}\"}}", "x".repeat(200));
                while start.elapsed() < RUN {
                    let t = Instant::now();
                    queue.send(body.clone(), Duration::ZERO).await.unwrap();
                    worst.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
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

    for writers in [1usize, 64] {
        let db = Embedded::open(
            &dir.path().join(format!("q{writers}.redb")),
            Arc::new(SystemClock),
        )
        .unwrap();
        let queue = Arc::new(EmbeddedQueue::new(db, "bench", 8));
        let (rate, worst) = sends_per_sec(queue, writers).await;
        println!(
            "durable sends, {writers:>2} writer(s):            {rate:>10.0} sends/s  ({:.2}x the sync rate, slowest send {:.1} ms)",
            rate / sync,
            worst.as_secs_f64() * 1e3
        );
    }
}
