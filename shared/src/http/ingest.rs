//! The ingest face: `POST /hooks/{id}`, the trigger URLs external systems
//! post to. Authenticate, read the body, queue durably, answer: the domain
//! (`triggers::accept`) does the first and the last.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;

use crate::Platform;
use crate::http::ApiError;
use crate::http::extract::Path;
use crate::ids;
use crate::triggers::accept;

/// What one inbound request may carry (413 beyond).
pub const BODY_LIMIT: usize = 256 * 1024;

pub fn routes() -> Router<Arc<Platform>> {
    Router::new()
        .route("/hooks/{id}", post(hook))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn hook(
    State(p): State<Arc<Platform>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    // The headers taken out, not cloned as the `HeaderMap` extractor does.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = Bytes::from_request(Request::from_parts(parts, body), &()).await;
    let api_key = super::extract::bearer(&headers).ok();
    let id = crate::ids::TriggerId::parse(&id)
        .ok_or_else(|| ApiError::not_found_message("no active trigger has this URL"))?;
    let trigger = accept::admit(&p, &id, api_key).await?;
    let span = tracing::Span::current();
    span.record("account", trigger.account.as_str());
    span.record("trigger", crate::ids::trigger_ref(&trigger.id).as_str());
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {} KiB", BODY_LIMIT / 1024),
        ),
        _ => ApiError::bad_request("invalid_body", r.body_text()),
    })?;
    let payload = super::body::parse_body(&headers, &body)?;
    let idempotency_key = idempotency_key(&headers)?;
    let request_id = accept::queue(&p, &trigger, payload, idempotency_key, &body).await?;
    span.record("request_id", request_id.as_str());
    Ok(captured(&request_id))
}

/// The answer once a request is queued (written out directly: this is the
/// hottest path there is, and a request id needs no escaping).
fn captured(request_id: &str) -> Response {
    debug_assert!(ids::looks_like(request_id, "req"));
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"message":"Request captured successfully","request_id":"{request_id}"}}"#),
    )
        .into_response()
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
    };
    let text = v.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}
