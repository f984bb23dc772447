//! Outbound webhooks end to end: the real `hookline` binary, events
//! published over HTTP, deliveries received by a local receiver that
//! answers as each test tells it.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::Admin;
use support::receiver::{Receiver, Reply};

/// A server allowed to call loopback (the receiver), with `env`.
fn start(env: &[(&str, &str)]) -> Admin {
    let mut all = vec![("HOOKLINE_ALLOW_PRIVATE_TARGETS", "1")];
    all.extend_from_slice(env);
    Admin::start_with(&all)
}

fn web(url: &str) -> Value {
    json!({"type": "web", "url": url})
}

async fn webhook(admin: &Admin, body: Value) -> String {
    admin.create("/v1/webhooks", body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn publish(admin: &Admin, body: Value) -> Vec<String> {
    let (status, got) = admin.post("/v1/events", body).await;
    assert_eq!(status, 202, "{got}");
    got["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

/// The webhook's attempts once `done` holds of them (30 s at most).
async fn attempts_until(
    admin: &Admin,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = admin.get(&format!("/v1/webhooks/{webhook}/attempts")).await;
        let all = page["data"].as_array().cloned().unwrap_or_default();
        if done(&all) {
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attempts of {webhook} never got there: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn statuses(all: &[Value]) -> Vec<String> {
    // Newest first in the log; oldest first here.
    all.iter()
        .rev()
        .map(|a| a["status"].as_str().unwrap().to_string())
        .collect()
}

/// Mumara: webhooks by event type and filters (OR within one, AND across),
/// Pushover to a local fake of its API, and the seed's payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mumara_events_reach_the_webhooks_they_match() {
    let receiver = Receiver::start().await;
    let admin = start(&[("HOOKLINE_PUSHOVER_URL", &receiver.base)]);
    webhook(&admin, json!({"name": "CRM Integration - Opens", "channel": web(&receiver.url("/crm")),
        "events": ["delivered", "newsletter_opened"],
        "filters": {"sending_domain": ["mail.example.com", "news.example.com"], "sending_node": ["smtp1"]}})).await;
    webhook(
        &admin,
        json!({"name": "Analytics - All Events", "channel": web(&receiver.url("/all")),
        "events": ["delivered", "bounced", "newsletter_opened", "complaint"]}),
    )
    .await;
    webhook(&admin, json!({"name": "Bounce Alerts - Pushover", "events": ["bounced", "complaint"],
        "channel": {"type": "pushover", "user_key": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "api_token": "azGDORePK8gMaC0QOYAMyEEuzJnyUi", "sound": "Siren"}})).await;
    webhook(
        &admin,
        json!({"name": "One campaign", "channel": web(&receiver.url("/campaign")),
        "events": ["delivered"], "filters": {"campaign_id": ["123"]}}),
    )
    .await;
    webhook(&admin, json!({"name": "Off", "channel": web(&receiver.url("/off")), "events": ["delivered"], "active": false})).await;

    let ids = publish(&admin, json!({"events": [
        {"event": "delivered", "timestamp": "2024-01-15T10:30:00Z", "email": "recipient@example.com", "campaign_id": 123,
         "broadcast_name": "January Newsletter", "sending_domain": "mail.example.com", "sending_node": "smtp1", "message_id": "abc123xyz"},
        {"event": "delivered", "email": "b@example.com", "sending_domain": "mail.example.com", "sending_node": "smtp2", "campaign_id": "124"},
        {"event": "newsletter_opened", "email": "c@example.com", "sending_domain": "news.example.com", "sending_node": "smtp1"},
        {"event": "bounced", "email": "d@example.com", "bounce_type": "hard", "sending_domain": "other.example.com"},
        {"event": "rejected", "email": "e@example.com"}
    ]})).await;
    assert_eq!(ids.len(), 5);
    let crm = receiver.wait_for("/crm", 2, Duration::from_secs(20)).await;
    let all = receiver.wait_for("/all", 4, Duration::from_secs(20)).await;
    let campaign = receiver
        .wait_for("/campaign", 1, Duration::from_secs(20))
        .await;
    let pushover = receiver
        .wait_for("/1/messages.json", 1, Duration::from_secs(20))
        .await;
    // Anything late would show by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received_at("/crm").len(), 2);
    assert_eq!(receiver.received_at("/all").len(), 4);
    assert_eq!(
        receiver.received_at("/campaign").len(),
        1,
        "campaign_id 123 (a number) matches \"123\""
    );
    assert_eq!(receiver.received_at("/1/messages.json").len(), 1);
    assert!(
        receiver.received_at("/off").is_empty(),
        "an inactive webhook got an event"
    );

    let mut crm_events: Vec<String> = crm
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    crm_events.sort();
    assert_eq!(crm_events, ["delivered", "newsletter_opened"]);
    // The standard payload: the event as published, with its id.
    let first = campaign[0].json();
    assert_eq!(first["id"], ids[0].as_str());
    assert_eq!(first["email"], "recipient@example.com");
    assert_eq!(first["broadcast_name"], "January Newsletter");
    assert_eq!(first["timestamp"], "2024-01-15T10:30:00.000Z");
    assert_eq!(campaign[0].header("content-type"), Some("application/json"));
    let agent = campaign[0].header("user-agent").unwrap();
    assert!(agent.starts_with("Hookline/"), "{agent}");
    assert!(all.iter().all(|r| r.method == "POST"));
    let form = pushover[0].form();
    assert_eq!(form["token"], "azGDORePK8gMaC0QOYAMyEEuzJnyUi");
    assert_eq!(form["user"], "uQiRzpo4DXghDmr9QzzfQu27cmVRsG");
    assert_eq!(form["sound"], "siren");
    assert!(
        form["message"].contains("bounced: d@example.com"),
        "{form:?}"
    );
    assert!(form["message"].contains("hard"), "{form:?}");
}

/// The campaign platform's webhooks: custom mappings, form content type,
/// GET with query parameters, basic auth, and a secret kept on update;
/// signatures checked by the `standardwebhooks` crate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_payloads_forms_get_basic_auth_and_signatures() {
    let receiver = Receiver::start().await;
    let admin = start(&[]);
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mapped = webhook(&admin, json!({"name": "Mapped", "events": ["newsletter_clicked"],
        "channel": {"type": "web", "url": receiver.url("/form"), "content_type": "form",
                    "auth": {"type": "basic", "username": "hook", "password": "s3cret"}, "secret": secret},
        "payload": {"mappings": [{"field": "email", "from": "email"}, {"field": "campaign_name", "from": "broadcast_name"},
                                  {"field": "source", "value": "webhook"}]}})).await;
    webhook(&admin, json!({"name": "Get", "events": ["newsletter_clicked"],
        "channel": {"type": "web", "url": receiver.url("/get?fixed=1"), "method": "GET", "secret": secret}})).await;
    webhook(&admin, json!({"name": "Slack", "events": ["newsletter_clicked"],
        "channel": {"type": "web", "url": receiver.url("/slack")},
        "payload": {"transform": "text = \"Click by \" + email + \" on \" + link_url\nblocks = [{'type': 'section', 'text': {'type': 'mrkdwn', 'text': email}}]"}})).await;

    // The secret survives an update that leaves it out, or blank.
    let (status, got) = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/webhooks/{mapped}"),
            Some(json!({"name": "Mapped (renamed)",
            "channel": {"type": "web", "url": receiver.url("/form"), "content_type": "form",
                        "auth": {"type": "basic", "username": "hook"}, "secret": ""}})),
        )
        .await;
    assert_eq!(status, 200, "{got}");

    publish(&admin, json!({"event": "newsletter_clicked", "email": "user@example.com",
        "broadcast_name": "Summer Promotion", "link_url": "https://example.com/sale", "message_id": "m1"})).await;
    let form = receiver
        .wait_for("/form", 1, Duration::from_secs(20))
        .await
        .remove(0);
    let get = receiver
        .wait_for("/get", 1, Duration::from_secs(20))
        .await
        .remove(0);
    let slack = receiver
        .wait_for("/slack", 1, Duration::from_secs(20))
        .await
        .remove(0);

    assert_eq!(
        form.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields = form.form();
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert_eq!(fields["email"], "user@example.com");
    assert_eq!(fields["campaign_name"], "Summer Promotion");
    assert_eq!(fields["source"], "webhook");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("hook:s3cret");
    assert_eq!(
        form.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );

    let verifier = standardwebhooks::Webhook::new(secret).unwrap();
    let headers = |r: &support::receiver::Received| {
        let mut h = http::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            h.insert(
                name,
                r.header(name)
                    .unwrap_or_else(|| panic!("{name} missing"))
                    .parse()
                    .unwrap(),
            );
        }
        h
    };
    verifier
        .verify(&form.body, &headers(&form))
        .expect("the form's signature verifies");
    assert_eq!(get.method, "GET");
    assert!(get.body.is_empty());
    let query = get.form();
    assert_eq!(query["fixed"], "1");
    assert_eq!(query["email"], "user@example.com");
    assert_eq!(query["event"], "newsletter_clicked");
    verifier
        .verify(get.query.as_bytes(), &headers(&get))
        .expect("GET signs its query string");
    // A different body fails, so the check can fail.
    assert!(verifier.verify(b"email=other", &headers(&form)).is_err());

    assert_eq!(
        slack.json(),
        json!({"text": "Click by user@example.com on https://example.com/sale",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "user@example.com"}}]})
    );
    assert!(
        slack.header("webhook-signature").is_none(),
        "no secret, no signature"
    );
}

