//! The campaigns function's handler, invoked with the events in `events/`
//! against DynamoDB and SQS on moto: the scheduler's tick starts a due
//! campaign, and the campaign queue's messages, fed back as SQS events
//! with their real receipts, match its audience and post it to a local
//! receiver.

use aws_lambda_events::event::sqs::SqsEvent;
use hookline::messages::CampaignMessage;
use hookline::scheduler::CampaignHandler;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCOUNT: &str = hookline::accounts::DEFAULT_ACCOUNT;

fn fixture() -> Value {
    serde_json::from_str(include_str!("../../../events/campaigns-sqs.json")).unwrap()
}

fn tick() -> Value {
    serde_json::from_str(include_str!("../../../events/campaigns-tick.json")).unwrap()
}

/// A receiver that answers 200 and keeps each post's form.
async fn receiver() -> (String, Arc<Mutex<Vec<Vec<(String, String)>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            let form = url::form_urlencoded::parse(&body).into_owned().collect();
            kept.lock().unwrap().push(form);
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

/// Receives what the campaign queue holds and hands it to the handler as
/// the fixture's SQS event does; answers the failures reported, until the
/// queue is empty.
async fn drain(p: &Arc<hookline::Platform>, handler: &CampaignHandler) -> usize {
    let template = fixture()["Records"][0].clone();
    let mut failures = 0;
    loop {
        let got = p
            .campaign_queue
            .receive(10, Duration::from_secs(60), Duration::from_secs(1))
            .await
            .unwrap();
        if got.is_empty() {
            return failures;
        }
        let records: Vec<Value> = got
            .iter()
            .map(|m| {
                let mut r = template.clone();
                r["messageId"] = json!(m.id);
                r["receiptHandle"] = json!(m.receipt);
                r["body"] = json!(m.body);
                r
            })
            .collect();
        let answer = hookline::adapters::aws::lambda::on_campaign_event(
            p,
            handler,
            json!({ "Records": records }),
        )
        .await
        .unwrap();
        failures += answer["batchItemFailures"].as_array().unwrap().len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixtures_decode() {
    let event: SqsEvent = serde_json::from_value(fixture()).unwrap();
    let messages = hookline::adapters::aws::lambda::messages(event);
    assert_eq!(messages.len(), 2);
    let m: CampaignMessage = serde_json::from_str(&messages[0].body).unwrap();
    assert!(
        matches!(m, CampaignMessage::Segment { segment: 0, .. }),
        "{m:?}"
    );
    assert!(serde_json::from_str::<CampaignMessage>(&messages[1].body).is_err());
    assert!(tick().get("Records").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_runs_a_due_campaign_through_the_queue_to_its_url() {
    let p = platform().await;
    let (base, seen) = receiver().await;
    let profiles: Vec<Value> = (0..3)
        .map(|i| json!({"$distinct_id": format!("u{i}"), "$properties": {"plan": "pro"}}))
        .chain([json!({"$distinct_id": "free", "$properties": {"plan": "free"}})])
        .collect();
    let updates = hookline::profiles::parse_profiles(&json!(profiles)).unwrap();
    hookline::profiles::upsert(&p, ACCOUNT, updates)
        .await
        .unwrap();
    let c = hookline::campaigns::create(
        &p,
        ACCOUNT,
        &json!({"name": "pro", "url": format!("{base}/mp"), "where": "user.plan == 'pro'",
                "schedule": {"type": "asap"}}),
    )
    .await
    .unwrap();
    let handler = CampaignHandler::new(p.clone());
    let report = hookline::adapters::aws::lambda::on_campaign_event(&p, &handler, tick())
        .await
        .unwrap();
    assert_eq!(
        (report["due"].as_u64(), report["started"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    // A second tick while the run holds its lease starts nothing.
    let again = hookline::adapters::aws::lambda::on_campaign_event(&p, &handler, tick())
        .await
        .unwrap();
    assert_eq!(again["started"], 0, "{again}");
    assert_eq!(drain(&p, &handler).await, 0);
    let posts = seen.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0][0].0, "users");
    let users: Vec<Value> = serde_json::from_str(&posts[0][0].1).unwrap();
    let mut ids: Vec<&str> = users
        .iter()
        .map(|u| u["$distinct_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["u0", "u1", "u2"]);
    let (runs, _) = hookline::campaigns::run::runs(&p, ACCOUNT, &c.id, 10, None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status, runs[0].sent, runs[0].pending),
        ("done", 3, 0)
    );
    // The next tick runs it again (asap: due a second after its start)
    // and sends no one twice.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = hookline::adapters::aws::lambda::on_campaign_event(&p, &handler, tick())
        .await
        .unwrap();
    assert_eq!(next["started"], 1, "{next}");
    assert_eq!(drain(&p, &handler).await, 0);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_kept_as_a_dead_letter() {
    let p = platform().await;
    let handler = CampaignHandler::new(p.clone());
    p.campaign_queue
        .send("this is not a campaign message".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(drain(&p, &handler).await, 0);
    let (letters, _) = hookline::dead_letters::page(&p, hookline::keys::NO_ACCOUNT, 10, None)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].queue.as_str(), letters[0].kind.as_str()),
        ("campaigns", "unreadable")
    );
}
