//! Transform evaluations per second on one core, for the Mixmax seed
//! transform on its seed payload, next to a baseline in the same run:
//! hand-written Rust that reads the same two fields (the floor any evaluator
//! pays), and the transform evaluated by CEL alone (no fast path).
//! Run: `cargo bench -p hookline --bench transform`.

use hookline::transforms::Transform;
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SEED: &str =
    "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name";
const RUN: Duration = Duration::from_secs(2);

fn rate(mut f: impl FnMut() -> usize) -> f64 {
    for _ in 0..10_000 {
        black_box(f());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..1000 {
            black_box(f());
        }
        n += 1000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn native(p: &Map<String, Value>) -> usize {
    let c = &p["candidate"];
    let email = c["email"].as_str().unwrap().to_string();
    let name = format!(
        "{} {}",
        c["first_name"].as_str().unwrap(),
        c["last_name"].as_str().unwrap()
    );
    email.len() + name.len()
}

fn main() {
    let payload = json!({"candidate": {"email": "john@example.com", "first_name": "John", "last_name": "Doe", "id": 4411, "tags": ["referral"]}});
    let payload = payload.as_object().unwrap();
    let t = Transform::compile(SEED).unwrap();
    let out = t.apply(payload).unwrap();
    assert_eq!(
        (out.email.as_deref(), out.name.as_deref()),
        (Some("john@example.com"), Some("John Doe"))
    );

    let base = rate(|| native(payload));
    let cel = rate(|| {
        t.apply_with(payload, false)
            .unwrap()
            .name
            .map_or(0, |n| n.len())
    });
    let fast = rate(|| t.apply(payload).unwrap().name.map_or(0, |n| n.len()));
    println!("transform evaluations on one core (seed transform, seed payload)");
    println!("  hand-written Rust (baseline):  {base:>12.0} evals/s  1.00x");
    println!(
        "  CEL interpreter alone:         {cel:>12.0} evals/s  {:.2}x",
        cel / base
    );
    println!(
        "  Hookline transform (fast path):{fast:>12.0} evals/s  {:.2}x",
        fast / base
    );
}
