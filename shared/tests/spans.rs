//! Every request and every queue message runs in a span that names it, so
//! that a log line can be tied to its request, trigger, message and account.

use hookline::Platform;
use hookline::apply::ApplyHandler;
use hookline::testkit::faulty::{Fault, Faulty};
use hookline::work::Handler;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log lines written while the guard lives (this thread only).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let lines = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || lines.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn failing(healthy: &Platform) -> Arc<Platform> {
    Platform::new(
        Arc::new(Faulty(healthy.store.clone(), Fault::Puts)),
        healthy.queues(),
        healthy.clock.clone(),
        healthy.settings.clone(),
    )
}

/// A trigger without a transform or actions, in the default account.
async fn trigger(platform: &Platform) -> hookline::triggers::Trigger {
    let input = hookline::triggers::NewTrigger {
        name: "T".into(),
        ..Default::default()
    };
    hookline::accounts::ensure_default(platform, None)
        .await
        .unwrap();
    hookline::triggers::create(platform, "acct_default", input)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_message_logs_with_its_ids() {
    let (platform, _dir) = hookline::testkit::platform().await;
    let trigger = trigger(&platform).await;
    let inbound = hookline::messages::Inbound {
        account: "acct_default".into(),
        trigger_id: trigger.id.clone(),
        request_id: hookline::ids::RequestId::parse("req_01jd0000000000000000000042").unwrap(),
        received_at: chrono::Utc::now(),
        payload: serde_json::from_str(r#"{"email": "a@example.com"}"#).unwrap(),
        idempotency_key: None,
        body_sha256: None,
        attempt: 1,
    };
    let message = hookline::ports::QueueMessage {
        id: "msg-spans".into(),
        receipt: "r".into(),
        body: hookline::messages::ApplyMessage::Inbound(inbound).encode(),
        receive_count: 1,
    };
    let lines = Lines::default();
    let _guard = lines.capture();
    // Its writes fail: the handler logs a retry, inside the message's span.
    ApplyHandler::new(failing(&platform))
        .handle(&[message])
        .await;
    let text = lines.text();
    assert!(
        !text.contains(trigger.id.as_str()),
        "a trigger id is never logged: {text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("will retry"))
        .unwrap_or_else(|| panic!("no retry logged: {text}"));
    for part in [
        "message{",
        "queue=\"apply\"",
        "message_id=msg-spans",
        "kind=\"inbound\"",
        "account=\"acct_default\"",
        &format!("trigger=\"{}\"", hookline::ids::trigger_ref(&trigger.id)),
        "request_id=\"req_01jd0000000000000000000042\"",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
}

#[tokio::test]
async fn a_request_logs_with_its_route_and_account() {
    use tower::ServiceExt;
    let (platform, _dir) = hookline::testkit::platform().await;
    let key = "spans-admin-key-0123456789";
    hookline::accounts::ensure_default(&platform, Some(key))
        .await
        .unwrap();
    let router = hookline::http::router(failing(&platform));
    let lines = Lines::default();
    let _guard = lines.capture();
    // Creating a list fails in the store: logged, inside the request's span.
    let request = axum::http::Request::post("/v1/lists")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"name": "L"}"#))
        .unwrap();
    let answer = router.oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 503);
    let text = lines.text();
    let line = text
        .lines()
        .find(|l| l.contains("storage unavailable"))
        .unwrap_or_else(|| panic!("no failure logged: {text}"));
    for part in [
        "request{",
        "method=POST",
        "route=\"/v1/lists\"",
        "account=\"acct_default\"",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    assert!(!text.contains(key), "the key is never logged: {text}");
}

#[tokio::test]
async fn a_trigger_url_logs_its_trigger_by_reference_only() {
    use tower::ServiceExt;
    let (platform, _dir) = hookline::testkit::platform().await;
    let trigger = trigger(&platform).await;
    let router = hookline::http::router(failing(&platform));
    let lines = Lines::default();
    let _guard = lines.capture();
    // Its Idempotency-Key cannot be claimed: logged, inside the request's span.
    let request = axum::http::Request::post(format!("/hooks/{}", trigger.id))
        .header("content-type", "application/json")
        .header("idempotency-key", "k-1")
        .body(axum::body::Body::from(r#"{"email": "a@example.com"}"#))
        .unwrap();
    let answer = router.oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 503);
    let text = lines.text();
    let line = text
        .lines()
        .find(|l| l.contains("storage unavailable"))
        .unwrap_or_else(|| panic!("no failure logged: {text}"));
    for part in [
        "route=\"/hooks/{id}\"",
        "account=\"acct_default\"",
        &format!("trigger=\"{}\"", hookline::ids::trigger_ref(&trigger.id)),
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    assert!(
        !text.contains(trigger.id.as_str()),
        "a trigger id is never logged: {text}"
    );
}
