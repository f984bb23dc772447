//! Outbound webhooks through the admin router: create, checks, secrets,
//! limits, delete.

use hookline::Platform;
use hookline::testkit::Client;
use serde_json::{Value, json};
use std::sync::Arc;

async fn client(settings: hookline::config::Settings) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let platform = hookline::adapters::embedded::platform(
        dir.path(),
        settings,
        Arc::new(hookline::ports::SystemClock),
    )
    .unwrap();
    let key = hookline::accounts::ensure_default(&platform, None)
        .await
        .unwrap()
        .unwrap();
    (Client { platform, key }, dir)
}

fn open() -> hookline::config::Settings {
    hookline::config::Settings {
        allow_private_targets: true,
        ..Default::default()
    }
}

fn contract_example() -> Value {
    json!({"name": "CRM Integration - Opens",
        "channel": {"type": "web", "url": "https://api.example.com/hooks", "method": "POST",
                    "content_type": "json", "auth": {"type": "basic", "username": "u", "password": "p4ssw0rd-never-shown"},
                    "secret": "a secret of sixteen or more"},
        "events": ["delivered", "newsletter_opened"],
        "filters": {"sending_domain": ["mail.example.com"], "sending_node": ["smtp1"], "bridge": [], "dedicated_ip": []},
        "payload": {"mappings": [{"field": "email", "from": "email"}, {"field": "source", "value": "webhook"}]},
        "log_response_body": true,
        "active": true})
}

/// The stored webhook, credentials included.
async fn stored(p: &Platform, id: &str) -> hookline::webhooks::Webhook {
    let id = hookline::ids::WebhookId::parse(id).unwrap();
    let account = hookline::accounts::DEFAULT_ACCOUNT;
    hookline::webhooks::get(p, account, &id).await.unwrap().0
}

#[tokio::test]
async fn a_webhook_is_made_listed_and_never_shows_its_credentials() {
    let (c, _dir) = client(open()).await;
    let (status, made) = c
        .call("POST", "/v1/webhooks", Some(contract_example()))
        .await;
    assert_eq!(status, 201, "{made}");
    let text = made.to_string();
    assert!(!text.contains("p4ssw0rd"), "password answered: {text}");
    assert!(!text.contains("sixteen"), "secret answered: {text}");
    assert_eq!(
        made["channel"]["auth"],
        json!({"type": "basic", "username": "u"})
    );
    assert_eq!(made["channel"]["signed"], true);
    assert_eq!(made["endpoint"], "https://api.example.com/hooks");
    assert_eq!(made["status"], "active");
    // Empty filters match anything, so they are not kept.
    assert_eq!(
        made["filters"],
        json!({"sending_domain": ["mail.example.com"], "sending_node": ["smtp1"]})
    );
    let id = made["id"].as_str().unwrap();
    let (status, got) = c.call("GET", &format!("/v1/webhooks/{id}"), None).await;
    assert_eq!((status, &got), (200, &made));
    let (status, list) = c.call("GET", "/v1/webhooks", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["id"], id);
    assert_eq!(
        list["data"][0]["events"],
        json!(["delivered", "newsletter_opened"])
    );
    assert_eq!(list["data"][0]["created_at"], made["created_at"]);
    assert_eq!(list["usage"], json!({"count": 1, "limit": 100}));
    let (_, usage) = c.call("GET", "/v1/usage", None).await;
    assert_eq!(usage["webhooks"], 1, "{usage}");
    // The secret is kept in the Standard Webhooks form.
    let w = stored(&c.platform, id).await;
    assert!(w.secrets[0].value.starts_with("whsec_"));
}

