//! The `campaigns` binary as Lambda runs it: started against a local
//! Runtime API (`testkit::runtime`), the table and queues on moto, given the
//! schedule's tick and the SQS event of `events/`. `HOOKLINE_LAMBDA_BIN_DIR`
//! runs a release build instead.

use hookline::testkit::runtime::{Running, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_its_events_through_the_runtime_api() {
    let env = hookline::testkit::moto::aws::environment().await;
    let f = Running::start(&binary("campaigns", env!("CARGO_BIN_EXE_campaigns")), &env).await;
    // The tick reads the table's due campaigns: none.
    let tick = f
        .answer(include_str!("../../../events/campaigns-tick.json"))
        .await;
    assert_eq!(
        tick,
        serde_json::json!({"due": 0, "started": 0, "waiting": 0})
    );
    // Its messages are of a campaign that is not there: done with.
    let answer = f
        .answer(include_str!("../../../events/campaigns-sqs.json"))
        .await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
}
