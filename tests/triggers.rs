//! Inbound triggers end to end: the `hookline` binary, over HTTP, as the
//! Mixmax and Heymarket seed documents use them.

mod support;

use serde_json::{Value, json};
use support::Admin;

const MIXMAX_TRANSFORM: &str =
    "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name";

#[tokio::test]
async fn mixmax_seed_nested_candidate_lands_in_the_list() {
    let a = Admin::start();
    let list = a
        .create("/v1/lists", json!({"name": "Greenhouse candidates"}))
        .await;
    let list_id = list["id"].as_str().unwrap();
    let trigger = a
        .create("/v1/triggers", json!({
            "name": "Greenhouse candidates", "identifier": "email", "transform": MIXMAX_TRANSFORM,
            "actions": [{"type": "add_to_list", "list_id": list_id}], "require_api_key": false, "active": true
        }))
        .await;
    let id = trigger["id"].as_str().unwrap();
    let url = trigger["url"].as_str().unwrap();
    assert_eq!(
        url,
        a.server.url(&format!("/hooks/{id}")),
        "the URL is the one to POST to"
    );
    assert!(trigger.get("api_key").is_none(), "no key unless required");

    let (status, body) = a
        .hook(url, &json!({"candidate": {"email": "john@example.com", "first_name": "John", "last_name": "Doe"}}), &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Request captured successfully");
    let request_id = body["request_id"].as_str().unwrap();

    let record = a.applied(id, request_id).await;
    assert_eq!(record["status"], "applied", "{record}");
    assert_eq!(record["contact"]["name"], "John Doe");
    assert_eq!(
        record["actions"][0],
        json!({"type": "add_to_list", "ok": true, "detail": "added"})
    );

    let (_, members) = a.get(&format!("/v1/lists/{list_id}/contacts")).await;
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
    assert_eq!(members["data"][0]["name"], "John Doe");
    assert_eq!(members["data"][0]["email"], "john@example.com");
    let (status, contact) = a.get("/v1/contacts?email=JOHN@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(contact["lists"], json!([list_id]));
    // What the store keeps for the domain alone is not answered.
    let (_, all) = a.get("/v1/contacts").await;
    let (_, log) = a.get(&format!("/v1/triggers/{id}/requests")).await;
    for shown in [
        &contact,
        &all["data"][0],
        &record["contact"],
        &log["data"][0]["contact"],
        &members["data"][0],
    ] {
        assert_eq!(shown["email"], "john@example.com", "{shown}");
        assert!(shown.get("changed_by_request_at").is_none(), "{shown}");
    }

    // Mixmax's flat form needs no transform.
    let flat = a
        .create(
            "/v1/triggers",
            json!({"name": "Flat", "actions": [{"type": "add_to_list", "list_id": list_id}]}),
        )
        .await;
    let (_, body) = a
        .hook(
            flat["url"].as_str().unwrap(),
            &json!({"email": "jane@example.com", "name": "Jane Doe"}),
            &[],
        )
        .await;
    let record = a
        .applied(
            flat["id"].as_str().unwrap(),
            body["request_id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(record["status"], "applied", "{record}");
    let (_, members) = a.get(&format!("/v1/lists/{list_id}/contacts")).await;
    assert_eq!(members["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn heymarket_seed_bearer_key_phone_identifier_and_exact_answer() {
    // The message goes out by SMS, through a local fake of Twilio's API.
    let twilio = support::receiver::Receiver::start().await;
    let a = Admin::start_with(&[
        ("HOOKLINE_TWILIO_URL", twilio.base.as_str()),
        ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "1"),
    ]);
    let sms = a
        .create("/v1/webhooks", json!({"name": "SMS", "events": ["delivered"],
            "channel": {"type": "twilio", "account_sid": "AC123", "auth_token": "twilio-token", "from": "+15005550006"}}))
        .await;
    let trigger = a
        .create("/v1/triggers", json!({
            "name": "Salesforce leads", "identifier": "phone_number", "require_api_key": true,
            "actions": [{"type": "update_contact"}, {"type": "send_message", "webhook_id": sms["id"], "template": "Hi {{first_name}}, thanks!"}]
        }))
        .await;
    let (id, url) = (
        trigger["id"].as_str().unwrap(),
        trigger["url"].as_str().unwrap(),
    );
    let api_key = trigger["api_key"]
        .as_str()
        .expect("the key is shown once")
        .to_string();
    let sample = json!({"phone_number": "12155556677", "first_name": "John", "last_name": "Smith", "Integration": "Salesforce"});

    let (status, body) = a.hook(url, &sample, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = a
        .hook(
            url,
            &sample,
            &[("authorization", "Bearer hl_trigger_wrong")],
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = a
        .hook(
            url,
            &sample,
            &[("authorization", &format!("Bearer {}", a.key))],
        )
        .await;
    assert_eq!(status, 401, "the admin key is not the trigger's key");

    let auth = format!("Bearer {api_key}");
    let (status, body) = a.hook(url, &sample, &[("authorization", &auth)]).await;
    assert_eq!(status, 200);
    let request_id = body["request_id"].as_str().unwrap().to_string();
    assert_eq!(
        body,
        json!({"message": "Request captured successfully", "request_id": request_id}),
        "exactly this answer"
    );

    let record = a.applied(id, &request_id).await;
    assert_eq!(record["status"], "applied", "{record}");
    assert_eq!(record["actions"][1]["ok"], true);
    let (status, contact) = a
        .get("/v1/contacts?phone_number=%2B1%20(215)%20555-6677")
        .await;
    assert_eq!(status, 200, "found by the number however it is written");
    assert_eq!(
        (
            contact["first_name"].as_str(),
            contact["last_name"].as_str()
        ),
        (Some("John"), Some("Smith"))
    );
    assert_eq!(contact["name"], "John Smith");
    assert_eq!(contact["phone_number"], "12155556677");
    let sent = twilio
        .wait_for(
            "/2010-04-01/Accounts/AC123/Messages.json",
            1,
            std::time::Duration::from_secs(20),
        )
        .await;
    let form = sent[0].form();
    assert_eq!(
        (
            form["To"].as_str(),
            form["From"].as_str(),
            form["Body"].as_str()
        ),
        ("12155556677", "+15005550006", "Hi John, thanks!")
    );
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("AC123:twilio-token");
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );

    // The key is kept only hashed: it never appears again.
    let (_, shown) = a.get(&format!("/v1/triggers/{id}")).await;
    assert!(!shown.to_string().contains(&api_key));
    assert!(shown.get("api_key_sha256").is_none());
    // A rotated key replaces the old one.
    let (_, rotated) = a
        .post(&format!("/v1/triggers/{id}/rotate-key"), json!({}))
        .await;
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_eq!(
        a.hook(url, &sample, &[("authorization", &auth)]).await.0,
        401
    );
    assert_eq!(
        a.hook(
            url,
            &sample,
            &[("authorization", &format!("Bearer {new_key}"))]
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn sequences_started_and_stopped() {
    let a = Admin::start();
    let seq = a
        .create("/v1/sequences", json!({"name": "Onboarding"}))
        .await;
    let seq_id = seq["id"].as_str().unwrap();
    let start = a.create("/v1/triggers", json!({"name": "Signed up", "actions": [{"type": "add_to_sequence", "sequence_id": seq_id}]})).await;
    let stop = a.create("/v1/triggers", json!({"name": "Replied", "actions": [{"type": "stop_sequence", "sequence_id": seq_id}]})).await;
    let person = json!({"email": "ada@example.com", "name": "Ada"});

    let (_, r) = a.hook(start["url"].as_str().unwrap(), &person, &[]).await;
    a.applied(
        start["id"].as_str().unwrap(),
        r["request_id"].as_str().unwrap(),
    )
    .await;
    let (_, members) = a.get(&format!("/v1/sequences/{seq_id}/contacts")).await;
    assert_eq!(members["data"][0]["status"], "active", "{members}");
    assert_eq!(members["data"][0]["email"], "ada@example.com");

    let (_, r) = a.hook(stop["url"].as_str().unwrap(), &person, &[]).await;
    let record = a
        .applied(
            stop["id"].as_str().unwrap(),
            r["request_id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(record["actions"][0]["detail"], "stopped");
    let (_, members) = a.get(&format!("/v1/sequences/{seq_id}/contacts")).await;
    assert_eq!(members["data"][0]["status"], "stopped");
    assert!(members["data"][0]["stopped_at"].is_string());
    assert!(
        members["data"][0].get("changed_by_request_at").is_none(),
        "{members}"
    );

    // Stopping someone who was never enrolled is recorded as such.
    let (_, r) = a
        .hook(
            stop["url"].as_str().unwrap(),
            &json!({"email": "bob@example.com"}),
            &[],
        )
        .await;
    let record = a
        .applied(
            stop["id"].as_str().unwrap(),
            r["request_id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(record["actions"][0]["detail"], "not in the sequence");
}

#[tokio::test]
async fn an_idempotent_repeat_is_a_no_op_answering_the_first_request_id() {
    let a = Admin::start();
    let list = a.create("/v1/lists", json!({"name": "L"})).await;
    let t = a
        .create(
            "/v1/triggers",
            json!({"name": "T", "actions": [{"type": "add_to_list", "list_id": list["id"]}]}),
        )
        .await;
    let (id, url) = (t["id"].as_str().unwrap(), t["url"].as_str().unwrap());
    let body = json!({"email": "once@example.com"});
    let (_, first) = a
        .hook(url, &body, &[("idempotency-key", "order-123")])
        .await;
    let (_, again) = a
        .hook(url, &body, &[("idempotency-key", "order-123")])
        .await;
    assert_eq!(first["request_id"], again["request_id"]);
    let (_, other) = a
        .hook(url, &body, &[("idempotency-key", "order-124")])
        .await;
    assert_ne!(other["request_id"], first["request_id"]);
    a.applied(id, other["request_id"].as_str().unwrap()).await;
    a.applied(id, first["request_id"].as_str().unwrap()).await;
    let (_, log) = a.get(&format!("/v1/triggers/{id}/requests")).await;
    let ids: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            other["request_id"].as_str().unwrap(),
            first["request_id"].as_str().unwrap()
        ],
        "newest first, once each"
    );
}

#[tokio::test]
async fn a_failed_request_is_recorded_and_can_be_replayed() {
    let a = Admin::start();
    let list = a.create("/v1/lists", json!({"name": "L"})).await;
    let t = a
        .create("/v1/triggers", json!({"name": "T", "transform": MIXMAX_TRANSFORM, "actions": [{"type": "add_to_list", "list_id": list["id"]}]}))
        .await;
    let (id, url) = (t["id"].as_str().unwrap(), t["url"].as_str().unwrap());
    let (_, r) = a
        .hook(
            url,
            &json!({"candidate": {"email": "x@example.com", "first_name": "X"}}),
            &[],
        )
        .await;
    let request_id = r["request_id"].as_str().unwrap();
    let record = a.applied(id, request_id).await;
    assert_eq!(record["status"], "failed");
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.contains("line 2") && reason.contains("last_name"),
        "{reason}"
    );
    assert_eq!(record["contact"], Value::Null);

    let (status, _) = a.send(reqwest::Method::PATCH, &format!("/v1/triggers/{id}"), Some(json!({
        "transform": "email = candidate.email\nname = candidate.first_name + (has(candidate.last_name) ? \" \" + candidate.last_name : \"\")"
    }))).await;
    assert_eq!(status, 200);
    let (status, replay) = a
        .post(
            &format!("/v1/triggers/{id}/requests/{request_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, replay["attempt"].as_u64()),
        (202, Some(2)),
        "{replay}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let record = loop {
        let record = a.applied(id, request_id).await;
        if record["attempts"] == 2 {
            break record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replay not applied: {record}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(record["status"], "applied", "{record}");
    assert_eq!(record["contact"]["name"], "X");
    let (status, body) = a
        .post(
            &format!("/v1/triggers/{id}/requests/{request_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_failed"))
    );
}

/// The leaf paths a preview answered.
fn leaf_paths(preview: &Value) -> Vec<&str> {
    preview["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn preview_answers_the_contact_and_the_samples_paths() {
    let a = Admin::start();
    let t = a
        .create(
            "/v1/triggers",
            json!({"name": "H", "identifier": "phone_number"}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    let preview = format!("/v1/triggers/{id}/preview");
    let sample = json!({"phone_number": "12155556677", "first_name": "John", "last_name": "Smith", "Integration": "Salesforce"});
    let (status, p) = a.post(&preview, json!({ "sample": sample })).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["contact"]["phone_number"], "12155556677");
    assert_eq!(p["contact"]["name"], "John Smith");
    let paths = leaf_paths(&p);
    assert_eq!(
        paths,
        vec!["phone_number", "first_name", "last_name", "Integration"]
    );
    // Mapping a field, tried before saving it.
    let transform =
        "phone_number = phone_number\nfirst_name = first_name\nfields.source = Integration";
    let (_, p) = a
        .post(&preview, json!({"sample": sample, "transform": transform}))
        .await;
    assert_eq!(p["contact"]["fields"]["source"], "Salesforce");
    let (status, e) = a
        .post(
            &preview,
            json!({"sample": sample, "transform": "phone_number = phone_number +"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_transform"))
    );
    assert_eq!(e["error"]["details"]["line"], 1);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1, column"),
        "{e}"
    );
}

/// The console's editor tries a transform before the trigger exists.
#[tokio::test]
async fn a_transform_is_tried_before_the_trigger_is_made() {
    let a = Admin::start();
    let sample = json!({"candidate": {"email": "ada@example.com", "first_name": "Ada", "phones": ["+12155556677"]}});
    let (status, p) = a
        .post(
            "/v1/triggers/preview",
            json!({"sample": sample, "transform": "email = candidate.email\nfirst_name = candidate.first_name"}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["contact"]["email"], "ada@example.com");
    assert_eq!(p["contact"]["first_name"], "Ada");
    assert_eq!(p["identifier"], "email");
    let paths = leaf_paths(&p);
    assert_eq!(
        paths,
        vec![
            "candidate.email",
            "candidate.first_name",
            "candidate.phones[0]"
        ]
    );
    // The identifier chosen is the one the sample must yield.
    let (status, e) = a
        .post(
            "/v1/triggers/preview",
            json!({"sample": sample, "transform": "email = candidate.email", "identifier": "phone_number"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("missing_identifier"))
    );
    assert_eq!(e["error"]["details"]["paths"].as_array().unwrap().len(), 3);
    let (status, p) = a
        .post(
            "/v1/triggers/preview",
            json!({"sample": sample, "transform": "phone_number = candidate.phones[0]", "identifier": "phone_number"}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    // A broken line: named by line and column, and the field at fault.
    let (status, e) = a
        .post(
            "/v1/triggers/preview",
            json!({"sample": sample, "transform": "email = candidate.email\nname = candidate.("}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_transform"))
    );
    assert_eq!(e["error"]["details"]["line"], 2);
    assert_eq!(e["error"]["details"]["field"], "transform");
    assert!(
        e["error"]["details"]["column"].as_u64().unwrap() >= 1,
        "{e}"
    );
    // A line that compiles and fails on the sample: its line, and the
    // column where its expression begins.
    let (status, e) = a
        .post(
            "/v1/triggers/preview",
            json!({"sample": sample, "transform": "email = candidate.email\nname =  1 / 0"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("transform_failed")),
        "{e}"
    );
    assert_eq!(
        (
            &e["error"]["details"]["line"],
            &e["error"]["details"]["column"]
        ),
        (&json!(2), &json!(9)),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2, column 9 (name)"),
        "{e}"
    );
    // Without a transform, the sample's own top-level fields.
    let (status, e) = a
        .post("/v1/triggers/preview", json!({"sample": sample}))
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("missing_identifier"))
    );
    for (body, code) in [
        (json!({"sample": [1]}), "invalid_sample"),
        (json!({"sample": {}, "identifier": "fax"}), "invalid_body"),
        (json!({"sample": {}, "extra": 1}), "invalid_body"),
    ] {
        let (status, e) = a.post("/v1/triggers/preview", body.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}"
        );
    }
    // An admin route like the others: no key, no answer.
    let answer = support::client()
        .post(a.server.url("/v1/triggers/preview"))
        .json(&json!({"sample": sample}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
}

#[tokio::test]
async fn forms_are_accepted_too() {
    let a = Admin::start();
    let t = a
        .create(
            "/v1/triggers",
            json!({"name": "Form", "actions": [{"type": "update_contact"}]}),
        )
        .await;
    let resp = a
        .http
        .post(t["url"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=form%40example.com&first_name=Fo&last_name=Rm")
        .send()
        .await
        .unwrap();
    let (status, body) = support::answer(resp).await;
    assert_eq!(status, 200, "{body}");
    let record = a
        .applied(
            t["id"].as_str().unwrap(),
            body["request_id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(record["contact"]["name"], "Fo Rm", "{record}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_the_server_stays_healthy() {
    let a = Admin::start();
    let list = a.create("/v1/lists", json!({"name": "L"})).await;
    let open = a.create("/v1/triggers", json!({"name": "Open"})).await;
    let keyed = a
        .create(
            "/v1/triggers",
            json!({"name": "Keyed", "require_api_key": true}),
        )
        .await;
    let off = a
        .create("/v1/triggers", json!({"name": "Off", "active": false}))
        .await;
    let url = open["url"].as_str().unwrap().to_string();
    let keyed_url = keyed["url"].as_str().unwrap().to_string();
    let base = a.server.base.clone();
    let raw = |u: &str, ct: Option<&str>, body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let mut req = a.http.post(u).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req
    };
    let json_ct = Some("application/json");
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let big = format!("{{\"x\":\"{}\"}}", "y".repeat(300 * 1024));
    // (request, status, code)
    let ingest_cases = vec![
        (
            raw(
                &format!("{base}/hooks/trg_01jd0000000000000000000000"),
                json_ct,
                b"{}".to_vec(),
                vec![],
            ),
            404,
            "not_found",
        ),
        (
            raw(
                &format!("{base}/hooks/not-an-id"),
                json_ct,
                b"{}".to_vec(),
                vec![],
            ),
            404,
            "not_found",
        ),
        (
            raw(
                off["url"].as_str().unwrap(),
                json_ct,
                b"{}".to_vec(),
                vec![],
            ),
            404,
            "not_found",
        ),
        (
            raw(&keyed_url, json_ct, b"{}".to_vec(), vec![]),
            401,
            "unauthorized",
        ),
        (
            raw(
                &keyed_url,
                json_ct,
                b"{}".to_vec(),
                vec![("authorization", "Basic dTpw".into())],
            ),
            401,
            "unauthorized",
        ),
        (
            raw(
                &keyed_url,
                json_ct,
                b"{}".to_vec(),
                vec![("authorization", "Bearer nope".into())],
            ),
            401,
            "unauthorized",
        ),
        (raw(&url, json_ct, b"".to_vec(), vec![]), 400, "empty_body"),
        (
            raw(&url, json_ct, b" \n\t".to_vec(), vec![]),
            400,
            "empty_body",
        ),
        (
            raw(&url, json_ct, b"{email: x}".to_vec(), vec![]),
            400,
            "invalid_json",
        ),
        (
            raw(&url, json_ct, b"{\"email\": \"x\"".to_vec(), vec![]),
            400,
            "invalid_json",
        ),
        (
            raw(
                &url,
                json_ct,
                vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
                vec![],
            ),
            400,
            "invalid_json",
        ),
        (
            raw(&url, json_ct, nested.into_bytes(), vec![]),
            400,
            "invalid_json",
        ),
        (
            raw(
                &url,
                json_ct,
                b"[{\"email\": \"a@example.com\"}]".to_vec(),
                vec![],
            ),
            422,
            "not_an_object",
        ),
        (
            raw(&url, json_ct, b"\"a@example.com\"".to_vec(), vec![]),
            422,
            "not_an_object",
        ),
        (
            raw(&url, json_ct, b"42".to_vec(), vec![]),
            422,
            "not_an_object",
        ),
        (
            raw(&url, json_ct, b"null".to_vec(), vec![]),
            422,
            "not_an_object",
        ),
        (
            raw(&url, Some("text/plain"), b"{}".to_vec(), vec![]),
            415,
            "unsupported_media_type",
        ),
        (
            raw(&url, Some("application/xml"), b"<a/>".to_vec(), vec![]),
            415,
            "unsupported_media_type",
        ),
        (
            raw(&url, None, b"{}".to_vec(), vec![]),
            415,
            "unsupported_media_type",
        ),
        (
            raw(&url, json_ct, big.into_bytes(), vec![]),
            413,
            "too_large",
        ),
        (
            raw(
                &url,
                json_ct,
                b"{}".to_vec(),
                vec![("idempotency-key", "k".repeat(300))],
            ),
            400,
            "invalid_idempotency_key",
        ),
        (
            raw(
                &url,
                json_ct,
                b"{}".to_vec(),
                vec![("idempotency-key", "  ".into())],
            ),
            400,
            "invalid_idempotency_key",
        ),
        (
            raw(
                &url,
                Some("application/x-www-form-urlencoded"),
                b"=nameless".to_vec(),
                vec![],
            ),
            400,
            "invalid_form",
        ),
        (
            // Latin-1: not UTF-8 once %-decoded.
            raw(
                &url,
                Some("application/x-www-form-urlencoded"),
                b"email=a%40example.com&name=Jos%E9".to_vec(),
                vec![],
            ),
            400,
            "invalid_form",
        ),
        (
            raw(
                &format!("{base}/hooks/%FF"),
                json_ct,
                b"{}".to_vec(),
                vec![],
            ),
            400,
            "invalid_path",
        ),
    ];
    let mut checked = 0;
    for (req, status, code) in ingest_cases {
        let req = req.build().unwrap();
        let what = format!("{} {}", req.method(), req.url());
        let (got, body) = support::answer(a.http.execute(req).await.unwrap()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 10),
            "{what}: {body}"
        );
        checked += 1;
    }
    let get = a.http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    checked += 1;

    let list_id = list["id"].as_str().unwrap();
    let id = open["id"].as_str().unwrap();
    let preview = format!("/v1/triggers/{id}/preview");
    let replay = format!("/v1/triggers/{id}/requests/req_01jd0000000000000000000000/replay");
    let long_replay = format!("/v1/triggers/{id}/requests/{}/replay", "x".repeat(2000));
    let admin_cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v1/triggers",
            json!({"identifier": "email"}),
            422,
            "invalid_body",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "identifier": "sms"}),
            422,
            "invalid_identifier",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "transform": "email = candidate.email +"}),
            422,
            "invalid_transform",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "transform": "emial = candidate.email"}),
            422,
            "invalid_transform",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "transform": "email = a\nemail = b"}),
            422,
            "invalid_transform",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": [{"type": "launch_rocket"}]}),
            422,
            "invalid_actions",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": [{"type": "add_to_list", "list_id": "lst_01jd0000000000000000000000"}]}),
            422,
            "invalid_actions",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": [{"type": "add_to_list", "list_id": list_id, "colour": "red"}]}),
            422,
            "invalid_actions",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": [{"type": "add_to_list"}]}),
            422,
            "invalid_actions",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": [{"type": "send_message", "webhook_id": "wh", "template": "Hi {{nmae}}"}]}),
            422,
            "invalid_actions",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": [{"type": "publish_event", "event": "Has Spaces"}]}),
            422,
            "invalid_actions",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "actions": {"type": "update_contact"}}),
            422,
            "invalid_body",
        ),
        (
            "/v1/triggers",
            json!({"name": "x", "webhook": true}),
            422,
            "invalid_body",
        ),
        ("/v1/triggers", json!({"name": ""}), 422, "invalid_name"),
        (&preview, json!({"sample": [1]}), 422, "invalid_sample"),
        (
            &preview,
            json!({"sample": {"name": "no email"}}),
            422,
            "missing_identifier",
        ),
        (
            &preview,
            json!({"sample": {"email": "not-an-email"}}),
            422,
            "invalid_contact",
        ),
        (&preview, json!({}), 422, "invalid_body"),
        (
            "/v1/triggers/trg_01jd0000000000000000000000/preview",
            json!({"sample": {}}),
            404,
            "not_found",
        ),
        (&replay, json!({}), 404, "not_found"),
        (&long_replay, json!({}), 404, "not_found"),
        (
            "/v1/triggers/%C3%28/preview",
            json!({"sample": {}}),
            400,
            "invalid_path",
        ),
    ];
    for (path, body, status, code) in admin_cases {
        let (got, answer) = a.post(path, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "POST {path} {body}: {answer}"
        );
        checked += 1;
    }
    let (status, e) = a
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/triggers/{id}"),
            Some(json!({"require_api_key": true})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("api_key_needed"))
    );
    let (status, e) = a
        .get("/v1/contacts?email=a@example.com&phone_number=1")
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, e) = a.get("/v1/contacts?email=nope").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_email"))
    );
    let (status, e) = a.get("/v1/contacts?phone_number=abc").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_phone_number"))
    );
    checked += 4;
    assert!(checked >= 30, "{checked} cases");

    // Healthy: a good request still goes all the way through.
    assert_eq!(a.get("/health").await.0, 200);
    let (status, r) = a
        .hook(&url, &json!({"email": "fine@example.com"}), &[])
        .await;
    assert_eq!(status, 200);
    let record = a.applied(id, r["request_id"].as_str().unwrap()).await;
    assert_eq!(record["status"], "applied");
}

#[tokio::test]
async fn every_body_within_the_limit_is_queued() {
    let a = Admin::start();
    let t = a.create("/v1/triggers", json!({"name": "Edge"})).await;
    let url = t["url"].as_str().unwrap();
    // JSON just under 256 KiB: queued with its envelope, which is larger.
    let filler = 256 * 1024 - 100;
    let body =
        serde_json::to_vec(&json!({"email": "edge@example.com", "x": "y".repeat(filler)})).unwrap();
    assert!(body.len() <= 256 * 1024 && body.len() > 256 * 1024 - 200);
    // A form whose control characters grow sixfold once queued as JSON.
    let form = format!("email=form%40example.com&x={}", "%01".repeat(80 * 1024));
    for (ct, body) in [
        ("application/json", body),
        ("application/x-www-form-urlencoded", form.into_bytes()),
    ] {
        let answer = a
            .http
            .post(url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, r) = support::answer(answer).await;
        assert_eq!(status, 200, "{ct}: {r}");
        let record = a
            .applied(t["id"].as_str().unwrap(), r["request_id"].as_str().unwrap())
            .await;
        assert_eq!(record["status"], "applied", "{ct}: {}", record["reason"]);
    }
}

#[tokio::test]
async fn an_action_too_large_to_keep_fails_the_request_at_once() {
    let a = Admin::start();
    let hook = a
        .create(
            "/v1/webhooks",
            json!({"name": "Out", "events": ["delivered"],
            "channel": {"type": "web", "url": "https://example.com/messages"}}),
        )
        .await;
    let t = a
        .create(
            "/v1/triggers",
            json!({
                "name": "Big message",
                "transform": "email = email\nfields.notes = notes",
                "actions": [{"type": "send_message", "webhook_id": hook["id"],
                             "template": "{{fields.notes}}{{fields.notes}}"}]
            }),
        )
        .await;
    // The contact (210 KB) fits; the message (420 KB) is past what a
    // message may be.
    let body = json!({"email": "notes@example.com", "notes": "n".repeat(210 * 1024)});
    let (status, r) = a.hook(t["url"].as_str().unwrap(), &body, &[]).await;
    assert_eq!(status, 200, "{r}");
    let record = a
        .applied(t["id"].as_str().unwrap(), r["request_id"].as_str().unwrap())
        .await;
    assert_eq!(record["status"], "failed");
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.contains("send_message: the message is too large to send"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_oversized_request_is_logged_without_its_payload() {
    let a = Admin::start();
    let t = a
        .create(
            "/v1/triggers",
            json!({"name": "Big", "transform": "email = email\nfields.raw = data"}),
        )
        .await;
    let body = json!({"email": "big@example.com", "data": "x".repeat(200 * 1024)});
    let (status, r) = a.hook(t["url"].as_str().unwrap(), &body, &[]).await;
    assert_eq!(status, 200, "{r}");
    // Payload and contact together pass the 400 KB item limit: the outcome is kept.
    let record = a
        .applied(t["id"].as_str().unwrap(), r["request_id"].as_str().unwrap())
        .await;
    assert_eq!(record["status"], "applied", "{}", record["reason"]);
    assert!(record["payload"]["omitted"].is_string());
    assert_eq!(
        record["contact"]["fields"]["raw"].as_str().map(str::len),
        Some(200 * 1024)
    );
}

/// Transforms that once aborted the process (stack overflow in CEL's parser
/// or evaluator) or ran without bound: refused at save or preview, failed
/// and recorded at apply, and the server answers throughout.
#[tokio::test]
async fn hostile_transforms_are_refused_or_fail_and_the_server_keeps_answering() {
    let a = Admin::start();
    let deep = format!("email = {}a{}", "(".repeat(20), ")".repeat(20));
    let chain = format!("fields.x = {}", vec!["a"; 60].join(" * "));
    for transform in [&deep, &chain] {
        let (status, body) = a
            .post("/v1/triggers", json!({"name": "T", "transform": transform}))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_transform");
        assert_eq!(body["error"]["details"]["line"], 1, "{body}");
    }
    // Saved, then fed a payload that makes it quadratic: a 422 in preview, a
    // recorded failure when applied.
    let t = a
        .create(
            "/v1/triggers",
            json!({"name": "T", "transform": "email = e\nfields.x = a.map(x, a)"}),
        )
        .await;
    let (id, url) = (t["id"].as_str().unwrap(), t["url"].as_str().unwrap());
    let list: Vec<Value> = (0..2000).map(|i| json!(i)).collect();
    let payload = json!({"e": "q@example.com", "a": list});
    let (status, body) = a
        .post(
            &format!("/v1/triggers/{id}/preview"),
            json!({"sample": payload}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    // Memory runs out first, unless a loaded machine spends the time first.
    assert!(
        message.contains("line 2") && message.ends_with("(its budget)"),
        "{message}"
    );
    let (status, r) = a.hook(url, &payload, &[]).await;
    assert_eq!(status, 200, "{r}");
    let record = a.applied(id, r["request_id"].as_str().unwrap()).await;
    assert_eq!(record["status"], "failed", "{record}");
    // Memory runs out first, unless the machine is so loaded that the time
    // budget does: either way the budget stopped it.
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("transform line 2") && reason.ends_with("(its budget)"),
        "{reason}"
    );
    let (status, _) = a.get("/health").await;
    assert_eq!(status, 200);
}

/// A trigger URL may be posted to from a web page of any origin (a
/// browser's preflight is answered); the admin API allows no other origin.
#[tokio::test]
async fn trigger_urls_answer_browsers_of_any_origin() {
    let a = Admin::start();
    let t = a
        .create(
            "/v1/triggers",
            json!({"name": "Web form", "require_api_key": true}),
        )
        .await;
    let url = a
        .server
        .url(&format!("/hooks/{}", t["id"].as_str().unwrap()));
    let client = support::client();
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default()
    };
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert!(header(&preflight, "access-control-allow-methods").contains("post"));
    let allowed = header(&preflight, "access-control-allow-headers");
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        preflight
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let posted = client
        .post(&url)
        .header("origin", "https://shop.example.com")
        .header(
            "authorization",
            format!("Bearer {}", t["api_key"].as_str().unwrap()),
        )
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(header(&posted, "access-control-allow-origin"), "*");
    // Answered outside the route (no such URL): readable too.
    let unrouted = client
        .post(a.server.url("/hooks/a/b"))
        .header("origin", "https://shop.example.com")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unrouted.status(), 404);
    assert_eq!(header(&unrouted, "access-control-allow-origin"), "*");
    // The admin API: no preflight answered, no origin allowed.
    let admin = client
        .request(reqwest::Method::OPTIONS, a.server.url("/v1/usage"))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(admin.headers().get("access-control-allow-origin").is_none());
    let usage = client
        .get(a.server.url("/v1/usage"))
        .header("origin", "https://shop.example.com")
        .header("authorization", format!("Bearer {}", a.key))
        .send()
        .await
        .unwrap();
    assert_eq!(usage.status(), 200);
    assert!(usage.headers().get("access-control-allow-origin").is_none());
}
