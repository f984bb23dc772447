//! Test helpers for every crate of the workspace (feature `testkit`).

pub mod contract;
pub mod faulty;
pub mod isolation;
pub mod moto;
pub mod power;
pub mod runtime;

pub use moto::MotoServer;

use crate::Platform;
use std::sync::Arc;

/// An embedded platform in a temporary directory, with private targets
/// allowed (tests talk to loopback receivers).
pub async fn platform() -> (Arc<Platform>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let settings = crate::config::Settings {
        allow_private_targets: true,
        ..Default::default()
    };
    let platform = crate::adapters::embedded::platform(
        dir.path(),
        settings,
        Arc::new(crate::ports::SystemClock),
    )
    .expect("embedded platform opens");
    (platform, dir)
}

/// Sends one request through a router and answers the status and JSON body
/// (`null` when empty).
pub async fn call<B>(router: &axum::Router, request: http::Request<B>) -> (u16, serde_json::Value)
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = router
        .clone()
        .oneshot(request.map(axum::body::Body::new))
        .await
        .expect("routers are infallible");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    if bytes.is_empty() {
        return (status, serde_json::Value::Null);
    }
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, body)
}

/// Calls the router of `platform` with one account's admin key.
pub struct Client {
    pub platform: Arc<Platform>,
    pub key: String,
}

impl Client {
    /// Answers the status and JSON body (`null` when empty or not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key));
        let body = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                axum::body::Body::from(b.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let answer = crate::http::router(self.platform.clone())
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("answered");
        let status = answer.status().as_u16();
        let bytes = answer.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// POSTs `body` and answers the id of what it made (201).
    pub async fn id(&self, path: &str, body: serde_json::Value) -> String {
        let (status, made) = self.call("POST", path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {made}");
        made["id"].as_str().expect("an id").to_string()
    }
}
