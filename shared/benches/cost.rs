//! What a unit of work costs on AWS: per inbound webhook, per delivery and
//! per profile a campaign matches and posts. Counted on the embedded
//! platform, which runs the same code as the Lambda functions, taken for a
//! shared store (DynamoDB: caches expire, counters are written):
//! - the store's reads and writes, with DynamoDB's capacity units from each
//!   item's size, and the queues' sends;
//! - each function's time: every store and queue call made to take
//!   `BENCH_ROUND_TRIP_MS` (default 4: the cold-start benchmark's moto round
//!   trip, and DynamoDB's and SQS's single-digit milliseconds), every
//!   endpoint `BENCH_ENDPOINT_MS` (default 100) to answer; queue work in
//!   batches of ten, as the event sources hand it over under load.
//!
//! Then priced with the list prices below (us-east-1, on demand, arm64).
//! docs/cost.md shows the arithmetic.
//! Run: `cargo bench -p hookline --bench cost` (`BENCH_UNITS`, default 200
//! webhooks and deliveries; `BENCH_PROFILES`, default 5,000).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline::Platform;
use hookline::accounts::DEFAULT_ACCOUNT as ACCOUNT;
use hookline::ports::queue::{Queue, QueueError, QueueMessage};
use hookline::ports::{Cond, Item, Key, Page, Put, Query, Store, StoreError, Write};
use hookline::work::{Handler, Removal};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// List prices, us-east-1, in dollars per million.
const API_REQUESTS: f64 = 1.00; // HTTP API requests
const LAMBDA_REQUESTS: f64 = 0.20;
const LAMBDA_GB_SECONDS: f64 = 13.3334; // arm64, per million GB-s
const SQS_REQUESTS: f64 = 0.40; // standard queue, 64 KB each
const READ_UNITS: f64 = 0.125; // DynamoDB on demand
const WRITE_UNITS: f64 = 0.625;

fn env_ms(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_millis(ms)
}

/// What every store and queue call takes (`BENCH_ROUND_TRIP_MS`).
fn round_trip() -> Duration {
    static RT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *RT.get_or_init(|| env_ms("BENCH_ROUND_TRIP_MS", 4))
}

/// Calls and capacity units, as DynamoDB would bill them on demand.
#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
    /// Read units: strongly consistent, 4 KB each (a query's items summed).
    rru: AtomicU64,
    /// Write units: 1 KB each item, twice in a transaction.
    wru: AtomicU64,
    /// Queue requests that send (a batch of ten is one).
    sends: AtomicU64,
    /// Messages sent.
    messages: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> [u64; 6] {
        [
            &self.reads,
            &self.writes,
            &self.rru,
            &self.wru,
            &self.sends,
            &self.messages,
        ]
        .map(|c| c.load(Relaxed))
    }
}

/// An item's size as DynamoDB counts it, near enough: its keys and its
/// JSON body.
fn size(key: &Key, body: &serde_json::Value) -> u64 {
    (key.pk.len() + key.sk.len() + body.to_string().len() + 16) as u64
}

fn units(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

struct Counting(Arc<dyn Store>, Arc<Counts>);

/// Write units by the kind of item (its partition key's word after the
/// account), for `BENCH_WHERE=1`: each report shows those of its steps.
static BY_KIND: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());

fn note_kind(key: &Key, wru: u64) {
    if std::env::var_os("BENCH_WHERE").is_none() {
        return;
    }
    let kind = key.pk.split('#').nth(1).unwrap_or(&key.pk).to_string();
    let mut all = BY_KIND.lock().unwrap();
    match all.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, n)) => *n += wru,
        None => all.push((kind, wru)),
    }
}

