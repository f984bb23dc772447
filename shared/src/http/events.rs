//! `POST /v1/events`: events published into the account, fanned out to
//! its webhooks after the answer.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

use super::answer;
use crate::Platform;
use crate::delivery::events;
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, Json};

pub(crate) fn routes() -> Routes {
    Routes::new().routes(routes!(publish))
}

/// The events queued, in the order sent.
#[derive(Serialize, utoipa::ToSchema)]
struct Published {
    /// Each event's id (`evt_...`), as its deliveries carry it.
    ids: Vec<String>,
}

/// An event: Mumara's payload reference; other fields are kept too, and
/// sent with it.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct Event {
    /// Given by Hookline (answered in `ids`); an event sent with one is
    /// refused. Send yours as `message_id`.
    #[schema(read_only)]
    id: Option<String>,
    /// Its type: `delivered`, `newsletter_opened`... or one of your own.
    #[schema(pattern = "^[a-z0-9_.-]{1,64}$")]
    event: String,
    /// ISO 8601; now when absent.
    timestamp: Option<chrono::DateTime<chrono::Utc>>,
    email: Option<String>,
    message_id: Option<String>,
    /// A string or a number.
    #[schema(schema_with = text_or_number)]
    campaign_id: Option<Value>,
    broadcast_name: Option<String>,
    sending_domain: Option<String>,
    sending_node: Option<String>,
    link_url: Option<String>,
    bounce_type: Option<String>,
    complaint_type: Option<String>,
    bridge: Option<String>,
    dedicated_ip: Option<String>,
}

/// `campaign_id`: a string, a number, or null.
fn text_or_number() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{OneOfBuilder, Type};
    use utoipa::openapi::{ObjectBuilder, RefOr, Schema};
    let of = |t: Type| RefOr::<Schema>::T(ObjectBuilder::new().schema_type(t).into());
    OneOfBuilder::new()
        .item(of(Type::String))
        .item(of(Type::Number))
        .item(of(Type::Null))
        .build()
        .into()
}

/// Several events at once.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EventBatch {
    #[schema(min_items = 1, max_items = 100)]
    events: Vec<Event>,
}

/// One event, or several.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PublishBody {
    Many(EventBatch),
    One(Box<Event>),
}

/// Publish events
///
/// One event, or `{"events": [...]}` (up to 100). Answered once they are
/// durably queued; each goes to every active webhook whose events and
/// filters match it.
#[utoipa::path(post, operation_id = "publish_events", path = "/v1/events", tag = "event",
    request_body = PublishBody,
    responses((status = 202, description = "queued", body = Published),
              (status = 422, description = "an event is invalid: the message names it and its field (`invalid_event`)", body = ErrorBody)))]
async fn publish(
    State(p): State<Arc<Platform>>,
    Account(a): Account,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let parsed = events::parse_body(&body, p.clock.now())?;
    let ids = events::publish(&p, &a, parsed).await?;
    Ok(answer(StatusCode::ACCEPTED, &Published { ids }))
}