#[tokio::test]
async fn bad_webhooks_are_422s_naming_the_field() {
    let (strict, _d1) = client(hookline::config::Settings::default()).await;
    let (c, _d2) = client(open()).await;
    let web = |channel: Value| json!({"name": "w", "events": ["delivered"], "channel": channel});
    let cases: Vec<(&Client, Value, &str)> = vec![
        (
            &strict,
            web(json!({"type": "web", "url": "http://api.example.com/h"})),
            "channel.url: must be https",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "ftp://api.example.com/h"})),
            "channel.url",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "not a url"})),
            "channel.url",
        ),
        (&c, web(json!({"type": "web"})), "channel.url: is required"),
        (
            &strict,
            web(json!({"type": "web", "url": "https://127.0.0.1/h"})),
            "loopback",
        ),
        (
            &strict,
            web(json!({"type": "web", "url": "https://10.0.0.8/h"})),
            "private",
        ),
        (
            &strict,
            web(json!({"type": "web", "url": "https://[::ffff:169.254.169.254]/h"})),
            "metadata",
        ),
        // Metadata stays refused even where private targets are allowed.
        (
            &c,
            web(json!({"type": "web", "url": "http://169.254.169.254/latest"})),
            "metadata",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "https://u:p@api.example.com/h"})),
            "credentials",
        ),
        (
            &c,
            web(
                json!({"type": "web", "url": "https://a.example.com", "method": "GET",
                        "auth": {"type": "basic", "username": "u", "password": "p"}}),
            ),
            "only available with the POST method",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "https://a.example.com", "method": "PUT"})),
            "channel.method",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "https://a.example.com", "content_type": "xml"})),
            "channel.content_type",
        ),
        (
            &c,
            web(
                json!({"type": "web", "url": "https://a.example.com", "auth": {"type": "basic", "username": "u"}}),
            ),
            "channel.auth.password: is required",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "https://a.example.com", "auth": {"type": "digest"}})),
            "channel.auth.type",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "https://a.example.com", "secret": "short"})),
            "channel.secret",
        ),
        (
            &c,
            web(json!({"type": "web", "url": "https://a.example.com", "user_key": "k"})),
            "channel.user_key: is for pushover",
        ),
        (
            &c,
            web(json!({"type": "pushover", "user_key": "u", "api_token": "t", "sound": "kazoo"})),
            "channel.sound",
        ),
        (
            &c,
            web(json!({"type": "pushover", "api_token": "t"})),
            "channel.user_key: is required",
        ),
        (
            &c,
            web(
                json!({"type": "pushover", "user_key": "u", "api_token": "t", "url": "https://a.example.com"}),
            ),
            "channel.url: is for web",
        ),
        (
            &c,
            web(json!({"type": "twilio", "account_sid": "AC1", "auth_token": "t"})),
            "channel.from: is required",
        ),
        (&c, web(json!({"type": "carrier-pigeon"})), "channel.type"),
        (
            &c,
            json!({"name": "w", "events": ["deliverd"], "channel": {"type": "web", "url": "https://a.example.com"}}),
            "unknown event type \"deliverd\"",
        ),
        (
            &c,
            json!({"name": "w", "events": [], "channel": {"type": "web", "url": "https://a.example.com"}}),
            "events: subscribe to at least one",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "filters": {"sending_host": ["x"]},
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "unknown filter \"sending_host\"",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "filters": {"bridge": "x"},
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "filters.bridge: must be a list",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "payload": {"mappings": [{"field": "a", "from": "b"}], "transform": "a = b"},
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "not both",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "payload": {"mappings": [{"field": "a"}]},
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "payload.mappings[0]: give from",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "payload": {"mappings": [{"field": "a", "from": "x"}, {"field": "a.b", "value": 1}]},
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "payload.mappings[1].field",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "payload": {"transform": "text = \"Bounce: \" +"},
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "payload.transform line 1",
        ),
        (
            &c,
            json!({"name": "w", "events": ["delivered"], "rate_limit": 0,
                    "channel": {"type": "web", "url": "https://a.example.com"}}),
            "rate_limit",
        ),
        (
            &c,
            json!({"name": "  ", "events": ["delivered"], "channel": {"type": "web", "url": "https://a.example.com"}}),
            "name",
        ),
    ];
    for (client, body, expected) in cases {
        let (status, got) = client
            .call("POST", "/v1/webhooks", Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body} answered {got}");
        let message = got["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{body}: {message:?} lacks {expected:?}"
        );
    }
    // A typo'd field is refused, not ignored.
    let (status, got) = c
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"name": "w", "events": ["delivered"], "evnts": [],
            "channel": {"type": "web", "url": "https://a.example.com"}})),
        )
        .await;
    assert_eq!(status, 422, "{got}");
    assert!(got["error"]["message"].as_str().unwrap().contains("evnts"));
    // Nothing was made.
    let (_, list) = c.call("GET", "/v1/webhooks", None).await;
    assert_eq!(list["usage"]["count"], 0, "{list}");
}