/// A rotation answers the new secret once; for 24 hours both sign, so a
/// receiver holding either verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let receiver = Receiver::start().await;
    let admin = start(&[]);
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let id = webhook(
        &admin,
        json!({"name": "Signed", "events": ["delivered"],
        "channel": {"type": "web", "url": receiver.url("/signed"), "secret": old}}),
    )
    .await;
    let (status, rotated) = admin
        .post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    let (_, shown) = admin.get(&format!("/v1/webhooks/{id}")).await;
    assert!(shown.get("secret").is_none());

    publish(
        &admin,
        json!({"event": "delivered", "email": "a@example.com"}),
    )
    .await;
    let got = receiver
        .wait_for("/signed", 1, Duration::from_secs(20))
        .await
        .remove(0);
    let signatures = got.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, got.header(name).unwrap().parse().unwrap());
    }
    for secret in [old, new.as_str()] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&got.body, &headers)
            .unwrap_or_else(|e| panic!("{secret}: {e:?}"));
    }
    let other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh";
    assert!(
        standardwebhooks::Webhook::new(other)
            .unwrap()
            .verify(&got.body, &headers)
            .is_err()
    );
}

fn same_webhook_id(got: &[support::receiver::Received]) -> String {
    let id = got[0].header("webhook-id").unwrap().to_string();
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str())),
        "webhook-id changed"
    );
    id
}

