//! The HTTP faces. Each is one axum router, served through API Gateway's
//! events on AWS (`adapters::aws::apigw`)
//! and by `hookline serve` on one machine: the same code answers on both.

mod accounts;
pub mod admin;
pub mod body;
mod campaigns;
mod collections;
pub mod console;
mod contacts;
mod dead_letters;
pub(crate) mod described;
pub mod error;
mod events;
pub mod extract;
pub mod ingest;
pub mod openapi;
mod profiles;
mod triggers;
mod views;
mod webhooks;

pub use error::ApiError;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use described::{Routes, routes};
use std::sync::Arc;

use crate::Platform;
use error::ErrorBody;

/// The admin face alone (the `admin` Lambda function), with `/health`
/// and `/openapi.json`.
pub fn admin_router(platform: Arc<Platform>) -> Router {
    finish(admin::routes().merge(own_routes()), platform)
}

/// The admin face as [`admin_router`], where `/v1` requests wait for
/// `ready` first (within the request's time): the admin function reads its
/// keys so, at its first request. Until `ready` answers `Ok`, such a
/// request answers its error, and the next one calls it again.
pub fn admin_router_after<F, Fut>(platform: Arc<Platform>, ready: F) -> Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let gate = axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let ready = ready.clone();
            async move {
                if request.uri().path().starts_with("/v1/")
                    && let Err(e) = ready().await
                {
                    return e.into_response();
                }
                next.run(request).await
            }
        },
    );
    finish(
        admin::routes()
            .layered(|r| r.layer(gate))
            .merge(own_routes()),
        platform,
    )
}

/// The ingest face alone (the `ingest` Lambda function), with `/health`.
/// Not `/openapi.json`, which the admin function answers: describing every
/// route would link every admin handler into this function.
pub fn ingest_router(platform: Arc<Platform>) -> Router {
    finish(ingest::routes().routes(routes!(health)), platform)
}

/// Both faces in one router, as `hookline serve` runs them.
pub fn router(platform: Arc<Platform>) -> Router {
    finish(every_route(), platform)
}

/// Every route of both faces, with its description: `GET /openapi.json`
/// is made of this, so a route cannot be served undescribed.
pub(crate) fn every_route() -> Routes {
    admin::routes().merge(ingest::routes()).merge(own_routes())
}

/// What the admin face (and `hookline serve`) answers besides its own routes.
fn own_routes() -> Routes {
    Routes::new()
        .routes(routes!(health))
        .routes(routes!(document))
}

/// An answer in JSON, written at once (a view borrows what it shows).
pub(crate) fn answer(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let json = serde_json::to_vec(body).expect("answers serialise");
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response()
}

/// Unknown routes and methods answer in the contract's error shape too.
fn finish(routes: Routes, platform: Arc<Platform>) -> Router {
    routes
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(extract::Pending::settle))
        .layer(axum::middleware::from_fn_with_state(
            platform.settings.request_timeout,
            bounded,
        ))
        // Within the request's span, so that a panic is logged with its ids.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(traced))
        .layer(axum::middleware::from_fn(guarded))
        .with_state(platform)
}

