//! The deliver function's handler, invoked with the events in `events/`
//! against DynamoDB and SQS on moto, delivering to a local receiver. The
//! fixture's receipts are replaced by real ones, so that deletes and
//! visibility changes really happen.

use aws_lambda_events::event::sqs::SqsEvent;
use hookline::deliver::DeliveryHandler;
use hookline::messages::Delivery;
use hookline::ports::QueueMessage;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCOUNT: &str = hookline::accounts::DEFAULT_ACCOUNT;

fn fixture() -> Value {
    serde_json::from_str(include_str!("../../../events/deliver-sqs.json")).unwrap()
}

/// A receiver that answers 200 and keeps the paths it was called on.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |uri: http::Uri| {
        let kept = kept.clone();
        async move {
            kept.lock().unwrap().push(uri.path().to_string());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn platform() -> Arc<hookline::Platform> {
    let settings = hookline::config::Settings {
        allow_private_targets: true,
        ..Default::default()
    };
    let p = hookline::testkit::moto::aws::platform_with(settings).await;
    hookline::accounts::ensure_default(&p, None).await.unwrap();
    p
}

async fn webhook(p: &hookline::Platform, url: &str) -> String {
    let input = serde_json::from_value(json!({"name": "w", "events": ["delivered"],
        "channel": {"type": "web", "url": url}}))
    .unwrap();
    hookline::webhooks::create(p, ACCOUNT, input, &[])
        .await
        .unwrap()
        .id
        .to_string()
}

/// The fixture's first record, for `webhook`.
fn delivery_for(webhook: &str) -> String {
    let body = fixture()["Records"][0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    body.replace("wh_01jd0000000000000000000000", webhook)
}

/// Queues `bodies` on the delivery queue, receives them, and answers the
/// fixture event carrying them with their real ids and receipts.
async fn event_for(p: &hookline::Platform, bodies: &[String]) -> (Value, Vec<QueueMessage>) {
    let queue = &p.delivery_queue;
    queue
        .send_batch(bodies.iter().map(|b| (b.clone(), Duration::ZERO)).collect())
        .await
        .unwrap();
    let mut got = hookline::testkit::moto::aws::receive_exactly(&**queue, bodies.len()).await;
    got.sort_by_key(|m| bodies.iter().position(|b| *b == m.body));
    let mut event = fixture();
    let template = event["Records"][0].clone();
    event["Records"] = got
        .iter()
        .map(|m| {
            let mut r = template.clone();
            r["messageId"] = json!(m.id);
            r["receiptHandle"] = json!(m.receipt);
            r["body"] = json!(m.body);
            r
        })
        .collect();
    (event, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixtures_decode() {
    let event: SqsEvent = serde_json::from_value(fixture()).unwrap();
    let messages = hookline::adapters::aws::lambda::messages(event);
    assert_eq!(messages.len(), 2);
    let d: Delivery = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(
        (d.attempt, d.event["event"].as_str()),
        (1, Some("delivered"))
    );
    assert!(
        serde_json::from_str::<Delivery>(&messages[1].body).is_err(),
        "the last record is poison"
    );
    let tick: Value =
        serde_json::from_str(include_str!("../../../events/deliver-release.json")).unwrap();
    assert!(tick.get("Records").is_none());
}

/// A batch of three: one delivered, one poison (kept as a dead letter),
/// one whose attempt cannot be logged (the store fails it): only that one
/// is reported failed, and it comes back after its backoff, not the whole
/// visibility timeout. A next attempt is a new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_failure_and_visibility() {
    let healthy = platform().await;
    let (base, seen) = receiver().await;
    let ok = webhook(&healthy, &format!("{base}/ok")).await;
    let broken = webhook(&healthy, &format!("{base}/broken")).await;
    // The store panics on writes of the broken webhook's attempt log.
    let broken_key: &'static str = Box::leak(format!("attempt#{broken}").into_boxed_str());
    let p = hookline::Platform::new(
        Arc::new(hookline::testkit::faulty::Faulty(
            healthy.store.clone(),
            hookline::testkit::faulty::Fault::Panics(broken_key),
        )),
        healthy.queues(),
        healthy.clock.clone(),
        healthy.settings.clone(),
    );
    let bodies = vec![
        delivery_for(&ok),
        "this is not a delivery".to_string(),
        delivery_for(&broken),
    ];
    let (event, sent) = event_for(&p, &bodies).await;
    let handler = DeliveryHandler::new(p.clone());
    let answer = hookline::adapters::aws::lambda::on_delivery_event(&p, &handler, event)
        .await
        .unwrap();
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec![sent[2].id.as_str()], "{answer}");
    let mut paths = seen.lock().unwrap().clone();
    paths.sort();
    assert_eq!(paths, ["/broken", "/ok"], "both were called");
    let (attempts, _) = hookline::delivery::attempts::page(
        &p,
        ACCOUNT,
        &hookline::ids::WebhookId::parse(&ok).unwrap(),
        10,
        None,
    )
    .await
    .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].status,
        hookline::delivery::attempts::Status::Succeeded
    );
    let (letters, _) = hookline::dead_letters::page(&p, hookline::keys::NO_ACCOUNT, 10, None)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].queue.as_str(), letters[0].kind.as_str()),
        ("delivery", "unreadable")
    );
    // The failed one is back after its backoff (about 2 s), received a second time.
    let again = p
        .delivery_queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(6))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![bodies[2].clone()]
    );
    assert_eq!(again[0].receive_count, 2);
}

