//! The admin face through its axum router (the same router both hosts serve).

use axum::body::Body;
use hookline::Platform;
use hookline::accounts;
use hookline::keys;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Admin {
    platform: Arc<Platform>,
    key: String,
    _dir: tempfile::TempDir,
}

impl Admin {
    async fn new() -> Self {
        let (platform, dir) = hookline::testkit::platform().await;
        let key = accounts::ensure_default(&platform, None)
            .await
            .unwrap()
            .unwrap();
        Self {
            platform,
            key,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let router = hookline::http::router(self.platform.clone());
        let resp = router
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        // The console's files are not JSON; every other answer is.
        let page = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/"));
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else if page {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&self.key.clone()), None, "")
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            path,
            Some(&self.key.clone()),
            Some("application/json"),
            &body.to_string(),
        )
        .await
    }
}

/// Waits until `done` answers true; fails the test after 20 s.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The apply queue's worker, as `hookline serve` runs it; send `true` to stop it.
fn start_worker(
    platform: &Arc<Platform>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let handler = Arc::new(hookline::apply::ApplyHandler::new(platform.clone()));
    (
        stop,
        tokio::spawn(hookline::work::drive(
            platform.apply_queue.clone(),
            handler,
            rx,
        )),
    )
}

fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{got:?}");
    assert_eq!(got.1["error"]["code"], code, "{got:?}");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "a message that helps: {got:?}"
    );
}

#[tokio::test]
async fn admin_key_is_required_and_checked() {
    let a = Admin::new().await;
    let no_key = a.call(Method::GET, "/v1/lists", None, None, "").await;
    assert_error(&no_key, 401, "unauthorized");
    assert_error(
        &a.call(Method::GET, "/v1/lists", Some("hl_admin_nope"), None, "")
            .await,
        401,
        "unauthorized",
    );
    let basic = a.call(Method::GET, "/v1/lists", None, None, "").await;
    assert_error(&basic, 401, "unauthorized");
    assert_eq!(a.get("/v1/lists").await.0, 200);
    // Public routes need no key.
    assert_eq!(
        a.call(Method::GET, "/openapi.json", None, None, "").await.0,
        200
    );
    assert_eq!(a.call(Method::GET, "/health", None, None, "").await.0, 200);
}

/// A key's last use is written beside the request's own work, and done
/// before its answer (on Lambda nothing runs after it): the key's listing
/// read at once after shows it.
#[tokio::test]
async fn a_requests_answer_waits_for_its_keys_last_use() {
    let a = Admin::new().await;
    let (status, made) = a.post("/v1/keys", json!({"name": "ci"})).await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    let listed = |page: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "ci")
            .unwrap()["last_used_at"]
            .clone()
    };
    assert_eq!(listed(&a.get("/v1/keys").await.1), Value::Null);
    let (status, _) = a.call(Method::GET, "/v1/lists", Some(&key), None, "").await;
    assert_eq!(status, 200);
    let page = accounts::list_keys(&a.platform, accounts::DEFAULT_ACCOUNT, 10, None)
        .await
        .unwrap()
        .0;
    let ci = page.iter().find(|k| k.name == "ci").unwrap();
    assert!(ci.last_used_at.is_some(), "{ci:?}");
}