/// Every answer is read as what it says it is (`nosniff`), and one that set
/// no policy of its own (the API's, unlike the console's files) may do
/// nothing in a browser: text an answer repeats (a path, a name) never
/// runs on this origin.
async fn guarded(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    // A trigger URL's every answer may be read by a page of any origin,
    // those made before its route's CORS layer too (a 413, a timeout).
    let trigger_url = request.uri().path().starts_with("/hooks/");
    let mut answer = next.run(request).await;
    let headers = answer.headers_mut();
    if trigger_url {
        headers
            .entry(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .or_insert(HeaderValue::from_static("*"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(console::API_CSP));
    answer
}

/// Runs a request in a span with what names it: its route (the template,
/// not the path: ids are not logged), the account once authenticated, and
/// on a trigger URL the trigger's reference (`ids::trigger_ref`: its id is
/// all a caller needs when it requires no key) and the id given to the
/// request.
async fn traced(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = route.as_deref().unwrap_or("unrouted"),
        account = tracing::field::Empty,
        trigger = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    next.run(request).instrument(span).await
}

/// A body announced larger than its route takes is refused before it is
/// read (answered at once, not after waiting for bytes that may never
/// come); the body must arrive within `HOOKLINE_REQUEST_TIMEOUT` (408, the
/// client's slowness), and the answer must be ready within as long again
/// (503, ours: retry).
async fn bounded(
    axum::extract::State(timeout): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = if request.uri().path().starts_with("/hooks/") {
        ingest::BODY_LIMIT
    } else {
        admin::BODY_LIMIT
    };
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Past what can be read and dropped, refused at once (a lying length,
    // say); within it, the body is read first, so that the client gets to
    // read the 413 instead of a connection reset mid-body.
    if announced.is_some_and(|n| n > DRAIN_MAX as u64) {
        return too_large(limit).into_response();
    }
    // Read here, in full and in time, so that no handler waits on a client;
    // but a trigger URL reads its own, once the trigger and its account have
    // let the request in (nothing is read for a request refused), and may
    // take as long again for it.
    let (request, _held, within) = if request.uri().path().starts_with("/hooks/") {
        (request, None, timeout * 2)
    } else {
        let (parts, body) = request.into_parts();
        match read_within(body, limit, timeout).await {
            Ok((bytes, held)) => (
                axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes)),
                Some(held),
                timeout,
            ),
            Err(e) => return e.into_response(),
        }
    };
    match tokio::time::timeout(within, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(
                timeout_ms = timeout.as_millis() as u64,
                "a request timed out in its handler"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the service did not answer in time; retry shortly",
            )
            .into_response()
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the body is larger than {} KiB", limit / 1024),
    )
}

/// A body read in full within `timeout` and `limit`, and its share of what
/// all requests' bodies hold (keep it until the answer is made).
pub(crate) async fn read_within(
    body: axum::body::Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<(bytes::Bytes, Held), ApiError> {
    let mut held = Held(0);
    match tokio::time::timeout(timeout, read_body(body, limit, &mut held)).await {
        Ok(Read::Body(bytes)) => Ok((bytes, held)),
        Ok(Read::TooLarge) => Err(too_large(limit)),
        Ok(Read::Busy) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server holds too many request bodies at once; retry shortly",
        )),
        Ok(Read::Failed(e)) => Err(ApiError::bad_request(
            "invalid_body",
            format!("the body could not be read: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} ms: send it faster",
                timeout.as_millis()
            ),
        )),
    }
}

/// Bytes of an oversized body read and dropped before answering 413.
const DRAIN_MAX: usize = 8 << 20;

/// Bytes of request bodies held in memory at once, all requests together:
/// thousands of connections times a body limit must not be gigabytes.
const MAX_BUFFERED: usize = 256 << 20;
static BUFFERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One request's share of `BUFFERED`, given back when dropped.
pub(crate) struct Held(usize);

impl Held {
    /// Counts `n` more bytes; false once all requests hold too many.
    fn take(&mut self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.0 += n;
        BUFFERED.fetch_add(n, Ordering::SeqCst) + n <= MAX_BUFFERED
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        BUFFERED.fetch_sub(self.0, std::sync::atomic::Ordering::SeqCst);
    }
}

enum Read {
    Body(bytes::Bytes),
    TooLarge,
    Busy,
    Failed(String),
}

/// The body when it is within `limit`; past it, the rest is read and
/// dropped up to `DRAIN_MAX` (then the answer is sent regardless).
async fn read_body(body: axum::body::Body, limit: usize, held: &mut Held) -> Read {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Read::Failed(e.to_string()),
        };
        total += chunk.len();
        if total > DRAIN_MAX {
            return Read::TooLarge;
        }
        if total <= limit {
            if !held.take(chunk.len()) {
                return Read::Busy;
            }
            chunks.push(chunk);
        } else {
            chunks.clear();
        }
    }
    if total > limit {
        return Read::TooLarge;
    }
    match chunks.len() {
        0 => Read::Body(bytes::Bytes::new()),
        1 => Read::Body(chunks.remove(0)),
        _ => Read::Body(chunks.concat().into()),
    }
}

