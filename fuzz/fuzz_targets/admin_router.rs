//! The admin and ingest faces through their router, with the account's key:
//! any method, any of the routes, any body. Never a 5xx, and every error
//! in the contract's shape. Input: a method byte, a route byte, the body.
#![no_main]

use axum::body::Body;
use hookline::Platform;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

struct World {
    rt: tokio::runtime::Runtime,
    platform: Arc<Platform>,
    key: String,
    list: String,
    trigger: String,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (platform, dir, key, list, trigger) = rt.block_on(async {
            let (platform, dir) = hookline::testkit::platform().await;
            let key = hookline::accounts::ensure_default(&platform, Some("fuzz-admin-key-0123456789"))
                .await
                .unwrap();
            let key = key.unwrap_or_else(|| "fuzz-admin-key-0123456789".into());
            let app = hookline::http::router(platform.clone());
            let post = |path: &str, body: &str| {
                http::Request::post(path)
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap()
            };
            let list = app.clone().oneshot(post("/v1/lists", r#"{"name":"L"}"#)).await.unwrap();
            let list: serde_json::Value = serde_json::from_slice(
                &axum::body::to_bytes(list.into_body(), 1 << 20).await.unwrap(),
            )
            .unwrap();
            let list = list["id"].as_str().unwrap().to_string();
            let body = format!(
                r#"{{"name":"T","transform":"email = e","actions":[{{"type":"add_to_list","list_id":"{list}"}}]}}"#
            );
            let trigger = app.oneshot(post("/v1/triggers", &body)).await.unwrap();
            let trigger: serde_json::Value = serde_json::from_slice(
                &axum::body::to_bytes(trigger.into_body(), 1 << 20).await.unwrap(),
            )
            .unwrap();
            let trigger = trigger["id"].as_str().unwrap().to_string();
            (platform, dir, key, list, trigger)
        });
        World { rt, platform, key, list, trigger, _dir: dir }
    })
}

const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "DELETE", "PUT"];
const ROUTES: [&str; 16] = [
    "/v1/lists",
    "/v1/lists/{list}",
    "/v1/lists/{list}/contacts?limit=5",
    "/v1/sequences",
    "/v1/contacts?email=a@example.com",
    "/v1/contacts?phone_number=%2B1%20215",
    "/v1/triggers",
    "/v1/triggers/{trigger}",
    "/v1/triggers/{trigger}/preview",
    "/v1/triggers/{trigger}/requests?limit=2",
    "/v1/triggers/{trigger}/rotate-key",
    "/v1/dead-letters",
    "/v1/dead-letters/redrive",
    "/hooks/{trigger}",
    "/v1/lists?cursor=YzE6eA&limit=1",
    "/openapi.json",
];

fuzz_target!(|data: &[u8]| {
    let [m, r, body @ ..] = data else {
        return;
    };
    let w = world();
    let path = ROUTES[*r as usize % ROUTES.len()]
        .replace("{list}", &w.list)
        .replace("{trigger}", &w.trigger);
    let request = http::Request::builder()
        .method(METHODS[*m as usize % METHODS.len()])
        .uri(path.as_str())
        .header("authorization", format!("Bearer {}", w.key))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let app = hookline::http::router(w.platform.clone());
    w.rt.block_on(async {
        let answer = app.oneshot(request).await.unwrap();
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), 64 << 20)
            .await
            .unwrap();
        assert!(!status.is_server_error(), "{path}: {status} {bytes:?}");
        if status.is_client_error() {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: {status} not JSON: {bytes:?}"));
            assert!(
                v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                "{v}"
            );
        }
    });
});