/// A failed attempt queues the next as a new message with its delay; a
/// wait past the queue's 15 minutes is parked in the table, and the
/// schedule's tick releases it once due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_new_messages_and_the_tick_releases_parked_ones() {
    let settings = hookline::config::Settings {
        allow_private_targets: true,
        retry_schedule: vec![
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ],
        ..Default::default()
    };
    let p = hookline::testkit::moto::aws::platform_with(settings).await;
    hookline::accounts::ensure_default(&p, None).await.unwrap();
    // Nothing listens there: refused at once.
    let down = webhook(&p, "http://127.0.0.1:9/down").await;
    let handler = DeliveryHandler::new(p.clone());
    let (event, _) = event_for(&p, &[delivery_for(&down)]).await;
    let answer = hookline::adapters::aws::lambda::on_delivery_event(&p, &handler, event)
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]));
    // Attempt 2 is a new message, a second later.
    let next = p
        .delivery_queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    let d: Delivery = serde_json::from_str(&next[0].body).unwrap();
    assert_eq!((d.attempt, next[0].receive_count), (2, 1));
    let mut event = fixture();
    event["Records"][0]["messageId"] = json!(next[0].id);
    event["Records"][0]["receiptHandle"] = json!(next[0].receipt);
    event["Records"][0]["body"] = json!(next[0].body);
    event["Records"].as_array_mut().unwrap().truncate(1);
    hookline::adapters::aws::lambda::on_delivery_event(&p, &handler, event)
        .await
        .unwrap();
    // Attempt 3 waits an hour: parked, not on the queue.
    let none = p
        .delivery_queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(none.is_empty());
    let tick: Value =
        serde_json::from_str(include_str!("../../../events/deliver-release.json")).unwrap();
    let released = hookline::adapters::aws::lambda::on_delivery_event(&p, &handler, tick.clone())
        .await
        .unwrap();
    assert_eq!(released, json!({"released": 0}), "not due yet");
    // An hour later (here: the parked item moved to now), the tick releases it.
    let now_minute = chrono::Utc::now().timestamp() / 60;
    let mut parked = None;
    for minute in now_minute + 50..now_minute + 70 {
        let page = p
            .store
            .query(hookline::ports::Query::new(format!("parked#{minute}"), ""))
            .await
            .unwrap();
        if let Some(item) = page.items.into_iter().next() {
            parked = Some(item);
            break;
        }
    }
    let parked = parked.expect("attempt 3 parked about an hour ahead");
    p.store
        .delete(&parked.key, Default::default())
        .await
        .unwrap();
    let mut body = parked.body.clone();
    body["due"] = json!(chrono::Utc::now());
    let key = hookline::ports::Key::new(format!("parked#{now_minute}"), parked.key.sk.clone());
    p.store
        .put(hookline::ports::Put::new(key, body))
        .await
        .unwrap();
    let released = hookline::adapters::aws::lambda::on_delivery_event(&p, &handler, tick)
        .await
        .unwrap();
    assert_eq!(released, json!({"released": 1}));
    let last = p
        .delivery_queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    let d: Delivery = serde_json::from_str(&last[0].body).unwrap();
    assert_eq!(d.attempt, 3);
}
