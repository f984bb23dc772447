//! Deliveries on the embedded platform: the whole default retry schedule
//! run on a test clock (waits past the queue's 15 minutes parked in the
//! store and released), a per-webhook rate limit spreading a burst, and an
//! endpoint that fails every call being left alone between probes.

use hookline::Platform;
use hookline::ports::{Clock, TestClock};
use hookline::work::{Handler, Removal};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A receiver answering `status` to everything; counts and times calls.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<std::time::Instant>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(std::time::Instant::now());
            http::StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

async fn platform(clock: Arc<dyn hookline::ports::Clock>) -> (Arc<Platform>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = hookline::config::Settings {
        allow_private_targets: true,
        ..Default::default()
    };
    let p = hookline::adapters::embedded::platform(dir.path(), settings, clock).unwrap();
    hookline::accounts::ensure_default(&p, None).await.unwrap();
    (p, dir)
}

const ACCOUNT: &str = hookline::accounts::DEFAULT_ACCOUNT;

async fn webhook(p: &Platform, url: &str, rate_limit: Option<u32>) -> hookline::ids::WebhookId {
    let input: hookline::webhooks::NewWebhook = serde_json::from_value(json!({
        "name": "w", "events": ["delivered"], "rate_limit": rate_limit,
        "channel": {"type": "web", "url": url}}))
    .unwrap();
    hookline::webhooks::create(p, ACCOUNT, input, &[])
        .await
        .unwrap()
        .id
}

/// Publishes `n` events and fans them out (the apply queue's work, done here).
async fn publish(p: &Arc<Platform>, n: usize) {
    let events = (0..n)
        .map(|i| {
            hookline::delivery::events::parse_event(
                &json!({"event": "delivered", "email": format!("{i}@example.com")}),
                "event",
                p.clock.now(),
            )
            .unwrap()
        })
        .collect();
    hookline::delivery::events::publish(p, ACCOUNT, events)
        .await
        .unwrap();
    let apply = hookline::apply::ApplyHandler::new(p.clone());
    loop {
        let batch = p
            .apply_queue
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            return;
        }
        let outcomes = apply.handle(&batch).await;
        hookline::work::settle(&*p.apply_queue, &batch, &outcomes, Removal::ByWorker).await;
    }
}

/// One pass of the delivery queue's worker: every visible message.
async fn deliver_visible(p: &Arc<Platform>) -> usize {
    let handler = hookline::deliver::DeliveryHandler::new(p.clone());
    let mut handled = 0;
    loop {
        let batch = p
            .delivery_queue
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            return handled;
        }
        handled += batch.len();
        let outcomes = handler.handle(&batch).await;
        assert!(
            outcomes.iter().all(|o| *o == hookline::work::Outcome::Done),
            "{outcomes:?}"
        );
        hookline::work::settle(&*p.delivery_queue, &batch, &outcomes, Removal::ByWorker).await;
    }
}

