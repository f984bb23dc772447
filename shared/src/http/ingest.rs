//! The ingest face: `POST /hooks/{id}`, the trigger URLs external systems
//! post to. Authenticate, read the body, queue durably, answer: the domain
//! (`triggers::accept`) does the first and the last.

use super::described::{Routes, routes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::Platform;
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::Path;
use crate::ids::{self, RequestId, TriggerId};
use crate::triggers::accept;

/// What one inbound request may carry (413 beyond).
pub const BODY_LIMIT: usize = 256 * 1024;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(hook, preflight))
        .layered(|r| r.layer(DefaultBodyLimit::max(BODY_LIMIT)).layer(cors()))
}

/// Trigger URLs may be posted to from a web page of any origin (a form on a
/// customer's site): the browser's preflight is answered, and answers may
/// be read. No cookie is involved (`Allow-Credentials` is never sent); a
/// trigger's API key travels in `Authorization`. The admin API allows no
/// other origin.
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// A browser's CORS preflight of a trigger URL
///
/// Answered by the CORS layer (any origin may post; no credentials); an
/// `OPTIONS` that is not a preflight gets an empty answer.
#[utoipa::path(options, operation_id = "preflight_trigger_url", path = "/hooks/{id}", tag = "trigger URL",
    params(("id" = String, Path)),
    security(()),
    responses((status = 200, description = "a preflight, answered with the Access-Control-Allow-* headers"),
              (status = 204, description = "not a preflight: nothing to say")))]
async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

/// The answer to a request taken.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct Captured {
    #[schema(pattern = "^Request captured successfully$")]
    message: &'static str,
    /// Its id in the trigger's request log.
    request_id: RequestId,
}

/// A form as trigger URLs take it: named fields, each a text or, repeated,
/// a list of texts.
struct Form;

impl utoipa::PartialSchema for Form {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{
            AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
        };
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let texts = ArrayBuilder::new().items(text()).min_items(Some(2));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(text().min_length(Some(1))))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
                OneOfBuilder::new().item(text()).item(texts).build(),
            )))))
            .into()
    }
}

impl utoipa::ToSchema for Form {}

/// A trigger URL: external systems post here
///
/// A JSON object, or a form (`application/x-www-form-urlencoded`), is
/// queued durably and answered at once; the trigger's transform and
/// actions run off the request path. With `Idempotency-Key`, a request
/// sent again is answered as the first was and applied once.
#[utoipa::path(post, operation_id = "post_to_trigger_url", path = "/hooks/{id}", tag = "trigger URL",
    params(("id" = inline(TriggerId), Path),
           ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters; the same key within 24 h is the same request")),
    request_body(description = "a JSON object (`application/json` or any `application/*+json`), or a form", content(
        (Object = "application/json"),
        (Form = "application/x-www-form-urlencoded"))),
    security((), ("triggerKey" = [])),
    responses((status = 200, description = "captured", body = Captured),
              (status = 401, description = "the trigger requires its API key, and this is not it", body = ErrorBody),
              (status = 403, description = "the trigger's account is suspended (`account_suspended`)", body = ErrorBody),
              (status = 404, description = "no active trigger has this URL", body = ErrorBody),
              (status = 409, description = "a request with this Idempotency-Key is being taken: retry in a moment", body = ErrorBody),
              (status = 415, description = "the body is neither JSON nor a form", body = ErrorBody),
              (status = 429, description = "past the account's requests a second (`rate_limited`, retry after Retry-After seconds) or a month (`quota_exceeded`)", body = ErrorBody),
              (status = 422, description = "the body is not an object, holds a number out of range or is nested too deep, or this Idempotency-Key came with another body", body = ErrorBody)))]
async fn hook(
    State(p): State<Arc<Platform>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    // The headers taken out, not cloned as the `HeaderMap` extractor does.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let api_key = super::extract::bearer(&headers).ok();
    let id = TriggerId::parse(&id)
        .ok_or_else(|| ApiError::not_found_message("no active trigger has this URL"))?;
    let trigger = accept::admit(&p, &id, api_key).await?;
    let span = tracing::Span::current();
    span.record("account", trigger.account.as_str());
    span.record("trigger", crate::ids::trigger_ref(&trigger.id).as_str());
    // The account's state and limits, before any work on the body: only
    // now is it read.
    crate::accounts::usage::admit_inbound(&p, &trigger.account).await?;
    let (body, _held) = super::read_within(body, BODY_LIMIT, p.settings.request_timeout).await?;
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