/// A handler that panicked answers 500 in the contract's shape; the server
/// goes on (the release profile unwinds), and the panic is logged, not shown.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = crate::transforms::pool::panic_message(&*payload);
    tracing::error!(panic = %message, "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the service failed on this request; it was logged, and retrying may help",
    ))
}

/// All is well.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Healthy {
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// Whether the service can take requests
///
/// `{"status": "ok"}`, or 503 saying what is wrong: a queue that cannot
/// take messages (its disk full, say) refuses every request it would queue.
#[utoipa::path(get, operation_id = "health", path = "/health", tag = "service", security(()),
    responses((status = 200, description = "ready", body = Healthy),
              (status = 503, description = "the store or a queue cannot be written: what is wrong", body = ErrorBody)))]
async fn health(
    axum::extract::State(p): axum::extract::State<Arc<Platform>>,
) -> Result<axum::Json<Healthy>, ApiError> {
    match p.apply_queue.trouble().or_else(|| p.store.trouble()) {
        None => Ok(axum::Json(Healthy { status: "ok" })),
        Some(why) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            why,
        )),
    }
}

/// This document: every route, for people and generated clients
#[utoipa::path(get, operation_id = "openapi", path = "/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
async fn document() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route {}; see GET /openapi.json", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see GET /openapi.json",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    /// Log lines written while a capture lives (this thread only).
    #[derive(Clone, Default)]
    struct Logged(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logged {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logged {
        fn capture(&self) -> tracing::subscriber::DefaultGuard {
            let to = self.clone();
            tracing::subscriber::set_default(
                tracing_subscriber::fmt()
                    .with_writer(move || to.clone())
                    .with_ansi(false)
                    .finish(),
            )
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_and_the_next_request_is_served() {
        let (platform, _dir) = crate::testkit::platform().await;
        async fn boom() -> &'static str {
            panic!("the secret is hunter2")
        }
        let routes = Router::new().route("/boom", axum::routing::get(boom));
        let app = finish(
            Routes::from_router(routes).routes(routes!(health)),
            platform,
        );
        let get = |path: &str| {
            axum::http::Request::get(path)
                .body(Body::empty())
                .expect("request")
        };
        let logged = Logged::default();
        let answer = {
            let _capture = logged.capture();
            app.clone().oneshot(get("/boom")).await.unwrap()
        };
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // Logged in the request's span, the panic's text kept out of the answer.
        let log = logged.text();
        assert!(
            log.contains("a request handler panicked") && log.contains("route=\"/boom\""),
            "{log}"
        );
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal_error", "{body}");
        assert!(!body.to_string().contains("hunter2"), "{body}");
        let answer = app.oneshot(get("/health")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn health_says_when_the_queue_cannot_take_messages() {
        let (store, queue) = (
            crate::testkit::power::Disk::new(),
            crate::testkit::power::Disk::new(),
        );
        let platform = crate::testkit::power::platform_on(
            &store,
            &queue,
            crate::config::Settings::default(),
            Arc::new(crate::ports::SystemClock),
        )
        .unwrap();
        let app = router(platform.clone());
        let health = || {
            axum::http::Request::get("/health")
                .body(Body::empty())
                .expect("request")
        };
        assert_eq!(
            app.clone().oneshot(health()).await.unwrap().status(),
            StatusCode::OK
        );
        queue.cut(); // its log can no longer be written
        assert!(
            platform
                .apply_queue
                .send("x".into(), std::time::Duration::ZERO)
                .await
                .is_err()
        );
        let answer = app.oneshot(health()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()["retry-after"], "5");
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("queue log")
        );
    }
}