impl Counting {
    /// The size of the item under `key` now (read uncounted: DynamoDB
    /// knows it without a read).
    async fn old(&self, key: &Key) -> u64 {
        match self.0.get(key).await {
            Ok(Some(item)) => size(key, &item.body),
            _ => 0,
        }
    }
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        tokio::time::sleep(round_trip()).await;
        let got = self.0.get(key).await?;
        self.1.reads.fetch_add(1, Relaxed);
        let bytes = got.as_ref().map_or(0, |i| size(key, &i.body));
        self.1.rru.fetch_add(units(bytes, 4096), Relaxed);
        Ok(got)
    }
    async fn put(&self, put: Put) -> Result<u64, StoreError> {
        tokio::time::sleep(round_trip()).await;
        self.1.writes.fetch_add(1, Relaxed);
        // Billed on the larger of the item before and after.
        let bytes = self.old(&put.key).await.max(size(&put.key, &put.body));
        self.1.wru.fetch_add(units(bytes, 1024), Relaxed);
        note_kind(&put.key, units(bytes, 1024));
        self.0.put(put).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        tokio::time::sleep(round_trip()).await;
        self.1.writes.fetch_add(1, Relaxed);
        let n = units(self.old(key).await, 1024);
        self.1.wru.fetch_add(n, Relaxed);
        note_kind(key, n);
        self.0.delete(key, cond).await
    }
    /// One `UpdateItem` on DynamoDB, billed on the larger of the item
    /// before and after.
    async fn set_fields(
        &self,
        key: &Key,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<u64, StoreError> {
        tokio::time::sleep(round_trip()).await;
        self.1.writes.fetch_add(1, Relaxed);
        let (before, after) = match self.0.get(key).await {
            Ok(Some(item)) => {
                let before = size(key, &item.body);
                let mut body = item.body;
                if let Some(object) = body.as_object_mut() {
                    object.extend(fields.clone());
                }
                (before, size(key, &body))
            }
            _ => (0, 0),
        };
        let n = units(before.max(after), 1024);
        self.1.wru.fetch_add(n, Relaxed);
        note_kind(key, n);
        self.0.set_fields(key, fields).await
    }
    async fn add(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        tokio::time::sleep(round_trip()).await;
        self.1.writes.fetch_add(1, Relaxed);
        self.1.wru.fetch_add(1, Relaxed);
        note_kind(key, 1);
        self.0.add(key, delta, expires_at).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        tokio::time::sleep(round_trip()).await;
        let page = self.0.query(query).await?;
        self.1.reads.fetch_add(1, Relaxed);
        let bytes: u64 = page.items.iter().map(|i| size(&i.key, &i.body)).sum();
        self.1.rru.fetch_add(units(bytes, 4096), Relaxed);
        Ok(page)
    }
    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        tokio::time::sleep(round_trip()).await;
        self.1.writes.fetch_add(1, Relaxed);
        let mut items = 0;
        for w in &writes {
            let (key, n) = match w {
                Write::Put(p) => (
                    &p.key,
                    units(self.old(&p.key).await.max(size(&p.key, &p.body)), 1024),
                ),
                Write::Delete { key, .. } => (key, units(self.old(key).await, 1024)),
            };
            note_kind(key, 2 * n);
            items += n;
        }
        // The adapter writes these with TransactWriteItems: twice the units.
        self.1.wru.fetch_add(items * 2, Relaxed);
        self.0.write_all(writes).await
    }
    /// As DynamoDB: caches expire, counters are kept in the store.
    fn shared(&self) -> bool {
        true
    }
    async fn sync(&self) -> Result<(), StoreError> {
        self.0.sync().await
    }
    fn trouble(&self) -> Option<String> {
        self.0.trouble()
    }
    fn generation(&self) -> u64 {
        self.0.generation()
    }
}

struct CountingQueue(Arc<dyn Queue>, Arc<Counts>);

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, body: String, delay: Duration) -> Result<String, QueueError> {
        tokio::time::sleep(round_trip()).await;
        self.1.sends.fetch_add(1, Relaxed);
        self.1.messages.fetch_add(1, Relaxed);
        self.0.send(body, delay).await
    }
    async fn send_batch(
        &self,
        messages: Vec<(String, Duration)>,
    ) -> Result<Vec<String>, QueueError> {
        tokio::time::sleep(round_trip()).await;
        self.1.sends.fetch_add(1, Relaxed);
        self.1.messages.fetch_add(messages.len() as u64, Relaxed);
        self.0.send_batch(messages).await
    }
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        self.0.receive(max, visibility, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.0.delete(receipt).await
    }
    async fn retry_after(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.0.retry_after(receipt, after).await
    }
    async fn postpone(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.0.postpone(receipt, after).await
    }
    async fn dead_letter(&self, message: &QueueMessage) -> Result<(), QueueError> {
        self.0.dead_letter(message).await
    }
    async fn receive_dead(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        self.0.receive_dead(max, visibility).await
    }
    async fn delete_dead(&self, receipt: &str) -> Result<(), QueueError> {
        self.0.delete_dead(receipt).await
    }
    async fn redrive(&self, max: usize) -> Result<usize, QueueError> {
        self.0.redrive(max).await
    }
    fn max_receives(&self) -> u32 {
        self.0.max_receives()
    }
    fn trouble(&self) -> Option<String> {
        self.0.trouble()
    }
}