/// The retry schedule, each answer of a failing endpoint, `Retry-After`
/// honoured, one `webhook-id` across attempts, and the attempt log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_on_the_schedule_and_logged() {
    let receiver = Receiver::start().await;
    let admin = start(&[
        (
            "HOOKLINE_RETRY_SCHEDULE",
            "0s,500ms,500ms,500ms,500ms,500ms,500ms",
        ),
        ("HOOKLINE_DELIVERY_TIMEOUT", "1s"),
    ]);
    let id = webhook(&admin, json!({"name": "Flaky", "events": ["delivered"], "log_response_body": true,
        "channel": {"type": "web", "url": receiver.url("/flaky"), "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})).await;
    receiver.plan(
        "/flaky",
        [
            Reply::Status(500),
            Reply::RetryAfter(2),
            Reply::Status(404),
            Reply::Reset,
            Reply::Hang(Duration::from_secs(3)),
            Reply::Trickle(Duration::from_millis(300)),
        ],
    );
    publish(
        &admin,
        json!({"event": "delivered", "email": "a@example.com"}),
    )
    .await;
    let got = receiver
        .wait_for("/flaky", 7, Duration::from_secs(30))
        .await;
    same_webhook_id(&got);
    let gap = got[2].at - got[1].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 waited only {gap:?}"
    );
    let all = attempts_until(&admin, &id, |a| a.len() >= 7).await;
    assert_eq!(
        statuses(&all),
        [
            "failed",
            "failed",
            "failed",
            "failed",
            "failed",
            "failed",
            "succeeded"
        ]
    );
    let oldest: Vec<&Value> = all.iter().rev().collect();
    let codes: Vec<Value> = oldest
        .iter()
        .map(|a| a["response_status"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            json!(500),
            json!(429),
            json!(404),
            Value::Null,
            Value::Null,
            Value::Null,
            json!(200)
        ]
    );
    let numbers: Vec<u64> = oldest
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7]);
    let error = |i: usize| oldest[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error(3).contains("request failed"),
        "a reset: {}",
        oldest[3]
    );
    assert!(error(4).contains("timeout"), "a hang: {}", oldest[4]);
    assert!(
        error(5).contains("timeout"),
        "a trickle past the timeout: {}",
        oldest[5]
    );
    assert_eq!(oldest[0]["response_body"], "{\"answered\": 500}");
    assert!(oldest[0]["next_attempt_at"].is_string());
    assert!(oldest[6]["next_attempt_at"].is_null());
    assert!(oldest[6]["duration_ms"].is_u64());
    // The streak is cleared just after the success is logged.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, w) = admin.get(&format!("/v1/webhooks/{id}")).await;
        if w["failing_since"].is_null() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a success clears failing_since: {w}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What still fails after the last attempt is a dead letter; a redrive
/// delivers it again, with the same `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_failure_is_a_dead_letter_that_can_be_redriven() {
    let receiver = Receiver::start().await;
    let admin = start(&[("HOOKLINE_RETRY_SCHEDULE", "0s,200ms,200ms")]);
    let id = webhook(
        &admin,
        json!({"name": "Down", "events": ["bounced"], "channel": web(&receiver.url("/down"))}),
    )
    .await;
    receiver.plan(
        "/down",
        [Reply::Status(503), Reply::Status(502), Reply::Status(500)],
    );
    let event = publish(
        &admin,
        json!({"event": "bounced", "email": "a@example.com"}),
    )
    .await
    .remove(0);
    let all = attempts_until(&admin, &id, |a| a.len() >= 3).await;
    assert_eq!(statuses(&all), ["failed", "failed", "dead"]);
    let (_, letters) = admin.get("/v1/dead-letters").await;
    let letter = &letters["data"][0];
    assert_eq!(letter["queue"], "delivery", "{letters}");
    assert_eq!(letter["webhook_id"], id.as_str());
    assert_eq!(letter["event_id"], event.as_str());
    assert_eq!(letter["attempts"], 3);
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("3 attempts failed"),
        "{letter}"
    );
    let (status, redriven) = admin.post("/v1/dead-letters/redrive", json!({})).await;
    assert_eq!(status, 202, "{redriven}");
    let got = receiver.wait_for("/down", 4, Duration::from_secs(20)).await;
    same_webhook_id(&got);
    assert_eq!(got[3].json()["id"], event.as_str());
    let all = attempts_until(&admin, &id, |a| a.len() >= 4).await;
    assert_eq!(statuses(&all).last().unwrap(), "succeeded");
    let (_, letters) = admin.get("/v1/dead-letters").await;
    assert_eq!(letters["data"], json!([]));
}

