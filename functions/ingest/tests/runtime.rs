//! The `ingest` binary as Lambda runs it: started against a local Runtime
//! API (`testkit::runtime`), DynamoDB and SQS on moto, given the API Gateway
//! event of `events/`: a trigger not there (404), and one there (captured
//! and queued). `HOOKLINE_LAMBDA_BIN_DIR` runs a release build instead.

use hookline::testkit::runtime::{Running, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_its_event_through_the_runtime_api() {
    let env = hookline::testkit::moto::aws::environment().await;
    let f = Running::start(&binary("ingest", env!("CARGO_BIN_EXE_ingest")), &env).await;
    // The fixture's trigger is looked up in the table, and is not there.
    let answer = f
        .answer(include_str!("../../../events/ingest-hook.json"))
        .await;
    assert_eq!(answer["statusCode"], 404, "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // Trigger URLs answer browsers of any origin on AWS too.
    assert_eq!(answer["headers"]["access-control-allow-origin"], "*");

    // A trigger that is there: the request is captured and queued for apply.
    let platform = hookline::testkit::moto::aws::platform_of(&env).await;
    hookline::accounts::ensure_default(&platform, None)
        .await
        .unwrap();
    let input = serde_json::from_value(serde_json::json!({"name": "Greenhouse"})).unwrap();
    let (trigger, _) = hookline::triggers::create(&platform, "acct_default", input)
        .await
        .unwrap();
    let answer = f
        .answer(
            &include_str!("../../../events/ingest-hook.json")
                .replace("trg_01jd0000000000000000000000", &trigger.id),
        )
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let request_id = body["request_id"].as_str().unwrap();
    let queued = hookline::testkit::moto::aws::receive_exactly(&*platform.apply_queue, 1).await;
    assert!(
        queued[0].body.contains(request_id) && queued[0].body.contains(&*trigger.id),
        "{}",
        queued[0].body
    );
}