async fn attempts(p: &Platform, id: &hookline::ids::WebhookId) -> Vec<Value> {
    let (all, _) = hookline::delivery::attempts::page(p, ACCOUNT, id, 200, None)
        .await
        .unwrap();
    let mut all: Vec<Value> = all
        .iter()
        .map(|a| serde_json::to_value(a).unwrap())
        .collect();
    all.reverse();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_schedule_runs_whole_on_a_test_clock() {
    let clock = TestClock::at("2026-11-25T12:00:00Z".parse().unwrap());
    let (p, _dir) = platform(Arc::new(clock.clone())).await;
    assert_eq!(
        hookline::config::format_duration(p.settings.retry_schedule[7]),
        "10h"
    );
    let (url, calls) = receiver(500).await;
    let id = webhook(&p, &url, None).await;
    publish(&p, 1).await;
    let start = clock.now();
    let mut parked_seen = false;
    // Step the clock a minute at a time over 31 hours (the schedule is
    // 27.6 h, 30.4 h with all its jitter up), as the release
    // loop and the workers would see it.
    for _ in 0..(31 * 60) {
        hookline::delivery::attempt::release(&p, Duration::from_secs(10))
            .await
            .unwrap();
        deliver_visible(&p).await;
        let waiting = p
            .store
            .query(hookline::ports::Query::new(
                format!("parked#{}", clock.now().timestamp() / 60 + 20),
                "",
            ))
            .await
            .unwrap();
        parked_seen |= !waiting.items.is_empty();
        clock.advance(Duration::from_secs(60));
    }
    let log = attempts(&p, &id).await;
    let statuses: Vec<&str> = log.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "failed", "failed", "failed", "failed", "failed", "failed", "failed", "dead"
        ],
        "{log:?}"
    );
    assert_eq!(calls.lock().unwrap().len(), 8);
    // The waits between attempts follow 5s, 5m, 30m, 2h, 5h, 10h, 10h
    // (±10 % jitter, and the minute the test clock steps by).
    let at: Vec<chrono::DateTime<chrono::Utc>> = log
        .iter()
        .map(|a| serde_json::from_value(a["at"].clone()).unwrap())
        .collect();
    assert_eq!(at[0], start);
    let steps = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    for (i, step) in steps.iter().enumerate() {
        let waited = (at[i + 1] - at[i]).num_seconds() as f64;
        let step = *step as f64;
        assert!(
            waited >= step * 0.9 - 1.0 && waited <= step * 1.1 + 60.0,
            "wait {} was {waited}s for a step of {step}s",
            i + 1
        );
    }
    assert!(parked_seen, "waits past 14 minutes are parked in the store");
    let (letters, _) = hookline::dead_letters::page(&p, ACCOUNT, 10, None)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 8);
    assert!(
        letters[0].reason.contains("8 attempts failed"),
        "{}",
        letters[0].reason
    );
    // Nothing is left anywhere.
    assert_eq!(deliver_visible(&p).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_spreads_a_burst_and_delivers_it_all() {
    let (p, _dir) = platform(Arc::new(hookline::ports::SystemClock)).await;
    let (url, calls) = receiver(200).await;
    webhook(&p, &url, Some(4)).await;
    publish(&p, 12).await;
    let started = std::time::Instant::now();
    while calls.lock().unwrap().len() < 12 {
        deliver_visible(&p).await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of 12 delivered",
            calls.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let times = calls.lock().unwrap().clone();
    let span = *times.last().unwrap() - times[0];
    // 12 at 4 a second: about 2.75 s from the first to the last.
    assert!(
        span >= Duration::from_millis(2400),
        "12 calls within {span:?}"
    );
    for pair in times.windows(5) {
        let window = pair[4] - pair[0];
        assert!(
            window >= Duration::from_millis(900),
            "5 calls within {window:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_fails_every_call_gets_one_at_a_time() {
    let (p, _dir) = platform(Arc::new(hookline::ports::SystemClock)).await;
    let (url, calls) = receiver(503).await;
    let id = webhook(&p, &url, None).await;
    publish(&p, 40).await;
    deliver_visible(&p).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    deliver_visible(&p).await;
    let n = calls.lock().unwrap().len();
    // Batches of 10 go at once: the first batch, then the breaker holds.
    assert!(
        (5..=12).contains(&n),
        "{n} calls to a failing endpoint for 40 deliveries"
    );
    let log = attempts(&p, &id).await;
    let pending = log.iter().filter(|a| a["status"] == "pending").count();
    assert!(pending >= 28, "{pending} deliveries deferred: {log:?}");
    assert!(
        log.iter().all(|a| a["status"] != "dead"),
        "no attempt used up by waiting"
    );
}

/// A suspended account's deliveries wait, without using attempts, and go
/// once it is resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_accounts_deliveries_wait_for_its_resumption() {
    let clock = TestClock::at("2026-11-25T12:00:00Z".parse().unwrap());
    let (p, _dir) = platform(Arc::new(clock.clone())).await;
    let (url, calls) = receiver(200).await;
    let (account, key) = hookline::accounts::create(&p, "Suspended", Default::default())
        .await
        .unwrap();
    let input: hookline::webhooks::NewWebhook = serde_json::from_value(json!({
        "name": "w", "events": ["delivered"], "channel": {"type": "web", "url": url}}))
    .unwrap();
    let id = hookline::webhooks::create(&p, &account.id, input, &[])
        .await
        .unwrap()
        .id;
    let status = |s| hookline::accounts::update(&p, &account.id, Default::default(), Some(s));
    status(hookline::accounts::Status::Suspended).await.unwrap();
    let event = hookline::delivery::events::parse_event(
        &json!({"event": "delivered"}),
        "event",
        clock.now(),
    )
    .unwrap();
    hookline::delivery::events::publish(&p, &account.id, vec![event])
        .await
        .unwrap();
    let apply = hookline::apply::ApplyHandler::new(p.clone());
    let batch = p
        .apply_queue
        .receive(10, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap();
    let outcomes = apply.handle(&batch).await;
    hookline::work::settle(&*p.apply_queue, &batch, &outcomes, Removal::ByWorker).await;
    for _ in 0..3 {
        deliver_visible(&p).await;
        clock.advance(Duration::from_secs(61));
    }
    assert_eq!(
        calls.lock().unwrap().len(),
        0,
        "a suspended account's delivery went out"
    );
    let (log, _) = hookline::delivery::attempts::page(&p, &account.id, &id, 10, None)
        .await
        .unwrap();
    assert_eq!(
        log.len(),
        1,
        "one pending record, however long it waits: {log:?}"
    );
    assert_eq!(log[0].status, hookline::delivery::attempts::Status::Pending);
    status(hookline::accounts::Status::Active).await.unwrap();
    clock.advance(Duration::from_secs(61));
    deliver_visible(&p).await;
    assert_eq!(calls.lock().unwrap().len(), 1);
    drop(key);
}
