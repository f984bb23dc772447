//! The ingest function's router, invoked with the API Gateway event in
//! `events/`, decoded as on AWS (`adapters::aws::apigw`), against DynamoDB and SQS on moto.

use hookline::apply::ApplyMessage;
use hookline::testkit::call;
use hookline::triggers::NewTrigger;
use serde_json::json;
use std::time::Duration;

const FIXTURE_TRIGGER: &str = "trg_01jd0000000000000000000000";

fn event(json: &str) -> axum::http::Request<axum::body::Body> {
    let event = serde_json::from_str(json).expect("an API Gateway HTTP API event");
    hookline::adapters::aws::apigw::request(event).expect("a request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_event_is_captured_and_queued() {
    let platform = hookline::testkit::moto::aws::platform().await;
    hookline::accounts::ensure_default(&platform, None)
        .await
        .unwrap();
    let input: NewTrigger = serde_json::from_value(json!({
        "name": "Greenhouse", "transform": "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name"
    }))
    .unwrap();
    let (trigger, _) = hookline::triggers::create(&platform, "acct_default", input)
        .await
        .unwrap();
    let router = hookline::http::ingest_router(platform.clone());

    // The fixture's trigger does not exist: 404, in the contract's shape.
    let fixture = include_str!("../../../events/ingest-hook.json");
    let (status, body) = call(&router, event(fixture)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    let (status, body) = call(
        &router,
        event(&fixture.replace(FIXTURE_TRIGGER, &trigger.id)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Request captured successfully");
    let request_id = body["request_id"].as_str().unwrap();

    // Answered only once queued: the message is on the SQS queue.
    let queued = platform
        .apply_queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    let ApplyMessage::Inbound(m) = serde_json::from_str(&queued[0].body).unwrap() else {
        panic!("not an inbound message: {}", queued[0].body);
    };
    assert_eq!(
        (m.request_id.as_str(), m.trigger_id.as_str()),
        (request_id, trigger.id.as_str())
    );
    assert_eq!(m.payload["candidate"]["first_name"], "Ada");

    // The ingest face does not serve the admin API.
    let admin = include_str!("../../../events/admin-list-lists.json");
    let (status, body) = call(&router, event(admin)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("route_not_found"))
    );
}
