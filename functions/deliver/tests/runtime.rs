//! The `deliver` binary as Lambda runs it: started against a local Runtime
//! API (`testkit::runtime`), the table and queues on moto, given the SQS
//! event and the schedule's tick of `events/`. `HOOKLINE_LAMBDA_BIN_DIR`
//! runs a release build instead.

use hookline::testkit::runtime::{Running, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_its_events_through_the_runtime_api() {
    let env = hookline::testkit::moto::aws::environment().await;
    let f = Running::start(&binary("deliver", env!("CARGO_BIN_EXE_deliver")), &env).await;
    // Its deliveries are to a webhook that is not in the table: done with.
    let answer = f
        .answer(include_str!("../../../events/deliver-sqs.json"))
        .await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    // The tick reads the parked deliveries that are due: none.
    let released = f
        .answer(include_str!("../../../events/deliver-release.json"))
        .await;
    assert_eq!(released, serde_json::json!({"released": 0}));
}

/// A delivery to a webhook that is there: POSTed to its endpoint (on
/// loopback, which the function is allowed here), and done with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_delivers_to_an_endpoint() {
    let mut env = hookline::testkit::moto::aws::environment().await;
    env.push(("HOOKLINE_ALLOW_PRIVATE_TARGETS".into(), "1".into()));
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let seen_tx = seen_tx.clone();
        async move {
            let _ = seen_tx.send((uri.path().to_string(), body));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/crm", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let platform = hookline::testkit::moto::aws::platform_of(&env).await;
    hookline::accounts::ensure_default(&platform, None)
        .await
        .unwrap();
    let input = serde_json::from_value(serde_json::json!({"name": "CRM", "events": ["delivered"],
        "channel": {"type": "web", "url": url}}))
    .unwrap();
    let webhook = hookline::webhooks::create(&platform, "acct_default", input, &[])
        .await
        .unwrap()
        .id
        .to_string();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/deliver-sqs.json")).unwrap();
    let body = fixture["Records"][0]["body"]
        .as_str()
        .unwrap()
        .replace("wh_01jd0000000000000000000000", &webhook);
    let event = hookline::testkit::moto::aws::queued_event(
        &env,
        "HOOKLINE_DELIVERY_QUEUE_URL",
        &*platform.delivery_queue,
        body,
    )
    .await;
    let f = Running::start(&binary("deliver", env!("CARGO_BIN_EXE_deliver")), &env).await;
    let answer = f.answer(&event).await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let (path, posted) = tokio::time::timeout(std::time::Duration::from_secs(10), seen.recv())
        .await
        .expect("the endpoint was called")
        .unwrap();
    assert_eq!(path, "/hooks/crm");
    let posted: serde_json::Value = serde_json::from_str(&posted).unwrap();
    assert_eq!(posted["event"], "delivered", "{posted}");
}
