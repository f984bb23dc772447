//! When the transform threads are all taken (a backlog being applied), a
//! message turned away is postponed without using an attempt, and applied
//! once they are free. Its own test binary: the threads are the process's.

use hookline::apply::{ApplyHandler, BUSY_POSTPONE};
use hookline::messages::{ApplyMessage, Inbound};
use hookline::platform::APPLY_MAX_RECEIVES;
use hookline::ports::QueueMessage;
use hookline::work::{Handler, Outcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_transform_threads_postpone_a_message_on_its_last_attempt() {
    let (platform, _dir) = hookline::testkit::platform().await;
    let input = hookline::triggers::NewTrigger {
        name: "T".into(),
        transform: Some("email = e\nname = n + \"!\"".into()),
        ..Default::default()
    };
    let (trigger, _) = hookline::triggers::create(&platform, "acc_busy", input)
        .await
        .unwrap();
    let message = QueueMessage {
        id: "msg_busy".into(),
        receipt: "r".into(),
        body: ApplyMessage::Inbound(Inbound {
            account: "acc_busy".into(),
            trigger_id: trigger.id.clone(),
            request_id: hookline::ids::RequestId::new(),
            received_at: chrono::Utc::now(),
            payload: serde_json::from_str(r#"{"e": "a@example.com", "n": "A"}"#).unwrap(),
            idempotency_key: None,
            body_sha256: None,
            attempt: 1,
        })
        .encode(),
        receive_count: APPLY_MAX_RECEIVES,
    };
    let handler = ApplyHandler::new(platform.clone());

    // Every thread and every waiting place taken by a job that waits.
    let released = Arc::new(AtomicBool::new(false));
    let mut holders = Vec::new();
    let full = loop {
        assert!(holders.len() < 10_000, "the threads never filled up");
        let free = released.clone();
        let mut job = tokio::spawn(hookline::transforms::pool::run(move || {
            while !free.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
        // Turned away at once when full; otherwise it waits, holding a place.
        match tokio::time::timeout(Duration::from_millis(5), &mut job).await {
            Ok(Ok(Err(hookline::transforms::pool::Failed::Busy))) => break true,
            Ok(other) => panic!("a holding job ended: {other:?}"),
            Err(_) => holders.push(job),
        }
    };
    assert!(full);
    assert_eq!(
        handler.handle(std::slice::from_ref(&message)).await,
        vec![Outcome::Postpone(BUSY_POSTPONE)],
        "turned away on its last attempt: postponed, not failed"
    );

    released.store(true, Ordering::Relaxed);
    for h in holders {
        let _ = h.await;
    }
    assert_eq!(handler.handle(&[message]).await, vec![Outcome::Done]);
}