#[tokio::test]
async fn pushover_sounds_and_twilio_channels() {
    let (c, _dir) = client(open()).await;
    for (given, kept) in [
        ("Cash Register", "cashregister"),
        ("Mute", "none"),
        ("tugboat", "tugboat"),
        ("Alien Alarm", "alien"),
    ] {
        let (status, made) = c
            .call("POST", "/v1/webhooks", Some(json!({"name": "Bounce Alerts - Pushover", "events": ["bounced", "complaint"],
                "channel": {"type": "pushover", "user_key": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "api_token": "azGDORePK8gMaC0QOYAMyEEuzJnyUi", "sound": given}})))
            .await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(made["channel"]["sound"], kept);
        assert_eq!(made["endpoint"], "pushover");
        assert!(
            !made.to_string().contains("azGDOR"),
            "token answered: {made}"
        );
    }
    let (status, made) = c
        .call("POST", "/v1/webhooks", Some(json!({"name": "SMS", "events": ["bounced"],
            "channel": {"type": "twilio", "account_sid": "AC123", "auth_token": "twilio-token", "from": "+15005550006"}})))
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["channel"],
        json!({"type": "twilio", "account_sid": "AC123", "from": "+15005550006", "to_field": "phone_number"})
    );
    assert_eq!(hookline::webhooks::SOUNDS.len(), 23);
}

#[tokio::test]
async fn updates_keep_what_they_leave_out_and_secrets_rotate_with_overlap() {
    let (c, _dir) = client(open()).await;
    let id = c.id("/v1/webhooks", contract_example()).await;
    let path = format!("/v1/webhooks/{id}");
    let first = stored(&c.platform, &id).await;

    // A new URL; the secret absent, then blank: kept, as the password.
    for secret in [None, Some(""), Some("   ")] {
        let mut channel = json!({"type": "web", "url": "https://api.example.com/v2", "auth": {"type": "basic", "username": "u"}});
        if let Some(s) = secret {
            channel["secret"] = json!(s);
        }
        let (status, got) = c
            .call("PATCH", &path, Some(json!({"channel": channel})))
            .await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["endpoint"], "https://api.example.com/v2");
        let now = stored(&c.platform, &id).await;
        assert_eq!(now.secrets, first.secrets, "secret {secret:?} kept");
        assert_eq!(now.channel_password(), Some("p4ssw0rd-never-shown"));
    }
    // Other fields, alone.
    let (status, got) = c
        .call(
            "PATCH",
            &path,
            Some(
                json!({"name": "Renamed", "events": ["bounced"], "payload": null, "rate_limit": 5}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        (
            got["name"].clone(),
            got["payload"].clone(),
            got["rate_limit"].clone()
        ),
        (json!("Renamed"), Value::Null, json!(5))
    );
    assert_eq!(got["events"], json!(["bounced"]));
    assert_eq!(got["channel"]["signed"], true);
    // A new secret replaces the old; null removes it.
    c.call("PATCH", &path, Some(json!({"channel": {"type": "web", "url": "https://api.example.com/v2", "secret": "another secret, long enough"}}))).await;
    let now = stored(&c.platform, &id).await;
    assert_eq!(now.secrets.len(), 1);
    assert_ne!(now.secrets, first.secrets);
    // What a channel leaves out is kept: the type stays web, and so do its
    // method, content type and basic auth.
    assert_eq!(now.channel_password(), Some("p4ssw0rd-never-shown"));
    let (_, got) = c
        .call(
            "PATCH",
            &path,
            Some(json!({"channel": {"type": "web", "auth": {"type": "none"}}})),
        )
        .await;
    assert_eq!(got["channel"]["auth"], json!({"type": "none"}), "{got}");
    assert_eq!(got["endpoint"], "https://api.example.com/v2");
    let now = stored(&c.platform, &id).await;
    assert!(now.channel_password().is_none(), "auth none removes it");

    // Rotation: the new secret answered once, the old one signing for 24 h.
    let before = now.secrets[0].value.clone();
    let (status, rotated) = c.call("POST", &format!("{path}/rotate-secret"), None).await;
    assert_eq!(status, 200, "{rotated}");
    let secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let (_, shown) = c.call("GET", &path, None).await;
    assert!(
        !shown.to_string().contains(&secret[6..]),
        "secret shown again"
    );
    let w = stored(&c.platform, &id).await;
    let now = chrono::Utc::now();
    let signing: Vec<&str> = w.signing_secrets(now).collect();
    assert_eq!(signing, vec![secret.as_str(), before.as_str()]);
    let later: Vec<&str> = w
        .signing_secrets(now + chrono::Duration::hours(25))
        .collect();
    assert_eq!(later, vec![secret.as_str()]);

    let (status, got) = c.call("PATCH", &path, Some(json!({"channel": {"type": "web", "url": "https://api.example.com/v2", "secret": null}}))).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["channel"]["signed"], false);

    // Deactivate and activate.
    let (_, got) = c.call("POST", &format!("{path}/deactivate"), None).await;
    assert_eq!(
        (got["active"].clone(), got["status"].clone()),
        (json!(false), json!("inactive"))
    );
    let (_, got) = c.call("POST", &format!("{path}/activate"), None).await;
    assert_eq!(got["status"], "active");
}

