//! Accounts apart, proven on a platform (run on both adapter sets): every
//! admin operation of the API document, called with account A's key on
//! account B's objects, answers 404; A's lists never show B's objects; B's
//! cursors, ids in bodies and lookups reach nothing of B from A; and B's
//! objects are all still there afterwards.

use serde_json::{Value, json};
use std::sync::Arc;

use crate::Platform;

use super::Client as Caller;

/// What B holds, by the name of the path parameter that finds it.
struct Held {
    list: String,
    sequence: String,
    trigger: String,
    request: String,
    contact: String,
    email: String,
    dead_letter: String,
    key: String,
    webhook: String,
    campaign: String,
    /// A profile's `$distinct_id`.
    profile: String,
    /// A cursor of B's lists (B has two, paged one at a time).
    cursor: String,
}

async fn hold(platform: &Arc<Platform>, b: &Caller) -> Held {
    let list = b.id("/v1/lists", json!({"name": "B's list"})).await;
    b.id("/v1/lists", json!({"name": "B's other list"})).await;
    let sequence = b.id("/v1/sequences", json!({"name": "B's sequence"})).await;
    let trigger = b
        .id(
            "/v1/triggers",
            json!({"name": "B's trigger", "actions": [{"type": "add_to_list", "list_id": list}]}),
        )
        .await;
    let email = "b-only@example.com".to_string();
    let (status, taken) = b
        .call(
            "POST",
            &format!("/hooks/{trigger}"),
            Some(json!({ "email": email })),
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    let request = taken["request_id"]
        .as_str()
        .expect("request id")
        .to_string();
    // Applied here, by the apply queue's own handler.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(crate::work::drive(
        platform.apply_queue.clone(),
        Arc::new(crate::apply::ApplyHandler::new(platform.clone())),
        stopped,
    ));
    let mut contact = String::new();
    for _ in 0..200 {
        let (status, found) = b
            .call("GET", &format!("/v1/contacts?email={email}"), None)
            .await;
        if status == 200 {
            contact = found["id"].as_str().expect("contact id").to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.send(true).expect("worker listening");
    worker.await.expect("worker stops");
    assert!(!contact.is_empty(), "B's request was not applied");
    let message = crate::messages::ApplyMessage::PurgeTriggerLog {
        account: b_account(platform, &b.key).await,
        trigger_id: crate::ids::TriggerId::parse(&trigger).expect("trigger id"),
    };
    crate::dead_letters::keep_apply(platform, &message.encode(), "for the test", 8)
        .await
        .expect("dead letter kept");
    let (_, letters) = b.call("GET", "/v1/dead-letters", None).await;
    let dead_letter = letters["data"][0]["id"]
        .as_str()
        .expect("dead letter")
        .to_string();
    let (_, keys) = b.call("GET", "/v1/keys", None).await;
    let key = keys["data"][0]["id"].as_str().expect("key id").to_string();
    let webhook = b
        .id(
            "/v1/webhooks",
            json!({"name": "B's webhook", "events": ["delivered"],
                   "channel": {"type": "web", "url": "https://b.example.com/hook", "secret": "b's secret, kept apart"}}),
        )
        .await;
    let campaign = b
        .id(
            "/v1/campaigns",
            json!({"name": "B's campaign", "url": "https://b.example.com/mixpanel", "active": false,
                   "schedule": {"type": "scheduled", "at": "09:00", "days": ["wed"]}}),
        )
        .await;
    let profile = "b-only-user".to_string();
    let (status, set) = b
        .call(
            "POST",
            "/v1/profiles",
            Some(json!({"$distinct_id": profile, "$properties": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    let (_, page) = b.call("GET", "/v1/lists?limit=1", None).await;
    let cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
    Held {
        list,
        sequence,
        trigger,
        request,
        contact,
        email,
        dead_letter,
        key,
        webhook,
        campaign,
        profile,
        cursor,
    }
}

async fn b_account(platform: &Platform, key: &str) -> String {
    crate::accounts::authenticate(platform, key)
        .await
        .expect("B's key")
}

/// The path with B's ids in place of its parameters.
fn with_ids(path: &str, held: &Held) -> String {
    let id = if path.starts_with("/v1/lists/") {
        &held.list
    } else if path.starts_with("/v1/sequences/") {
        &held.sequence
    } else if path.starts_with("/v1/contacts/") {
        &held.contact
    } else if path.starts_with("/v1/triggers/") {
        &held.trigger
    } else if path.starts_with("/v1/dead-letters/") {
        &held.dead_letter
    } else if path.starts_with("/v1/keys/") {
        &held.key
    } else if path.starts_with("/v1/webhooks/") {
        &held.webhook
    } else if path.starts_with("/v1/campaigns/") {
        &held.campaign
    } else if path.starts_with("/v1/profiles/") {
        &held.profile
    } else {
        panic!("{path}: which of B's objects does its {{id}} name? Add it to the isolation suite")
    };
    path.replace("{id}", id)
        .replace("{distinct_id}", id)
        .replace("{request_id}", &held.request)
}

/// A body each operation takes, so that it reaches the lookup of its object.
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("post", p) if p.ends_with("/preview") => {
            Some(json!({"sample": {"email": "a@example.com"}}))
        }
        ("patch", _) => Some(json!({"name": "taken by A"})),
        ("post", _) => Some(json!({})),
        _ => None,
    }
}

/// Runs the suite on `platform` (the default account's key is made here).
pub async fn check(platform: Arc<Platform>) {
    let a_key = match crate::accounts::ensure_default(&platform, None).await {
        Ok(Some(key)) => key,
        other => panic!("the default account's key, new: {other:?}"),
    };
    let a = Caller {
        platform: platform.clone(),
        key: a_key,
    };
    let (_, b_key) = crate::accounts::create(&platform, "B", Default::default())
        .await
        .expect("account B");
    let b = Caller {
        platform: platform.clone(),
        key: b_key,
    };
    let held = hold(&platform, &b).await;
    let b_ids = [
        &held.list,
        &held.sequence,
        &held.trigger,
        &held.request,
        &held.contact,
        &held.dead_letter,
        &held.key,
        &held.webhook,
        &held.campaign,
    ];

    let doc = crate::http::openapi::document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/") || path.starts_with("/v1/operator/") {
            continue;
        }
        for method in item.as_object().expect("operations").keys() {
            let upper = method.to_uppercase();
            if path.contains('{') {
                let concrete = with_ids(path, &held);
                let got = a.call(&upper, &concrete, body_for(method, path)).await;
                assert_eq!(
                    got.0, 404,
                    "{upper} {path} with A's key on B's object: {got:?}"
                );
                assert_eq!(
                    got.1["error"]["code"], "not_found",
                    "{upper} {path}: {got:?}"
                );
                // The same path reaches the object with B's own key.
                if method == "get" {
                    let mine = b.call("GET", &concrete, None).await;
                    assert_eq!(mine.0, 200, "GET {path} with B's own key: {mine:?}");
                }
                checked += 1;
            } else if method == "get" {
                // A's own lists show nothing of B's.
                let (status, page) = a.call("GET", path, None).await;
                assert_eq!(status, 200, "GET {path}: {page}");
                let text = page.to_string();
                for id in b_ids {
                    assert!(
                        !text.contains(id.as_str()),
                        "GET {path} shows B's {id}: {text}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} operations checked");

    // B's cursor, B's ids in a body, B's contact by email: nothing of B.
    let got = a
        .call("GET", &format!("/v1/lists?cursor={}", held.cursor), None)
        .await;
    assert_eq!(got.0, 400, "B's cursor from A: {got:?}");
    assert_eq!(got.1["error"]["code"], "invalid_cursor");
    let got = a
        .call(
            "POST",
            "/v1/dead-letters/redrive",
            Some(json!({"ids": [held.dead_letter]})),
        )
        .await;
    assert_eq!(got.0, 404, "redriving B's dead letter from A: {got:?}");
    let got = a
        .call(
            "POST",
            "/v1/triggers",
            Some(json!({"name": "T", "actions": [{"type": "add_to_list", "list_id": held.list}]})),
        )
        .await;
    assert_eq!(got.0, 422, "A's trigger into B's list: {got:?}");
    let got = a
        .call("GET", &format!("/v1/contacts?email={}", held.email), None)
        .await;
    assert_eq!(got.0, 404, "B's contact by email from A: {got:?}");

    // A's clean-ups of its own dead letters leave B's.
    assert_eq!(
        a.call("POST", "/v1/dead-letters/redrive", None).await.0,
        202
    );
    assert_eq!(a.call("DELETE", "/v1/dead-letters", None).await.0, 204);

    // Nothing A did reached B: every object is still there, unchanged.
    for path in [
        format!("/v1/lists/{}", held.list),
        format!("/v1/sequences/{}", held.sequence),
        format!("/v1/contacts/{}", held.contact),
        format!("/v1/triggers/{}", held.trigger),
        format!("/v1/triggers/{}/requests/{}", held.trigger, held.request),
        format!("/v1/webhooks/{}", held.webhook),
        format!("/v1/campaigns/{}", held.campaign),
        format!("/v1/profiles/{}", held.profile),
    ] {
        let (status, found) = b.call("GET", &path, None).await;
        assert_eq!(status, 200, "B's {path} after A's calls: {found}");
        assert_ne!(found["name"], "taken by A", "{path}");
    }
    let (_, trigger) = b
        .call("GET", &format!("/v1/triggers/{}", held.trigger), None)
        .await;
    assert_eq!(trigger["active"], true, "A deactivated B's trigger");
    assert_eq!(
        trigger["require_api_key"], false,
        "A rotated B's trigger key"
    );
    let (_, webhook) = b
        .call("GET", &format!("/v1/webhooks/{}", held.webhook), None)
        .await;
    assert_eq!(webhook["active"], true, "A deactivated B's webhook");
    assert_eq!(webhook["channel"]["signed"], true, "{webhook}");
    let (_, letters) = b.call("GET", "/v1/dead-letters", None).await;
    assert_eq!(letters["data"].as_array().map(Vec::len), Some(1));
    let (_, keys) = b.call("GET", "/v1/keys", None).await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(1));
}