/// The embedded platform with every store and queue call counted.
async fn platform(counts: &Arc<Counts>) -> (Arc<Platform>, tempfile::TempDir) {
    let (base, dir) = hookline::testkit::platform().await;
    let queues = base.queues();
    let queue =
        |q: Arc<dyn Queue>| -> Arc<dyn Queue> { Arc::new(CountingQueue(q, counts.clone())) };
    let p = Platform::new(
        Arc::new(Counting(base.store.clone(), counts.clone())),
        hookline::platform::Queues {
            apply: queue(queues.apply),
            delivery: queue(queues.delivery),
            campaigns: queue(queues.campaigns),
        },
        base.clock.clone(),
        base.settings.clone(),
    );
    (p, dir)
}

/// Handles every message of `queue` with `handler`, as a Lambda function's
/// event source would (batches of ten), each batch an invocation, timed.
async fn drain(queue: &Arc<dyn Queue>, handler: &dyn Handler, work: &mut Work) -> u64 {
    let mut handled = 0;
    loop {
        let batch = queue
            .receive(10, Duration::from_secs(60), Duration::from_millis(200))
            .await
            .expect("receive");
        if batch.is_empty() {
            return handled;
        }
        handled += batch.len() as u64;
        let started = Instant::now();
        let outcomes = handler.handle(&batch).await;
        work.invoked(started);
        // The event source receives and deletes each batch.
        work.sqs += 2;
        hookline::work::settle(&**queue, &batch, &outcomes, Removal::ByWorker).await;
    }
}

/// One function's share of a unit of work.
struct Work {
    function: &'static str,
    memory_mb: u64,
    http: bool,
    invocations: u64,
    /// Billed: each invocation rounded up to the millisecond.
    billed_ms: u64,
    /// Queue requests not made by the code: the event source's.
    sqs: u64,
}

impl Work {
    /// `memory_mb` as `template.yaml` gives the function.
    fn new(function: &'static str, memory_mb: u64, http: bool) -> Self {
        Self {
            function,
            memory_mb,
            http,
            invocations: 0,
            billed_ms: 0,
            sqs: 0,
        }
    }

    fn invoked(&mut self, started: Instant) {
        self.invocations += 1;
        self.billed_ms += started.elapsed().as_micros().div_ceil(1000) as u64;
    }
}

/// A step of a flow: one function's work and the calls it made, priced
/// per million units.
struct Step {
    what: &'static str,
    work: Work,
    calls: [u64; 6],
}

impl Step {
    fn dollars(&self, n: u64) -> [f64; 5] {
        let per = |x: u64| x as f64 / n as f64; // per unit, = millions per million
        let [_, _, rru, wru, sends, _] = self.calls;
        let gb_s = self.work.billed_ms as f64 / 1000.0 * self.work.memory_mb as f64 / 1024.0;
        [
            // Each invocation of an HTTP function is an API request.
            if self.work.http {
                per(self.work.invocations) * API_REQUESTS
            } else {
                0.0
            },
            per(self.work.invocations) * LAMBDA_REQUESTS + gb_s / n as f64 * LAMBDA_GB_SECONDS,
            per(sends + self.work.sqs) * SQS_REQUESTS,
            per(rru) * READ_UNITS,
            per(wru) * WRITE_UNITS,
        ]
    }
}