#[tokio::test]
async fn lists_create_get_page_delete() {
    let a = Admin::new().await;
    let (status, list) = a
        .post("/v1/lists", json!({"name": "  Greenhouse candidates "}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(list["name"], "Greenhouse candidates");
    let id = list["id"].as_str().unwrap().to_string();
    assert!(
        list["created_at"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC"
    );
    assert_eq!(
        a.get(&format!("/v1/lists/{id}")).await,
        (StatusCode::OK, list.clone())
    );

    for i in 0..4 {
        assert_eq!(
            a.post("/v1/lists", json!({"name": format!("L{i}")}))
                .await
                .0,
            201
        );
    }
    let (_, first) = a.get("/v1/lists?limit=3").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = a.get(&format!("/v1/lists?limit=3&cursor={cursor}")).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 2);
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(first["data"][0]["id"], id.as_str(), "oldest first");

    let (status, members) = a.get(&format!("/v1/lists/{id}/contacts")).await;
    assert_eq!(status, 200);
    assert_eq!(members, json!({"data": [], "next_cursor": null}));

    let (status, body) = a
        .call(
            Method::DELETE,
            &format!("/v1/lists/{id}"),
            Some(&a.key),
            None,
            "",
        )
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_error(&a.get(&format!("/v1/lists/{id}")).await, 404, "not_found");
    assert_error(
        &a.call(
            Method::DELETE,
            &format!("/v1/lists/{id}"),
            Some(&a.key),
            None,
            "",
        )
        .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn another_accounts_list_is_not_found() {
    let a = Admin::new().await;
    let (_, list) = a.post("/v1/lists", json!({"name": "Mine"})).await;
    let (_, other_key) = accounts::create(&a.platform, "Other", Default::default())
        .await
        .unwrap();
    let id = list["id"].as_str().unwrap();
    let theirs = a
        .call(
            Method::GET,
            &format!("/v1/lists/{id}"),
            Some(&other_key),
            None,
            "",
        )
        .await;
    assert_error(&theirs, 404, "not_found");
    let del = a
        .call(
            Method::DELETE,
            &format!("/v1/lists/{id}"),
            Some(&other_key),
            None,
            "",
        )
        .await;
    assert_error(&del, 404, "not_found");
    let (_, page) = a
        .call(Method::GET, "/v1/lists", Some(&other_key), None, "")
        .await;
    assert_eq!(page["data"], json!([]));
    assert_eq!(
        a.get(&format!("/v1/lists/{id}")).await.0,
        200,
        "still there for its owner"
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let a = Admin::new().await;
    let k = a.key.clone();
    // (method, path, content type, body, status, error code)
    type Case<'a> = (Method, &'a str, Option<&'a str>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            "{not json",
            400,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            "",
            400,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("text/plain"),
            r#"{"name":"x"}"#,
            415,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/lists",
            None,
            r#"{"name":"x"}"#,
            415,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            "{}",
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            r#"{"name": 5}"#,
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            r#"{"name":"x","colour":"red"}"#,
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            r#"[1,2]"#,
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            "/v1/lists",
            Some("application/json"),
            r#"{"name":"   "}"#,
            422,
            "invalid_name",
        ),
        (
            Method::GET,
            "/v1/lists?limit=0",
            None,
            "",
            422,
            "invalid_limit",
        ),
        (
            Method::GET,
            "/v1/lists?limit=5000",
            None,
            "",
            422,
            "invalid_limit",
        ),
        (
            Method::GET,
            "/v1/lists?limit=ten",
            None,
            "",
            400,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/lists?cursor=%%%",
            None,
            "",
            400,
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/v1/lists?cursor=bm9wZQ",
            None,
            "",
            400,
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/v1/lists?sort=name",
            None,
            "",
            400,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/lists/lst_nope",
            None,
            "",
            404,
            "not_found",
        ),
        (Method::GET, "/v1/nothing", None, "", 404, "route_not_found"),
        (
            Method::PUT,
            "/v1/lists",
            None,
            "",
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let got = a.call(method.clone(), path, Some(&k), ct, body).await;
        assert_eq!(got.0.as_u16(), status, "{method} {path} {body:?}: {got:?}");
        assert_eq!(
            got.1["error"]["code"], code,
            "{method} {path} {body:?}: {got:?}"
        );
    }
    let long = "x".repeat(201);
    assert_error(
        &a.post("/v1/lists", json!({ "name": long })).await,
        422,
        "invalid_name",
    );
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    assert_error(
        &a.call(
            Method::POST,
            "/v1/lists",
            Some(&k),
            Some("application/json"),
            &huge,
        )
        .await,
        413,
        "too_large",
    );
    // Still healthy.
    assert_eq!(a.post("/v1/lists", json!({"name": "after"})).await.0, 201);
}

#[tokio::test]
async fn deleting_a_list_purges_its_members_in_the_background() {
    let a = Admin::new().await;
    let (_, list) = a.post("/v1/lists", json!({"name": "Big"})).await;
    let id = list["id"].as_str().unwrap().to_string();
    let members = hookline::keys::members(
        hookline::collections::Kind::List,
        hookline::accounts::DEFAULT_ACCOUNT,
        &id,
    );
    for i in 0..60 {
        let fields = hookline::transforms::ContactFields {
            email: Some(format!("c{i}@example.com")),
            ..Default::default()
        };
        let changes = hookline::contacts::Changes::parse(fields).unwrap();
        let account = hookline::accounts::DEFAULT_ACCOUNT;
        let (contact, _) = hookline::contacts::upsert(
            &a.platform,
            account,
            hookline::contacts::Identifier::Email,
            &changes,
            true,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        hookline::collections::add_to_list(&a.platform, account, &id, &contact)
            .await
            .unwrap();
    }
    let (_, page) = a.get(&format!("/v1/lists/{id}/contacts?limit=50")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 50);
    assert!(page["next_cursor"].is_string());
    assert!(
        page["data"][0]["email"]
            .as_str()
            .unwrap()
            .ends_with("@example.com"),
        "members are contacts"
    );
    assert_eq!(page["data"][0]["lists"], json!([id]));

    assert_eq!(
        a.call(
            Method::DELETE,
            &format!("/v1/lists/{id}"),
            Some(&a.key),
            None,
            ""
        )
        .await
        .0,
        204
    );
    let store = &a.platform.store;
    let count = async || {
        let q = hookline::ports::Query::new(members.clone(), "");
        store.query(q).await.unwrap().items.len()
    };
    // A purge out of time queues the rest of itself: with no time at all,
    // one page (25) a message.
    use hookline::work::Handler;
    use std::time::Duration;
    let queue = &a.platform.apply_queue;
    let eager =
        hookline::apply::ApplyHandler::with_purge_budget(a.platform.clone(), Duration::ZERO);
    for left in [35, 10] {
        let got = queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "one purge message at a time");
        let outcomes = eager.handle(&got).await;
        hookline::work::settle(&**queue, &got, &outcomes, hookline::work::Removal::ByWorker).await;
        assert_eq!(count().await, left);
    }
    let (stop, worker) = start_worker(&a.platform);
    eventually("members purged", async || {
        store
            .query(hookline::ports::Query::new(members.clone(), ""))
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    // The contacts no longer name the deleted list.
    let (_, contacts) = a.get("/v1/contacts?limit=100").await;
    let contacts = contacts["data"].as_array().unwrap();
    assert_eq!(contacts.len(), 60);
    assert!(
        contacts.iter().all(|c| c["lists"] == json!([])),
        "{contacts:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let a = Admin::new().await;
    let doc = a.call(Method::GET, "/openapi.json", None, None, "").await.1;
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, _) in ops
            .as_object()
            .unwrap()
            .iter()
            .filter(|(m, _)| *m != "parameters")
        {
            let concrete = path
                .replace("{id}", "lst_00000000000000000000000000")
                .replace("{request_id}", "req_00000000000000000000000000");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = if method == Method::POST { "{}" } else { "" };
            let (status, value) = a
                .call(
                    method.clone(),
                    &concrete,
                    Some(&a.key),
                    Some("application/json"),
                    body,
                )
                .await;
            let code = value["error"]["code"].as_str().unwrap_or("");
            assert!(
                code != "route_not_found" && code != "method_not_allowed" && status != 405,
                "{method} {path}: {status} {value}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 27, "only {checked} operations documented");
}

#[tokio::test]
async fn deleting_a_trigger_purges_its_request_log() {
    let a = Admin::new().await;
    let (stop, worker) = start_worker(&a.platform);
    let (status, t) = a.post("/v1/triggers", json!({"name": "T"})).await;
    assert_eq!(status, 201);
    let id = t["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        let body = json!({ "email": format!("p{i}@example.com") }).to_string();
        let (status, _) = a
            .call(
                Method::POST,
                &format!("/hooks/{id}"),
                None,
                Some("application/json"),
                &body,
            )
            .await;
        assert_eq!(status, 200);
    }
    let log = hookline::keys::trigger_requests(hookline::accounts::DEFAULT_ACCOUNT, &id);
    let count = || async {
        a.platform
            .store
            .query(hookline::ports::Query::new(log.clone(), ""))
            .await
            .unwrap()
            .items
            .len()
    };
    eventually("requests applied", async || count().await == 3).await;
    let (status, _) = a
        .call(
            Method::DELETE,
            &format!("/v1/triggers/{id}"),
            Some(&a.key),
            None,
            "",
        )
        .await;
    assert_eq!(status, 204);
    eventually("request log purged", async || count().await == 0).await;
    stop.send(true).unwrap();
    worker.await.unwrap();
}

#[tokio::test]
async fn dead_letters_are_listed_redriven_and_deleted() {
    let a = Admin::new().await;
    let purge = hookline::apply::ApplyMessage::PurgeTriggerLog {
        account: accounts::DEFAULT_ACCOUNT.into(),
        trigger_id: hookline::ids::TriggerId::new(),
    }
    .encode();
    for _ in 0..2 {
        hookline::dead_letters::keep_apply(&a.platform, &purge, "not applied after 8 attempts", 8)
            .await
            .unwrap();
    }
    let (status, page) = a.get("/v1/dead-letters?limit=10").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{page}");
    assert_eq!(data[0]["kind"], "purge_trigger_log");
    assert_eq!(data[0]["attempts"], 8);
    assert_eq!(data[0]["reason"], "not applied after 8 attempts");
    let (first, second) = (data[0]["id"].clone(), data[1]["id"].clone());

    let (status, _) = a
        .call(
            Method::DELETE,
            &format!("/v1/dead-letters/{}", first.as_str().unwrap()),
            Some(&a.key.clone()),
            None,
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = a
        .call(
            Method::DELETE,
            "/v1/dead-letters/dl_nope",
            Some(&a.key.clone()),
            None,
            "",
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let (status, body) = a
        .post("/v1/dead-letters/redrive", json!({"ids": [second]}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"][0]["outcome"], "queued", "{body}");
    let (_, page) = a.get("/v1/dead-letters").await;
    assert_eq!(page["data"], json!([]), "{page}");
    let queued = a
        .platform
        .apply_queue
        .receive(
            10,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(
        queued.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![purge.clone()]
    );
    // Purge all.
    hookline::dead_letters::keep_apply(&a.platform, &purge, "again", 8)
        .await
        .unwrap();
    let (status, _) = a
        .call(
            Method::DELETE,
            "/v1/dead-letters",
            Some(&a.key.clone()),
            None,
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = a.get("/v1/dead-letters").await;
    assert_eq!(page["data"], json!([]), "{page}");
    // Another account sees none of them.
    let (status, body) = a
        .call(Method::GET, "/v1/dead-letters", None, None, "")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn an_inbound_dead_letter_with_no_request_record_is_sent_again_as_it_was() {
    let a = Admin::new().await;
    let inbound = json!({"type": "inbound", "account": accounts::DEFAULT_ACCOUNT,
        "trigger_id": "trg_01jd0000000000000000000000", "request_id": "req_01jd0000000000000000000001",
        "received_at": "2026-11-22T21:00:00Z", "payload": {"email": "x@example.com"},
        "idempotency_key": null, "attempt": 1})
    .to_string();
    hookline::dead_letters::keep_apply(&a.platform, &inbound, "received 8 times", 8)
        .await
        .unwrap();
    let (_, page) = a.get("/v1/dead-letters").await;
    assert_eq!(page["data"][0]["kind"], "inbound", "{page}");
    assert_eq!(
        page["data"][0]["request_id"],
        "req_01jd0000000000000000000001"
    );
    let (status, body) = a.post("/v1/dead-letters/redrive", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"][0]["outcome"], "queued", "{body}");
    let queued = a
        .platform
        .apply_queue
        .receive(
            10,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(
        queued.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![inbound]
    );
    // Bad bodies: unparseable is 400, the wrong shape 422, a malformed id 404.
    let (status, body) = a
        .call(
            Method::POST,
            "/v1/dead-letters/redrive",
            Some(&a.key.clone()),
            Some("application/json"),
            "{",
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (status, body) = a
        .post("/v1/dead-letters/redrive", json!({"ids": "x"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    let (status, _) = a
        .post("/v1/dead-letters/redrive", json!({"ids": [""]}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// An operator makes an account with its own limits; its key sees its own
/// objects alone; a suspended account's trigger URLs refuse requests while
/// its admin routes answer; keys are made and revoked at once.
#[tokio::test]
async fn an_operator_runs_accounts() {
    let a = Admin::new().await;
    let op = accounts::ensure_operator(&a.platform, None)
        .await
        .unwrap()
        .unwrap();
    let json = Some("application/json");
    let call = |method: Method, path: &str, key: &str, body: Value| {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let key = key.to_string();
        let path = path.to_string();
        let a = &a;
        async move { a.call(method, &path, Some(&key), json, &body).await }
    };
    // Each key opens its own routes only.
    let got = call(Method::GET, "/v1/operator/accounts", &a.key, Value::Null).await;
    assert_error(&got, 401, "unauthorized");
    let got = call(Method::GET, "/v1/lists", &op, Value::Null).await;
    assert_error(&got, 401, "unauthorized");

    let (status, acme) = call(
        Method::POST,
        "/v1/operator/accounts",
        &op,
        json!({"name": "Acme", "limits": {"triggers": 1, "inbound_per_month": null}}),
    )
    .await;
    assert_eq!(status, 201, "{acme}");
    let (id, key) = (
        acme["id"].as_str().unwrap().to_string(),
        acme["admin_key"].as_str().unwrap().to_string(),
    );
    assert_eq!(acme["status"], "active");
    assert_eq!(acme["limits"]["triggers"], 1);
    assert_eq!(acme["limits"]["webhooks"], 100, "the global default");
    assert_eq!(acme["limits"]["inbound_per_month"], Value::Null);
    assert_eq!(acme["usage"]["triggers"], 0);

    // Its key sees its own lists alone.
    a.post("/v1/lists", json!({"name": "Default's"})).await;
    let (_, lists) = call(Method::GET, "/v1/lists", &key, Value::Null).await;
    assert_eq!(lists["data"], json!([]));

    // Its trigger limit.
    let (status, trigger) = call(Method::POST, "/v1/triggers", &key, json!({"name": "T"})).await;
    assert_eq!(status, 201, "{trigger}");
    let got = call(Method::POST, "/v1/triggers", &key, json!({"name": "U"})).await;
    assert_error(&got, 403, "trigger_limit_reached");
    let (_, usage) = call(Method::GET, "/v1/usage", &key, Value::Null).await;
    assert_eq!(usage["triggers"], 1, "{usage}");
    assert_eq!(usage["limits"]["triggers"], 1, "{usage}");

    // Suspended: its trigger URL refuses, its admin routes answer.
    let hook = format!("/hooks/{}", trigger["id"].as_str().unwrap());
    let post = || {
        a.call(
            Method::POST,
            &hook,
            None,
            json,
            r#"{"email": "x@example.com"}"#,
        )
    };
    assert_eq!(post().await.0, 200);
    let (status, suspended) = call(
        Method::POST,
        &format!("/v1/operator/accounts/{id}/suspend"),
        &op,
        Value::Null,
    )
    .await;
    assert_eq!(
        (status.as_u16(), &suspended["status"]),
        (200, &json!("suspended"))
    );
    assert_error(&post().await, 403, "account_suspended");
    assert_eq!(
        call(Method::GET, "/v1/triggers", &key, Value::Null).await.0,
        200
    );
    call(
        Method::POST,
        &format!("/v1/operator/accounts/{id}/resume"),
        &op,
        Value::Null,
    )
    .await;
    assert_eq!(post().await.0, 200);

    // The operator lifts the trigger limit; the list shows both accounts.
    let (status, _) = call(
        Method::PATCH,
        &format!("/v1/operator/accounts/{id}"),
        &op,
        json!({"limits": {"triggers": null}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(Method::POST, "/v1/triggers", &key, json!({"name": "U"})).await;
    assert_eq!(status, 201);
    // A limit set back to the global default; the others as they were.
    let (status, back) = call(
        Method::PATCH,
        &format!("/v1/operator/accounts/{id}"),
        &op,
        json!({"limits": {"webhooks": 7}}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &back["limits"]["webhooks"]),
        (200, &json!(7))
    );
    let (_, back) = call(
        Method::PATCH,
        &format!("/v1/operator/accounts/{id}"),
        &op,
        json!({"limits": {"webhooks": "default"}}),
    )
    .await;
    assert_eq!(back["limits"]["webhooks"], 100, "{back}");
    assert_eq!(back["limits"]["triggers"], Value::Null, "{back}");
    let (_, all) = call(Method::GET, "/v1/operator/accounts", &op, Value::Null).await;
    let all = all["data"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    let listed = all.iter().find(|x| x["id"] == id.as_str()).unwrap();
    assert_eq!(listed["usage"]["triggers"], 2);
    assert_eq!(listed["usage"]["inbound_this_month"], 2, "{listed}");

    // Keys: a second one, then the first revoked: refused at once.
    let (status, second) = call(Method::POST, "/v1/keys", &key, json!({"name": "CI"})).await;
    assert_eq!(status, 201, "{second}");
    let second_key = second["key"].as_str().unwrap().to_string();
    let (_, keys) = call(Method::GET, "/v1/keys", &second_key, Value::Null).await;
    let keys = keys["data"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .all(|k| k.get("key").is_none() && k.get("lookup").is_none())
    );
    let first = keys.iter().find(|k| k["name"] == "first key").unwrap();
    let got = call(
        Method::DELETE,
        &format!("/v1/keys/{}", first["id"].as_str().unwrap()),
        &second_key,
        Value::Null,
    )
    .await;
    assert_eq!(got.0, 204, "{got:?}");
    assert_error(
        &call(Method::GET, "/v1/triggers", &key, Value::Null).await,
        401,
        "unauthorized",
    );
    // The operator gives the account a key of its own.
    let (status, given) = call(
        Method::POST,
        &format!("/v1/operator/accounts/{id}/keys"),
        &op,
        json!({"name": "from the operator"}),
    )
    .await;
    assert_eq!(status, 201, "{given}");
    let given = given["key"].as_str().unwrap();
    assert_eq!(
        call(Method::GET, "/v1/triggers", given, Value::Null)
            .await
            .0,
        200
    );
    // Another account's key id is not found from this one.
    let (_, mine) = a
        .call(Method::GET, "/v1/keys", Some(&a.key), None, "")
        .await;
    let theirs = mine["data"][0]["id"].as_str().unwrap().to_string();
    let got = call(
        Method::DELETE,
        &format!("/v1/keys/{theirs}"),
        &second_key,
        Value::Null,
    )
    .await;
    assert_error(&got, 404, "not_found");
}

/// A deleted account's keys and trigger URLs stop at once; what it held is
/// removed in the background, down to the last item, and nothing of
/// another account's.
#[tokio::test]
async fn a_deleted_account_is_removed_whole() {
    let a = Admin::new().await;
    let op = accounts::ensure_operator(&a.platform, None)
        .await
        .unwrap()
        .unwrap();
    let json = Some("application/json");
    let (_, acme) = a
        .call(
            Method::POST,
            "/v1/operator/accounts",
            Some(&op),
            json,
            r#"{"name": "Acme"}"#,
        )
        .await;
    let (id, key) = (
        acme["id"].as_str().unwrap().to_string(),
        acme["admin_key"].as_str().unwrap().to_string(),
    );
    let call = |method: Method, path: String, body: Value| {
        let key = key.clone();
        let a = &a;
        async move {
            a.call(method, &path, Some(&key), json, &body.to_string())
                .await
        }
    };
    let (_, list) = call(Method::POST, "/v1/lists".into(), json!({"name": "L"})).await;
    let list = list["id"].as_str().unwrap().to_string();
    let (_, trigger) = call(
        Method::POST,
        "/v1/triggers".into(),
        json!({"name": "T", "actions": [{"type": "add_to_list", "list_id": list}]}),
    )
    .await;
    let trigger = trigger["id"].as_str().unwrap().to_string();
    call(Method::POST, "/v1/keys".into(), json!({"name": "second"})).await;
    // The default account's own, which must stay.
    let (_, mine) = a.post("/v1/lists", json!({"name": "Mine"})).await;
    let (stop, worker) = start_worker(&a.platform);
    for i in 0..30 {
        let body = format!(r#"{{"email": "p{i}@example.com"}}"#);
        let (status, _) = a
            .call(
                Method::POST,
                &format!("/hooks/{trigger}"),
                None,
                json,
                &body,
            )
            .await;
        assert_eq!(status, 200);
    }
    let members = keys::members(hookline::collections::Kind::List, &id, &list);
    let count = |pk: String| {
        let store = a.platform.store.clone();
        async move {
            store
                .query(hookline::ports::Query::new(pk, ""))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    eventually("requests applied", async || {
        count(members.clone()).await == 30
    })
    .await;

    let (status, _) = a
        .call(
            Method::DELETE,
            &format!("/v1/operator/accounts/{id}"),
            Some(&op),
            None,
            "",
        )
        .await;
    assert_eq!(status, 204);
    assert_error(
        &call(Method::GET, "/v1/lists".into(), Value::Null).await,
        401,
        "unauthorized",
    );
    let (status, _) = a
        .call(Method::POST, &format!("/hooks/{trigger}"), None, json, "{}")
        .await;
    assert_eq!(status, 404);
    // Gone for the operator at once; from the store once purged.
    let (status, _) = a
        .call(
            Method::GET,
            &format!("/v1/operator/accounts/{id}"),
            Some(&op),
            None,
            "",
        )
        .await;
    assert_eq!(status, 404);
    let gone = async || {
        a.platform
            .store
            .get(&keys::account(&id))
            .await
            .unwrap()
            .is_none()
    };
    eventually("account removed", gone).await;
    for pk in [
        members,
        keys::collections(hookline::collections::Kind::List, &id),
        keys::contacts(&id),
        keys::account_triggers(&id),
        keys::trigger_requests(&id, &trigger),
        keys::account_keys(&id),
        keys::usage(&id, "").pk,
    ] {
        assert_eq!(count(pk.clone()).await, 0, "{pk} left");
    }
    assert!(
        a.platform
            .store
            .get(&keys::trigger(&trigger))
            .await
            .unwrap()
            .is_none()
    );
    // Only the default account's key is left to find by hash.
    assert_eq!(count("admin_key".into()).await, 1);
    let (status, _) = a
        .call(
            Method::GET,
            &format!("/v1/lists/{}", mine["id"].as_str().unwrap()),
            Some(&a.key),
            None,
            "",
        )
        .await;
    assert_eq!(status, 200);
    // The default account cannot be deleted.
    let got = a
        .call(
            Method::DELETE,
            "/v1/operator/accounts/acct_default",
            Some(&op),
            None,
            "",
        )
        .await;
    assert_error(&got, 409, "default_account");
    stop.send(true).unwrap();
    worker.await.unwrap();
}

/// Every admin operation with one account's key on another's objects
/// answers 404 (the suite runs on the AWS adapters too: contract_aws.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_kept_apart() {
    let (platform, _dir) = hookline::testkit::platform().await;
    hookline::testkit::isolation::check(platform).await;
}
