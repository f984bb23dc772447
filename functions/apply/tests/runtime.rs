//! The `apply` binary as Lambda runs it: started against a local Runtime
//! API (`testkit::runtime`), the table and queues on moto, given the SQS
//! event of `events/`: for a trigger not there (dropped), and for one that
//! is (the contact applied). `HOOKLINE_LAMBDA_BIN_DIR` runs a release
//! build instead.

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

    // The fixture's inbound request for a trigger that is there: the
    // contact lands in its list, in the table.
    let platform = hookline::testkit::moto::aws::platform_of(&env).await;
    let account = hookline::accounts::DEFAULT_ACCOUNT;
    let list = hookline::collections::create(
        &platform,
        hookline::collections::Kind::List,
        account,
        "Greenhouse",
    )
    .await
    .unwrap();
    let input = serde_json::from_value(serde_json::json!({
        "name": "Greenhouse",
        "transform": "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name",
        "actions": [{"type": "add_to_list", "list_id": list.id}],
    }))
    .unwrap();
    let (trigger, _) = hookline::triggers::create(&platform, account, input)
        .await
        .unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/apply-sqs.json")).unwrap();
    let body = fixture["Records"][0]["body"]
        .as_str()
        .unwrap()
        .replace("trg_01jd0000000000000000000000", &trigger.id);
    let event = hookline::testkit::moto::aws::queued_event(
        &env,
        "HOOKLINE_APPLY_QUEUE_URL",
        &*platform.apply_queue,
        body,
    )
    .await;
    let answer = f.answer(&event).await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let email = hookline::contacts::Identifier::Email;
    let (contact, _) = hookline::contacts::find(&platform, account, email, "john@example.com")
        .await
        .unwrap()
        .expect("the contact was applied");
    assert_eq!(contact.lists, vec![list.id.clone()]);
}
