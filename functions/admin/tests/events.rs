//! The admin function's router, invoked with the API Gateway events in
//! `events/`, decoded as on AWS (`adapters::aws::apigw`), against DynamoDB and SQS on moto.

use hookline::testkit::call;
use serde_json::Value;

fn event(json: &str) -> axum::http::Request<axum::body::Body> {
    let event = serde_json::from_str(json).expect("an API Gateway HTTP API event");
    hookline::adapters::aws::apigw::request(event).expect("a request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_events_create_and_list() {
    let platform = hookline::testkit::moto::aws::platform().await;
    hookline::accounts::ensure_default(&platform, Some("test-admin-key-0123456789"))
        .await
        .unwrap();
    let router = hookline::http::admin_router(platform);

    let (status, list) = call(
        &router,
        event(include_str!("../../../events/admin-create-list.json")),
    )
    .await;
    assert_eq!(status, 201, "{list}");
    assert_eq!(list["name"], "Greenhouse candidates");

    let (status, page) = call(
        &router,
        event(include_str!("../../../events/admin-list-lists.json")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], list["id"]);
    assert_eq!(page["next_cursor"], Value::Null);

    // The same event with another key is refused.
    let wrong = include_str!("../../../events/admin-list-lists.json")
        .replace("test-admin-key-0123456789", "wrong-admin-key-0123456789");
    let (status, body) = call(&router, event(&wrong)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
}
