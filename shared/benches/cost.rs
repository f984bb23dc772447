//! What a unit of work asks of the table and the queues: per inbound
//! webhook, per delivery and per profile matched by a campaign, the store's
//! reads and writes (with DynamoDB's capacity units, from each item's size)
//! and the queue's sends, counted on the embedded platform, which runs the
//! same code as the Lambda functions, taken for a shared store (DynamoDB):
//! caches expire and counters are written. docs/cost.md's estimate is made
//! of these counts.
//! Run: `cargo bench -p hookline --bench cost` (`BENCH_UNITS`, default 200).

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
use std::time::Duration;

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
        let got = self.0.get(key).await?;
        self.1.reads.fetch_add(1, Relaxed);
        let bytes = got.as_ref().map_or(0, |i| size(key, &i.body));
        self.1.rru.fetch_add(units(bytes, 4096), Relaxed);
        Ok(got)
    }
    async fn put(&self, put: Put) -> Result<u64, StoreError> {
        self.1.writes.fetch_add(1, Relaxed);
        // Billed on the larger of the item before and after.
        let bytes = self.old(&put.key).await.max(size(&put.key, &put.body));
        self.1.wru.fetch_add(units(bytes, 1024), Relaxed);
        self.0.put(put).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        self.1.writes.fetch_add(1, Relaxed);
        self.1
            .wru
            .fetch_add(units(self.old(key).await, 1024), Relaxed);
        self.0.delete(key, cond).await
    }
    async fn add(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        self.1.writes.fetch_add(1, Relaxed);
        self.1.wru.fetch_add(1, Relaxed);
        self.0.add(key, delta, expires_at).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let page = self.0.query(query).await?;
        self.1.reads.fetch_add(1, Relaxed);
        let bytes: u64 = page.items.iter().map(|i| size(&i.key, &i.body)).sum();
        self.1.rru.fetch_add(units(bytes, 4096), Relaxed);
        Ok(page)
    }
    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.1.writes.fetch_add(1, Relaxed);
        let mut items = 0;
        for w in &writes {
            items += match w {
                Write::Put(p) => units(self.old(&p.key).await.max(size(&p.key, &p.body)), 1024),
                Write::Delete { key, .. } => units(self.old(key).await, 1024),
            };
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
        self.1.sends.fetch_add(1, Relaxed);
        self.1.messages.fetch_add(1, Relaxed);
        self.0.send(body, delay).await
    }
    async fn send_batch(
        &self,
        messages: Vec<(String, Duration)>,
    ) -> Result<Vec<String>, QueueError> {
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
/// event source would (batches of ten); answers the messages handled.
async fn drain(queue: &Arc<dyn Queue>, handler: &dyn Handler) -> u64 {
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
        let outcomes = handler.handle(&batch).await;
        hookline::work::settle(&**queue, &batch, &outcomes, Removal::ByWorker).await;
    }
}

/// An endpoint answering 200 to everything.
async fn receiver() -> String {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn print(what: &str, per: &str, units: u64, before: [u64; 6], after: [u64; 6]) {
    let d: Vec<f64> = (0..6)
        .map(|i| (after[i] - before[i]) as f64 / units as f64)
        .collect();
    println!(
        "{what:<26} per {per:<8} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>8.2}",
        d[0], d[1], d[2], d[3], d[4], d[5]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("store and queue calls per unit of work, {n} units each");
    println!(
        "{:<26} {:<12} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8}",
        "step", "", "reads", "writes", "RRU", "WRU", "sends", "messages"
    );
    let counts = Arc::new(Counts::default());
    let (p, _dir) = platform(&counts).await;
    hookline::accounts::ensure_default(&p, Some("bench-admin-key-0123456789"))
        .await
        .unwrap();
    let admin = hookline::testkit::Client {
        platform: p.clone(),
        key: "bench-admin-key-0123456789".into(),
    };

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
    let before = counts.snapshot();
    for i in 0..n {
        let body = json!({"candidate": {"email": format!("c{i}@example.com"),
            "first_name": "John", "last_name": format!("Doe {i}")}});
        let request = http::Request::post(format!("/hooks/{trigger}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let (status, answer) = hookline::testkit::call(&ingest, request).await;
        assert_eq!(status, 200, "{answer}");
    }
    let accepted = counts.snapshot();
    print("inbound: ingest", "webhook", n, before, accepted);
    let apply = hookline::apply::ApplyHandler::new(p.clone());
    assert_eq!(drain(&p.apply_queue, &apply).await, n);
    let applied = counts.snapshot();
    print("inbound: apply", "webhook", n, accepted, applied);

    // Outbound: one web endpoint subscribed, each event delivered once.
    let url = receiver().await;
    admin
        .id(
            "/v1/webhooks",
            json!({"name": "CRM", "channel": {"type": "web", "url": url, "secret": "a secret of the bench"},
                "events": ["delivered"]}),
        )
        .await;
    let before = counts.snapshot();
    for i in 0..n {
        let (status, answer) = admin
            .call(
                "POST",
                "/v1/events",
                Some(json!({"event": "delivered", "email": format!("c{i}@example.com")})),
            )
            .await;
        assert!(status == 202 || status == 200, "{status} {answer}");
    }
    let published = counts.snapshot();
    print("outbound: publish", "delivery", n, before, published);
    drain(&p.apply_queue, &apply).await;
    let fanned = counts.snapshot();
    print("outbound: fan out", "delivery", n, published, fanned);
    let deliver = hookline::deliver::DeliveryHandler::new(p.clone());
    assert_eq!(drain(&p.delivery_queue, &deliver).await, n);
    let delivered = counts.snapshot();
    print("outbound: deliver", "delivery", n, fanned, delivered);

    // Campaigns: n profiles, all matched, posted in batches of 50.
    let profiles: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({"$distinct_id": format!("u{i}"), "$properties": {"n": i}}))
        .collect();
    let before = counts.snapshot();
    let updates = hookline::profiles::parse_profiles(&json!(profiles)).unwrap();
    hookline::profiles::upsert(&p, ACCOUNT, updates)
        .await
        .unwrap();
    let tracked = counts.snapshot();
    print("campaign: track profile", "profile", n, before, tracked);
    let campaign = hookline::campaigns::create(
        &p,
        ACCOUNT,
        &json!({"name": "all", "url": url, "where": "user.n >= 0",
                "active": false, "schedule": {"type": "scheduled", "at": "09:00"}}),
    )
    .await
    .unwrap();
    hookline::campaigns::run::run_now(&p, ACCOUNT, &campaign.id)
        .await
        .unwrap();
    let handler = hookline::scheduler::CampaignHandler::new(p.clone());
    drain(&p.campaign_queue, &handler).await;
    let matched = counts.snapshot();
    print("campaign: match and post", "profile", n, tracked, matched);
    let (runs, _) = hookline::campaigns::run::runs(&p, ACCOUNT, &campaign.id, 1, None)
        .await
        .unwrap();
    let run = &runs[0];
    assert_eq!((run.matched, run.sent), (n, n), "{run:?}");
}