fn report(flow: &str, unit: &str, plural: &str, n: u64, steps: &[Step]) {
    let mut kinds = std::mem::take(&mut *BY_KIND.lock().unwrap());
    kinds.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (kind, wru) in kinds.iter().take(8) {
        println!(
            "  write units {:>8.2} per {unit}: {kind}",
            *wru as f64 / n as f64
        );
    }
    println!("\n{flow}, per {unit} ({n} of them)");
    println!(
        "{:<26} {:>6} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} | $ per million {plural}: {:>5} {:>6} {:>5} {:>5} {:>5}",
        "step",
        "inv",
        "ms/inv",
        "reads",
        "writes",
        "RRU",
        "WRU",
        "SQS",
        "API",
        "Lambda",
        "SQS",
        "reads",
        "writes"
    );
    let mut total = [0.0; 5];
    for step in steps {
        let per = |x: u64| x as f64 / n as f64;
        let d = step.dollars(n);
        for (t, x) in total.iter_mut().zip(d) {
            *t += x;
        }
        println!(
            "{:<26} {:>6.4} {:>7.1} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} | {:>27} {:>5.3} {:>6.3} {:>5.3} {:>5.3} {:>5.3}",
            format!("{} ({})", step.what, step.work.function),
            per(step.work.invocations),
            step.work.billed_ms as f64 / step.work.invocations.max(1) as f64,
            per(step.calls[0]),
            per(step.calls[1]),
            per(step.calls[2]),
            per(step.calls[3]),
            per(step.calls[4] + step.work.sqs),
            "",
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
        );
    }
    println!(
        "{:<26} total ${:.2} per million {plural} (API {:.2}, Lambda {:.3}, SQS {:.3}, DynamoDB reads {:.2}, writes {:.2})",
        "",
        total.iter().sum::<f64>(),
        total[0],
        total[1],
        total[2],
        total[3],
        total[4]
    );
}

fn diff(before: [u64; 6], after: [u64; 6]) -> [u64; 6] {
    std::array::from_fn(|i| after[i] - before[i])
}