/// 410 disables the webhook at once and publishes `webhook.disabled`,
/// which another webhook receives; failing longer than HOOKLINE_DISABLE_AFTER
/// does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_and_failing_too_long_disable_a_webhook() {
    let receiver = Receiver::start().await;
    let admin = start(&[
        (
            "HOOKLINE_RETRY_SCHEDULE",
            "0s,400ms,400ms,400ms,400ms,400ms,400ms,400ms,400ms,400ms",
        ),
        ("HOOKLINE_DISABLE_AFTER", "1s"),
    ]);
    let watcher = webhook(&admin, json!({"name": "Ops", "events": ["webhook.disabled"], "channel": web(&receiver.url("/ops"))})).await;
    let gone = webhook(
        &admin,
        json!({"name": "Gone", "events": ["delivered"], "channel": web(&receiver.url("/gone"))}),
    )
    .await;
    let failing = webhook(&admin, json!({"name": "Failing", "events": ["complaint"], "channel": web(&receiver.url("/failing"))})).await;
    receiver.plan("/gone", [Reply::Status(410)]);
    receiver.plan("/failing", std::iter::repeat_n(Reply::Status(500), 20));
    publish(&admin, json!({"events": [{"event": "delivered", "email": "a@example.com"}, {"event": "complaint", "email": "b@example.com"}]})).await;

    let ops = receiver.wait_for("/ops", 2, Duration::from_secs(30)).await;
    let mut disabled: Vec<(String, String)> = ops
        .iter()
        .map(|r| {
            let e = r.json();
            assert_eq!(e["event"], "webhook.disabled");
            (
                e["webhook_id"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    disabled.sort();
    let mut expected = [gone.clone(), failing.clone()];
    expected.sort();
    assert_eq!(
        disabled.iter().map(|d| d.0.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(disabled.iter().any(|d| d.1.contains("410")), "{disabled:?}");
    assert!(
        disabled
            .iter()
            .any(|d| d.1.contains("every attempt failed for 1s")),
        "{disabled:?}"
    );
    assert_eq!(receiver.received_at("/gone").len(), 1, "410 is not retried");
    // `webhook.disabled` is queued before the webhook is marked disabled and
    // its delivery kept as a dead letter, and another worker may deliver it
    // first: wait for both.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let (_, letters) = admin.get("/v1/dead-letters").await;
        let mut settled = letters["data"].as_array().unwrap().len() >= 2;
        for id in [&gone, &failing] {
            let (_, w) = admin.get(&format!("/v1/webhooks/{id}")).await;
            settled &= w["status"] == "disabled";
        }
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in [&gone, &failing] {
        let (_, w) = admin.get(&format!("/v1/webhooks/{id}")).await;
        assert_eq!(
            (w["status"].clone(), w["active"].clone()),
            (json!("disabled"), json!(false)),
            "{w}"
        );
        assert!(w["disabled"]["reason"].is_string());
    }
    let (_, w) = admin.get(&format!("/v1/webhooks/{watcher}")).await;
    assert_eq!(w["status"], "active");
    // Both deliveries are dead letters; once the webhook is on again, a
    // redrive delivers.
    let (_, letters) = admin.get("/v1/dead-letters").await;
    assert_eq!(letters["data"].as_array().unwrap().len(), 2, "{letters}");
    let (status, _) = admin
        .post(&format!("/v1/webhooks/{gone}/activate"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, w) = admin.get(&format!("/v1/webhooks/{gone}")).await;
    assert_eq!(
        (w["status"].clone(), w["disabled"].clone()),
        (json!("active"), Value::Null)
    );
    admin.post("/v1/dead-letters/redrive", json!({})).await;
    receiver.wait_for("/gone", 2, Duration::from_secs(20)).await;
}

/// The test button: a sample of one of its events, sent now, answered as
/// an attempt and logged as a test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_button_sends_a_sample_now() {
    let receiver = Receiver::start().await;
    let admin = start(&[]);
    let id = webhook(&admin, json!({"name": "T", "events": ["delivered", "newsletter_clicked"], "channel": web(&receiver.url("/t"))})).await;
    let (status, attempt) = admin
        .post(
            &format!("/v1/webhooks/{id}/test"),
            json!({"event": "newsletter_clicked"}),
        )
        .await;
    assert_eq!(status, 200, "{attempt}");
    assert_eq!(
        (
            attempt["status"].clone(),
            attempt["response_status"].clone(),
            attempt["test"].clone()
        ),
        (json!("succeeded"), json!(200), json!(true))
    );
    assert_eq!(
        attempt["response_body"], "{\"answered\": 200}",
        "shown, though not logged"
    );
    let sample = receiver.received_at("/t").remove(0).json();
    assert_eq!(sample["event"], "newsletter_clicked");
    assert_eq!(sample["link_url"], "https://example.com/offer");
    receiver.plan("/t", [Reply::Status(500)]);
    let (_, attempt) = admin
        .send(
            reqwest::Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            None,
        )
        .await;
    assert_eq!(
        (
            attempt["status"].clone(),
            attempt["response_status"].clone()
        ),
        (json!("failed"), json!(500))
    );
    assert_eq!(receiver.received_at("/t")[1].json()["event"], "delivered");
    let (status, got) = admin
        .post(
            &format!("/v1/webhooks/{id}/test"),
            json!({"event": "bounced"}),
        )
        .await;
    assert_eq!(status, 422, "{got}");
    let all = attempts_until(&admin, &id, |a| a.len() >= 2).await;
    assert!(
        all.iter()
            .all(|a| a["test"] == true && a["response_body"].is_null()),
        "{all:?}"
    );
    assert_eq!(
        receiver.received_at("/t").len(),
        2,
        "a failed test is not retried"
    );
}

/// Without private targets: loopback, private, link-local and metadata
/// addresses are refused as literals at once, and as names that resolve
/// to them when a call is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused() {
    let receiver = Receiver::start().await;
    let admin = Admin::start_with(&[("HOOKLINE_WEBHOOK_LIMIT", "1")]);
    let port = receiver.base.rsplit(':').next().unwrap().to_string();
    for url in [
        "https://127.0.0.1/h",
        "https://10.1.2.3/h",
        "https://192.168.0.1/h",
        "https://169.254.1.1/h",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/h",
        "https://[fd00:ec2::254]/h",
        "https://[::ffff:127.0.0.1]/h",
        &receiver.url("/h"),
    ] {
        let (status, got) = admin
            .post(
                "/v1/webhooks",
                json!({"name": "w", "events": ["delivered"], "channel": web(url)}),
            )
            .await;
        assert_eq!(status, 422, "{url}: {got}");
        assert!(
            got["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("channel.url"),
            "{got}"
        );
    }
    // A name is checked where it is resolved: at the call.
    let id = webhook(&admin, json!({"name": "Sneaky", "events": ["delivered"], "channel": web(&format!("https://localhost:{port}/h"))})).await;
    let (_, attempt) = admin
        .post(&format!("/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(attempt["status"], "failed", "{attempt}");
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.contains("refused destination") && error.contains("loopback"),
        "{error}"
    );
    assert!(receiver.received().is_empty(), "the receiver was reached");
    // The limit of one: a second webhook is refused.
    let (status, got) = admin
        .post(
            "/v1/webhooks",
            json!({"name": "w2", "events": ["delivered"], "channel": web("https://example.com/h")}),
        )
        .await;
    assert_eq!(
        (status, got["error"]["code"].clone()),
        (403, json!("webhook_limit_reached"))
    );
}

/// A trigger's `publish_event` flows like a published event; its
/// `send_message` goes out through the named webhook's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_actions_publish_events_and_send_messages() {
    let receiver = Receiver::start().await;
    let admin = start(&[("HOOKLINE_PUSHOVER_URL", &receiver.base)]);
    let (status, got) = admin
        .post("/v1/triggers", json!({"name": "t", "actions": [{"type": "send_message", "webhook_id": "wh_01jf6z0c1qz8m3v2w4x5y6z7a8", "template": "hi"}]}))
        .await;
    assert_eq!(status, 422, "a message to no webhook: {got}");
    let trigger = admin
        .create("/v1/triggers", json!({"name": "Hired", "transform": "email = candidate.email\nfirst_name = candidate.first_name",
            "actions": [{"type": "publish_event", "event": "candidate.hired"}]}))
        .await;
    webhook(
        &admin,
        json!({"name": "HR", "events": ["candidate.hired"], "channel": web(&receiver.url("/hr"))}),
    )
    .await;
    let push = webhook(
        &admin,
        json!({"name": "Phone", "events": ["delivered"],
        "channel": {"type": "pushover", "user_key": "u-key", "api_token": "a-token"}}),
    )
    .await;
    let (status, _) = admin
        .send(reqwest::Method::PATCH, &format!("/v1/triggers/{}", trigger["id"].as_str().unwrap()),
            Some(json!({"actions": [{"type": "publish_event", "event": "candidate.hired"},
                                    {"type": "send_message", "webhook_id": push, "template": "Welcome {{first_name}} ({{email}})"}]})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = admin
        .hook(
            trigger["url"].as_str().unwrap(),
            &json!({"candidate": {"email": "ada@example.com", "first_name": "Ada"}}),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let hr = receiver
        .wait_for("/hr", 1, Duration::from_secs(20))
        .await
        .remove(0)
        .json();
    assert_eq!(hr["event"], "candidate.hired");
    assert_eq!(hr["email"], "ada@example.com");
    assert_eq!(hr["data"]["candidate"]["first_name"], "Ada");
    let push = receiver
        .wait_for("/1/messages.json", 1, Duration::from_secs(20))
        .await
        .remove(0)
        .form();
    assert_eq!(push["message"], "Welcome Ada (ada@example.com)");
    assert_eq!(push["token"], "a-token");
}

/// An event to 2,000 webhooks (more than a process keeps in memory, so
/// fanned out 200 at a time, a message each), the server killed with
/// SIGKILL once deliveries start: after a restart every webhook gets the
/// event. Nothing is lost; some may come twice, with one `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_fan_out_loses_no_delivery() {
    const N: usize = 2000;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "1"),
        ("HOOKLINE_WEBHOOK_LIMIT", "5000"),
    ];
    let admin = Admin::start_in_with(dir.path(), &env);
    let mut made = Vec::new();
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        let calls = chunk.iter().map(|i| {
            admin.post(
                "/v1/webhooks",
                json!({"name": format!("w{i}"), "events": ["delivered"],
                "channel": web(&receiver.url(&format!("/w/{i}")))}),
            )
        });
        for (status, got) in futures::future::join_all(calls).await {
            assert_eq!(status, 201, "{got}");
            made.push(got["id"].as_str().unwrap().to_string());
        }
    }
    publish(
        &admin,
        json!({"event": "delivered", "email": "all@example.com"}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while receiver.received().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no delivery began");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    admin.server.crash();
    let at_kill: std::collections::HashSet<String> =
        receiver.received().into_iter().map(|r| r.path).collect();
    eprintln!(
        "{} of {N} webhooks had the event when the server was killed",
        at_kill.len()
    );

    let _admin = Admin::start_in_with(dir.path(), &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got: std::collections::HashSet<String> =
            receiver.received().into_iter().map(|r| r.path).collect();
        if got.len() == N {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {N} webhooks got the event after the restart",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each webhook's copies carry one webhook-id.
    let all = receiver.received();
    for path in ["/w/0", "/w/999", "/w/1999"] {
        let copies: Vec<_> = all.iter().filter(|r| r.path == path).cloned().collect();
        same_webhook_id(&copies);
    }
}

/// A request whose later action failed, replayed: the message its
/// `send_message` sent the first time is not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_sends_its_message_once() {
    let receiver = Receiver::start().await;
    let admin = start(&[("HOOKLINE_PUSHOVER_URL", &receiver.base)]);
    let list = admin
        .create("/v1/lists", json!({"name": "Soon gone"}))
        .await;
    let push = webhook(
        &admin,
        json!({"name": "Phone", "events": ["delivered"],
        "channel": {"type": "pushover", "user_key": "u-key", "api_token": "a-token"}}),
    )
    .await;
    let trigger = admin
        .create(
            "/v1/triggers",
            json!({"name": "T", "actions": [
            {"type": "send_message", "webhook_id": push, "template": "Hello {{email}}"},
            {"type": "add_to_list", "list_id": list["id"]}]}),
        )
        .await;
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/lists/{}", list["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, taken) = admin
        .hook(
            trigger["url"].as_str().unwrap(),
            &json!({"email": "once@example.com"}),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    let (id, request) = (
        trigger["id"].as_str().unwrap(),
        taken["request_id"].as_str().unwrap(),
    );
    let record = admin.applied(id, request).await;
    assert_eq!(record["status"], "failed", "{record}");
    receiver
        .wait_for("/1/messages.json", 1, Duration::from_secs(20))
        .await;
    let (status, replayed) = admin
        .post(
            &format!("/v1/triggers/{id}/requests/{request}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{replayed}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, r) = admin
            .get(&format!("/v1/triggers/{id}/requests/{request}"))
            .await;
        if r["attempts"] == 2 {
            assert!(r.to_string().contains("was sent already"), "{r}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replay was not applied: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received_at("/1/messages.json").len(),
        1,
        "the message went twice"
    );
}

/// The console's chart: per hour, deliveries that succeeded and failed and
/// their latency, test sends left out; `hours` bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_the_last_hours_deliveries() {
    let receiver = Receiver::start().await;
    // One attempt each: a failure is final (kept as a dead letter).
    let admin = start(&[("HOOKLINE_RETRY_SCHEDULE", "0s")]);
    let id = webhook(
        &admin,
        json!({"name": "S", "events": ["delivered"], "channel": web(&receiver.url("/s"))}),
    )
    .await;
    receiver.plan("/s", [Reply::Status(500)]);
    publish(
        &admin,
        json!({"events": [
            {"event": "delivered", "email": "a@example.com"},
            {"event": "delivered", "email": "b@example.com"},
            {"event": "delivered", "email": "c@example.com"}]}),
    )
    .await;
    attempts_until(&admin, &id, |a| {
        a.len() == 3 && a.iter().all(|x| x["status"] != "pending")
    })
    .await;
    let (status, _) = admin
        .send(
            reqwest::Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let (status, stats) = admin.get(&format!("/v1/webhooks/{id}/stats")).await;
    assert_eq!(status, 200, "{stats}");
    let hours = stats["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(stats["complete"], true);
    // Summed, as an hour may have turned since the attempts.
    let total =
        |hours: &[Value], k: &str| -> u64 { hours.iter().map(|h| h[k].as_u64().unwrap()).sum() };
    assert_eq!(
        (total(hours, "succeeded"), total(hours, "failed")),
        (2, 1),
        "the test send is left out: {stats}"
    );
    assert!(
        hours
            .iter()
            .all(|h| h["max_ms"].as_u64().unwrap() >= h["avg_ms"].as_u64().unwrap())
    );
    assert_eq!(total(hours, "calls"), 3);
    // Oldest first, an hour apart.
    let at = |h: &Value| chrono::DateTime::parse_from_rfc3339(h["hour"].as_str().unwrap()).unwrap();
    assert_eq!((at(&hours[23]) - at(&hours[0])).num_hours(), 23);

    let (_, two) = admin.get(&format!("/v1/webhooks/{id}/stats?hours=2")).await;
    let two = two["hours"].as_array().unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(total(two, "succeeded"), 2);
    for bad in ["0", "169"] {
        let (status, e) = admin
            .get(&format!("/v1/webhooks/{id}/stats?hours={bad}"))
            .await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (422, Some("invalid_hours"))
        );
    }
    let (status, _) = admin
        .get("/v1/webhooks/wh_01aaaaaaaaaaaaaaaaaaaaaaaa/stats")
        .await;
    assert_eq!(status, 404);
}

/// A 422 names its field in `details.field` too, for a form to show it
/// beside that field.
#[tokio::test]
async fn invalid_fields_are_named_in_the_details() {
    let admin = start(&[]);
    for (body, field) in [
        (
            json!({"name": "N", "events": ["delivered"], "channel": {"type": "web"}}),
            "channel.url",
        ),
        (
            json!({"name": "N", "events": [], "channel": web("http://127.0.0.1:9/x")}),
            "events",
        ),
        (
            json!({"name": "N", "events": ["delivered"], "channel": {"type": "pushover", "api_token": "t"}}),
            "channel.user_key",
        ),
    ] {
        let (status, e) = admin.post("/v1/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{e}");
        assert_eq!(e["error"]["details"]["field"], field, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().starts_with(field),
            "{e}"
        );
    }
    let (status, e) = admin
        .post(
            "/v1/campaigns",
            json!({"name": "C", "url": "http://127.0.0.1:9/c", "where": "user.plan ==", "schedule": {"type": "asap"}}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"]["field"].as_str()),
        (422, Some("where")),
        "{e}"
    );
    let (status, e) = admin
        .post(
            "/v1/campaigns",
            json!({"name": "C", "url": "http://127.0.0.1:9/c", "schedule": {"type": "scheduled", "at": "25:00", "days": ["mon"], "timezone": "UTC"}}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"]["field"].as_str()),
        (422, Some("schedule.at")),
        "{e}"
    );
    let (status, e) = admin
        .post(
            "/v1/webhooks",
            json!({"name": " ", "events": ["delivered"], "channel": web("http://127.0.0.1:9/x")}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"]["field"].as_str()),
        (422, Some("name")),
        "{e}"
    );
    let (status, e) = admin
        .post(
            "/v1/webhooks",
            json!({"name": "N", "events": ["delivered"], "channel": web("http://127.0.0.1:9/x"),
                   "payload": {"transform": "text = email +"}}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"]["field"].as_str()),
        (422, Some("payload.transform")),
        "{e}"
    );
    assert_eq!(e["error"]["details"]["line"], 1);
}
