//! Cold start of every function's binary, as Lambda starts it: from exec to
//! its first poll of the Runtime API (its init), and to its answer to a
//! first invocation that reads the table (DynamoDB on moto); and its peak
//! memory. Beside two baselines built and measured the same way in the same
//! run: `hello` (a Lambda binary that does nothing) and `clients` (builds
//! the DynamoDB and SQS clients, then makes one `GetItem` an invocation).
//!
//! Build the binaries first (release, host architecture; the functions and
//! the baselines in two commands, or the baselines' HTTP/2 would be linked
//! into the functions), then run:
//!   cargo build --release -p hookline-ingest -p hookline-admin -p hookline-apply \
//!     -p hookline-deliver -p hookline-campaigns
//!   cargo build --release -p hookline-baseline
//!   cargo bench -p hookline-baseline --bench cold_start
//! `HOOKLINE_LAMBDA_BIN_DIR` (default `target/release`) picks the binaries,
//! `BENCH_RUNS` (default 7) the starts of each (in rounds: each case once
//! a round), `BENCH_ONLY` (a comma-separated
//! list of cases, the baselines always run) which functions.

use hookline::testkit::runtime::Running;
use std::path::PathBuf;
use std::time::Duration;

/// Each case: its name, its binary, and the event of its first invocation.
/// Where a fixture holds several SQS records, the first alone: one message
/// (for a trigger, or a webhook, that is not there).
fn cases() -> Vec<(&'static str, &'static str, String)> {
    let first_record = |fixture: &str| {
        let mut event: serde_json::Value = serde_json::from_str(fixture).expect("a JSON fixture");
        event["Records"]
            .as_array_mut()
            .expect("SQS records")
            .truncate(1);
        event.to_string()
    };
    vec![
        ("hello", "hello", "{}".into()),
        ("clients", "clients", "{}".into()),
        (
            "ingest",
            "ingest",
            include_str!("../../../events/ingest-hook.json").into(),
        ),
        (
            "admin",
            "admin",
            include_str!("../../../events/admin-list-lists.json").into(),
        ),
        (
            "apply",
            "apply",
            first_record(include_str!("../../../events/apply-sqs.json")),
        ),
        (
            "deliver",
            "deliver",
            first_record(include_str!("../../../events/deliver-sqs.json")),
        ),
        (
            "deliver tick",
            "deliver",
            include_str!("../../../events/deliver-release.json").into(),
        ),
        (
            "campaigns",
            "campaigns",
            include_str!("../../../events/campaigns-tick.json").into(),
        ),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let dir = std::env::var_os("HOOKLINE_LAMBDA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release"));
    let mut env = hookline::testkit::moto::aws::environment().await;
    let secret = hookline::testkit::moto::aws::secret("test-admin-key-0123456789").await;
    env.push(("HOOKLINE_ADMIN_KEY_SECRET".into(), secret));

    println!(
        "cold start, {runs} starts each, binaries in {}",
        dir.display()
    );
    println!(
        "{:<13} {:>10} {:>14} {:>10} {:>10} {:>10}",
        "case", "init ms", "1st answer ms", "peak MB", "init x", "answer x"
    );
    let only = std::env::var("BENCH_ONLY").ok();
    let chosen = |name: &str| {
        ["hello", "clients"].contains(&name)
            || only
                .as_deref()
                .is_none_or(|o| o.split(',').any(|c| c.trim() == name))
    };
    let cases: Vec<_> = cases().into_iter().filter(|c| chosen(c.0)).collect();
    for (_, binary, _) in &cases {
        let binary = dir.join(binary);
        assert!(
            binary.exists(),
            "{} is not built: see this file's header",
            binary.display()
        );
    }
    // Round after round, each case started once a round: the VM's speed
    // drifts over a run, and so drifts for every case alike.
    let mut seen = vec![(Vec::new(), Vec::new(), Vec::new()); cases.len()];
    for _ in 0..runs {
        for ((_, binary, event), (inits, answers, peaks)) in cases.iter().zip(&mut seen) {
            let f = Running::start(&dir.join(binary), &env).await;
            f.answer(event).await;
            answers.push(f.function.started.elapsed().as_secs_f64() * 1000.0);
            inits.push(f.init.as_secs_f64() * 1000.0);
            peaks.push(f.function.peak_kib().unwrap_or(0) as f64 / 1024.0);
            drop(f);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut base: Option<(f64, f64)> = None;
    for ((name, _, _), (inits, answers, peaks)) in cases.iter().zip(seen) {
        let (init, answer, peak) = (median(inits), median(answers), median(peaks));
        if *name == "clients" {
            base = Some((init, answer));
        }
        let ratio = |x: f64, b: Option<f64>| b.map_or("-".to_string(), |b| format!("{:.2}", x / b));
        println!(
            "{:<13} {:>10.1} {:>14.1} {:>10.1} {:>10} {:>10}",
            name,
            init,
            answer,
            peak,
            ratio(init, base.map(|b| b.0)),
            ratio(answer, base.map(|b| b.1)),
        );
    }
    println!("ratios: to `clients` (targets: init <= 1.5x, first answer <= 2x; peak <= 32 MB)");
}
