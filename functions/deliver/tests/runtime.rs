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