#[tokio::test]
async fn the_webhook_limit_stops_creation_not_delivery() {
    let settings = hookline::config::Settings {
        webhook_limit: 2,
        ..open()
    };
    let (c, _dir) = client(settings).await;
    let body = |n: u32| json!({"name": format!("w{n}"), "events": ["delivered"], "channel": {"type": "web", "url": "https://a.example.com"}});
    let first = c.id("/v1/webhooks", body(1)).await;
    c.id("/v1/webhooks", body(2)).await;
    let (status, got) = c.call("POST", "/v1/webhooks", Some(body(3))).await;
    assert_eq!(status, 403, "{got}");
    assert_eq!(got["error"]["code"], "webhook_limit_reached");
    let (_, list) = c.call("GET", "/v1/webhooks", None).await;
    assert_eq!(list["usage"], json!({"count": 2, "limit": 2}));
    // Existing ones go on: readable, changeable.
    let (status, _) = c
        .call(
            "PATCH",
            &format!("/v1/webhooks/{first}"),
            Some(json!({"name": "still here"})),
        )
        .await;
    assert_eq!(status, 200);
    // Deleting one makes room.
    let (status, _) = c
        .call("DELETE", &format!("/v1/webhooks/{first}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, got) = c.call("GET", &format!("/v1/webhooks/{first}"), None).await;
    assert_eq!(status, 404, "{got}");
    let (status, got) = c
        .call("DELETE", &format!("/v1/webhooks/{first}"), None)
        .await;
    assert_eq!(status, 404, "{got}");
    c.id("/v1/webhooks", body(4)).await;
    let (_, list) = c.call("GET", "/v1/webhooks", None).await;
    assert_eq!(list["usage"]["count"], 2);
}

#[tokio::test]
async fn events_a_trigger_publishes_may_be_subscribed_to() {
    let (c, _dir) = client(open()).await;
    let body = json!({"name": "w", "events": ["delivered", "candidate.hired"], "channel": {"type": "web", "url": "https://a.example.com"}});
    let (status, got) = c.call("POST", "/v1/webhooks", Some(body.clone())).await;
    assert_eq!(status, 422, "{got}");
    c.id(
        "/v1/triggers",
        json!({"name": "t", "actions": [{"type": "publish_event", "event": "candidate.hired"}]}),
    )
    .await;
    let (status, got) = c.call("POST", "/v1/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{got}");
    assert_eq!(got["events"], json!(["delivered", "candidate.hired"]));
}

#[tokio::test]
async fn events_are_bounded_and_checked() {
    let (c, _dir) = client(open()).await;
    let one = json!({"event": "delivered", "email": "a@example.com"});
    let cases = [
        (json!({"events": vec![one.clone(); 101]}), "1 to 100 events"),
        (json!({"events": []}), "1 to 100 events"),
        (
            json!({"event": "delivered", "blob": "x".repeat(70 * 1024)}),
            "more than 65536",
        ),
        (
            json!({"email": "a@example.com"}),
            "event.event: is required",
        ),
        (json!({"event": "Not A Name"}), "event.event"),
        (json!({"event": "delivered", "id": "mine"}), "event.id"),
        (
            json!({"event": "delivered", "timestamp": "yesterday"}),
            "event.timestamp",
        ),
        (
            json!({"event": "delivered", "campaign_id": [1]}),
            "event.campaign_id",
        ),
        (
            json!({"events": [one.clone(), {"event": "delivered", "email": 5}]}),
            "events[1].email",
        ),
    ];
    for (body, expected) in cases {
        let (status, got) = c.call("POST", "/v1/events", Some(body)).await;
        assert_eq!(status, 422, "{got}");
        let message = got["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    let (status, got) = c
        .call(
            "POST",
            "/v1/events",
            Some(json!({"events": vec![one; 100]})),
        )
        .await;
    assert_eq!(status, 202, "{got}");
    assert_eq!(got["ids"].as_array().unwrap().len(), 100);
}
