//! The apply function's handler, invoked with the SQS event in `events/`
//! against DynamoDB and SQS on moto. The fixture's receipts are replaced by
//! real ones, so visibility changes and dead-lettering really happen.

use aws_lambda_events::event::sqs::SqsEvent;
use hookline::adapters::aws::lambda;
use hookline::apply::{ApplyHandler, ApplyMessage};
use hookline::collections::Kind;
use hookline::ports::{Key, Put, Query, QueueMessage};
use serde_json::json;
use std::time::Duration;

/// Queues `bodies` on the platform's queue, receives them, and answers the
/// fixture event carrying them with their real ids and receipts.
async fn event_for(
    platform: &hookline::Platform,
    bodies: &[String],
) -> (SqsEvent, Vec<QueueMessage>) {
    let queue = &platform.apply_queue;
    queue
        .send_batch(bodies.iter().map(|b| (b.clone(), Duration::ZERO)).collect())
        .await
        .unwrap();
    let mut got = hookline::testkit::moto::aws::receive_exactly(&**queue, bodies.len()).await;
    got.sort_by_key(|m| bodies.iter().position(|b| *b == m.body));
    let mut event: SqsEvent =
        serde_json::from_str(include_str!("../../../events/apply-sqs.json")).unwrap();
    let template = event.records[0].clone();
    event.records = got
        .iter()
        .map(|m| {
            let mut r = template.clone();
            r.message_id = Some(m.id.clone());
            r.receipt_handle = Some(m.receipt.clone());
            r.body = Some(m.body.clone());
            r
        })
        .collect();
    (event, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_decodes_as_apply_messages() {
    let event: SqsEvent =
        serde_json::from_str(include_str!("../../../events/apply-sqs.json")).unwrap();
    let messages = lambda::messages(event);
    assert_eq!(messages.len(), 3);
    assert!(matches!(
        serde_json::from_str(&messages[0].body),
        Ok(ApplyMessage::Inbound(_))
    ));
    assert!(matches!(
        serde_json::from_str(&messages[1].body),
        Ok(ApplyMessage::Purge { .. })
    ));
    assert!(
        serde_json::from_str::<ApplyMessage>(&messages[2].body).is_err(),
        "the last record is poison"
    );
}

/// The fixture's inbound record, applied by the Lambda handler: the contact
/// lands in the trigger's list, in DynamoDB, and the request is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_fixture_is_applied() {
    let platform = hookline::testkit::moto::aws::platform().await;
    let account = hookline::accounts::DEFAULT_ACCOUNT;
    let list = hookline::collections::create(&platform, Kind::List, account, "Greenhouse")
        .await
        .unwrap();
    let input = serde_json::from_value(json!({
        "name": "Greenhouse",
        "transform": "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name",
        "actions": [{"type": "add_to_list", "list_id": list.id}],
    }))
    .unwrap();
    let (trigger, _) = hookline::triggers::create(&platform, account, input)
        .await
        .unwrap();
    let fixture: SqsEvent =
        serde_json::from_str(include_str!("../../../events/apply-sqs.json")).unwrap();
    let body = fixture.records[0]
        .body
        .clone()
        .unwrap()
        .replace("trg_01jd0000000000000000000000", &trigger.id);
    let request =
        hookline::keys::trigger_request(account, &trigger.id, "req_01jd0000000000000000000001");
    let handler = ApplyHandler::new(platform.clone());

    let (event, _) = event_for(&platform, std::slice::from_ref(&body)).await;
    let response = lambda::process(event, &handler, &*platform.apply_queue, None).await;
    assert!(response.batch_item_failures.is_empty());
    let email = hookline::contacts::Identifier::Email;
    let (contact, _) = hookline::contacts::find(&platform, account, email, "john@example.com")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(contact.name.as_deref(), Some("John Doe"));
    assert_eq!(contact.lists, vec![list.id.clone()]);
    let record = platform.store.get(&request).await.unwrap().expect("logged");
    assert_eq!(record.body["status"], "applied");

    // The same message again has the effect of once.
    let (event, _) = event_for(&platform, std::slice::from_ref(&body)).await;
    assert!(
        lambda::process(event, &handler, &*platform.apply_queue, None)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(
        platform.store.get(&request).await.unwrap().unwrap().version,
        record.version,
        "not applied twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_poison_and_retry() {
    let platform = hookline::testkit::moto::aws::platform().await;
    let account = hookline::accounts::DEFAULT_ACCOUNT;
    let gone = hookline::collections::create(&platform, Kind::List, account, "Deleted")
        .await
        .unwrap();
    let kept = hookline::collections::create(&platform, Kind::List, account, "Kept")
        .await
        .unwrap();
    let members = hookline::keys::members(Kind::List, account, &gone.id);
    for i in 0..30 {
        platform
            .store
            .put(Put::new(
                Key::new(members.clone(), format!("ct_{i:02}")),
                json!({}),
            ))
            .await
            .unwrap();
    }
    platform
        .store
        .delete(
            &hookline::keys::collection(Kind::List, account, &gone.id),
            Default::default(),
        )
        .await
        .unwrap();

    let purge = |id: &str| {
        ApplyMessage::Purge {
            kind: Kind::List,
            account: account.into(),
            id: id.into(),
        }
        .encode()
    };
    let bodies = vec![
        purge(&gone.id),
        "this is not an apply message".to_string(),
        purge(&kept.id),
    ];
    let (event, sent) = event_for(&platform, &bodies).await;
    let handler = ApplyHandler::new(platform.clone());
    let response = lambda::process(event, &handler, &*platform.apply_queue, None).await;

    // Only the purge of the live list failed, to be retried.
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![sent[2].id.clone()]);
    assert!(
        platform
            .store
            .query(Query::new(members, ""))
            .await
            .unwrap()
            .items
            .is_empty(),
        "members purged"
    );
    // The poison message is kept as a dead letter in the store at once
    // (SQS deletes it as done); the dead-letter queue stays empty.
    let kept = platform
        .store
        .query(Query::new(
            hookline::keys::dead_letters(hookline::keys::NO_ACCOUNT),
            "",
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body["kind"], "unreadable");
    assert_eq!(kept[0].body["message"], "this is not an apply message");
    let dead = platform
        .apply_queue
        .receive_dead(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(dead.is_empty());
    // The retried one is hidden for its backoff, not for the whole visibility timeout.
    let again = platform
        .apply_queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![bodies[2].clone()]
    );
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_sqs_dead_lettered_by_itself_is_kept_in_the_table() {
    let platform = hookline::testkit::moto::aws::platform().await;
    let body = ApplyMessage::PurgeTriggerLog {
        account: "acct_default".into(),
        trigger_id: hookline::ids::TriggerId::new(),
    }
    .encode();
    let (mut event, got) = event_for(&platform, std::slice::from_ref(&body)).await;
    // As SQS would after the last receive: the message is on the dead-letter queue.
    platform.apply_queue.dead_letter(&got[0]).await.unwrap();
    for r in &mut event.records {
        r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:hookline-apply-dlq".into());
    }
    let dlq = "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-apply-dlq";
    assert!(lambda::from_dead_letter_queue(&event, Some(dlq)));
    assert!(!lambda::from_dead_letter_queue(
        &event,
        Some("https://sqs.us-east-1.amazonaws.com/123456789012/hookline-apply")
    ));
    assert!(!lambda::from_dead_letter_queue(&event, None));

    let handler = ApplyHandler::new(platform.clone());
    let response = lambda::keep_dead(event, &handler).await;
    assert!(response.batch_item_failures.is_empty());
    let kept = platform
        .store
        .query(Query::new(hookline::keys::dead_letters("acct_default"), ""))
        .await
        .unwrap()
        .items;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body["kind"], "purge_trigger_log");
    assert_eq!(kept[0].body["message"], body);
    assert!(
        kept[0].body["reason"]
            .as_str()
            .unwrap()
            .contains("worker stopped")
    );
}