/// An endpoint answering 200 to everything, in `BENCH_ENDPOINT_MS`.
async fn receiver() -> String {
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(env_ms("BENCH_ENDPOINT_MS", 100)).await;
        "ok"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!(
        "cost per unit of work: store and queue calls {} ms each, endpoints {} ms; inv: invocations per unit",
        round_trip().as_millis(),
        env_ms("BENCH_ENDPOINT_MS", 100).as_millis()
    );
    let counts = Arc::new(Counts::default());
    let (p, _dir) = platform(&counts).await;
    hookline::accounts::ensure_default(&p, Some("bench-admin-key-0123456789"))
        .await
        .unwrap();
    // A key of the account's own (as an operator gives each account), looked
    // up at each request: the default account's configured key is not.
    let (_, key) = hookline::accounts::create_key(&p, ACCOUNT, "bench")
        .await
        .unwrap();
    let admin = hookline::testkit::Client {
        platform: p.clone(),
        key,
    };
    // Memory as template.yaml gives each function.
    let (ingest_mb, admin_mb, apply_mb, deliver_mb, campaigns_mb) = (256, 256, 256, 256, 512);

    // Inbound: README's trigger (a transform, a contact added to a list).
    let list = admin.id("/v1/lists", json!({"name": "Candidates"})).await;
    let trigger = admin
        .id(
            "/v1/triggers",
            json!({"name": "Candidates", "identifier": "email",
                "transform": "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name",
                "actions": [{"type": "add_to_list", "list_id": list}]}),
        )
        .await;
    let ingest = hookline::http::ingest_router(p.clone());
    let mut work = Work::new("ingest", ingest_mb, true);
    BY_KIND.lock().unwrap().clear();
    let before = counts.snapshot();
    for i in 0..n {
        let body = json!({"candidate": {"email": format!("c{i}@example.com"),
            "first_name": "John", "last_name": format!("Doe {i}")}});
        let request = http::Request::post(format!("/hooks/{trigger}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let started = Instant::now();
        let (status, answer) = hookline::testkit::call(&ingest, request).await;
        work.invoked(started);
        assert_eq!(status, 200, "{answer}");
    }
    let accepted = counts.snapshot();
    let ingested = Step {
        what: "accept",
        work,
        calls: diff(before, accepted),
    };
    let apply = hookline::apply::ApplyHandler::new(p.clone());
    let mut work = Work::new("apply", apply_mb, false);
    assert_eq!(drain(&p.apply_queue, &apply, &mut work).await, n);
    let applied = Step {
        what: "apply",
        work,
        calls: diff(accepted, counts.snapshot()),
    };
    report(
        "inbound webhooks",
        "webhook",
        "webhooks",
        n,
        &[ingested, applied],
    );

    // Outbound: one web endpoint subscribed, each event delivered once.
    let url = receiver().await;
    admin
        .id(
            "/v1/webhooks",
            json!({"name": "CRM", "channel": {"type": "web", "url": url, "secret": "a secret of the bench"},
                "events": ["delivered"]}),
        )
        .await;
    let mut work = Work::new("admin", admin_mb, true);
    BY_KIND.lock().unwrap().clear();
    let before = counts.snapshot();
    for i in 0..n {
        let started = Instant::now();
        let (status, answer) = admin
            .call(
                "POST",
                "/v1/events",
                Some(json!({"event": "delivered", "email": format!("c{i}@example.com")})),
            )
            .await;
        work.invoked(started);
        assert!(status == 202 || status == 200, "{status} {answer}");
    }
    let published = counts.snapshot();
    let publish = Step {
        what: "publish",
        work,
        calls: diff(before, published),
    };
    let mut work = Work::new("apply", apply_mb, false);
    drain(&p.apply_queue, &apply, &mut work).await;
    let fanned = counts.snapshot();
    let fan_out = Step {
        what: "fan out",
        work,
        calls: diff(published, fanned),
    };
    let deliver = hookline::deliver::DeliveryHandler::new(p.clone());
    let mut work = Work::new("deliver", deliver_mb, false);
    assert_eq!(drain(&p.delivery_queue, &deliver, &mut work).await, n);
    let delivered = Step {
        what: "deliver",
        work,
        calls: diff(fanned, counts.snapshot()),
    };
    report(
        "deliveries",
        "delivery",
        "deliveries",
        n,
        &[publish, fan_out, delivered],
    );

    // Campaigns: n profiles tracked, then all matched and posted in
    // batches of 50 (the scheduler's tick that starts the run is one
    // invocation a minute, whatever the campaign: not counted).
    // Enough that a run's segments fill whole batches, as a real audience
    // does (a few hundred would mostly go the way of each segment's last
    // users, which wait for the other segments').
    let n: u64 = std::env::var("BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let profiles: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({"$distinct_id": format!("u{i}"), "$properties": {"n": i}}))
        .collect();
    let mut work = Work::new("admin", admin_mb, true);
    BY_KIND.lock().unwrap().clear();
    let before = counts.snapshot();
    for chunk in profiles.chunks(1000) {
        let started = Instant::now();
        let (status, answer) = admin.call("POST", "/v1/profiles", Some(json!(chunk))).await;
        work.invoked(started);
        assert!(status == 200 || status == 202, "{status} {answer}");
    }
    let tracked = counts.snapshot();
    let track = Step {
        what: "track",
        work,
        calls: diff(before, tracked),
    };
    let campaign = hookline::campaigns::create(
        &p,
        ACCOUNT,
        &json!({"name": "all", "url": url, "where": "user.n >= 0",
                "active": false, "schedule": {"type": "scheduled", "at": "09:00"}}),
    )
    .await
    .unwrap();
    let track_kinds = std::mem::take(&mut *BY_KIND.lock().unwrap());
    let started = counts.snapshot();
    hookline::campaigns::run::run_now(&p, ACCOUNT, &campaign.id)
        .await
        .unwrap();
    let handler = hookline::scheduler::CampaignHandler::new(p.clone());
    let mut work = Work::new("campaigns", campaigns_mb, false);
    drain(&p.campaign_queue, &handler, &mut work).await;
    let matched = Step {
        what: "match and post",
        work,
        calls: diff(started, counts.snapshot()),
    };
    let (runs, _) = hookline::campaigns::run::runs(&p, ACCOUNT, &campaign.id, 1, None)
        .await
        .unwrap();
    let run = &runs[0];
    assert_eq!((run.matched, run.sent), (n, n), "{run:?}");
    report("campaign profiles", "profile", "profiles", n, &[matched]);
    *BY_KIND.lock().unwrap() = track_kinds;
    report(
        "profiles tracked (1,000 a request)",
        "profile",
        "profiles",
        n,
        &[track],
    );
}
