//! The `apply` binary as Lambda runs it: started against a local Runtime
//! API (`testkit::runtime`), the table and queues on moto, given the SQS
//! event of `events/`. `HOOKLINE_LAMBDA_BIN_DIR` runs a release build instead.

use hookline::testkit::runtime::{Running, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_its_event_through_the_runtime_api() {
    let env = hookline::testkit::moto::aws::environment().await;
    let f = Running::start(&binary("apply", env!("CARGO_BIN_EXE_apply")), &env).await;
    // Its messages name a trigger and a list that are not in the table:
    // each is done with (dropped), none left for a retry.
    let answer = f
        .answer(include_str!("../../../events/apply-sqs.json"))
        .await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
}
