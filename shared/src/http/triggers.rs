//! `/v1/triggers`: create, list, get, update, delete, activate, deactivate,
//! rotate the API key, preview a sample, read the request log, replay.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use super::views::RequestView;
use crate::Platform;
use crate::error::decoded;
use crate::http::ApiError;
use crate::http::extract::{Account, BaseUrl, Json, PageParams, Path, Query};
use crate::ids::{RequestId, TriggerId};
use crate::triggers::pipeline::RequestRecord;
use crate::triggers::{self, Trigger, TriggerInput};

type P = State<Arc<Platform>>;
type Answer = Result<(StatusCode, axum::Json<Value>), ApiError>;

pub fn router() -> Router<Arc<Platform>> {
    Router::new()
        .route("/v1/triggers", get(index).post(create))
        .route("/v1/triggers/{id}", get(show).patch(update).delete(remove))
        .route(
            "/v1/triggers/{id}/activate",
            post(|p: P, a: Account, b: BaseUrl, id: Path<String>| set_active(p, a, b, id, true)),
        )
        .route(
            "/v1/triggers/{id}/deactivate",
            post(|p: P, a: Account, b: BaseUrl, id: Path<String>| set_active(p, a, b, id, false)),
        )
        .route("/v1/triggers/{id}/rotate-key", post(rotate_key))
        .route("/v1/triggers/{id}/preview", post(preview))
        .route("/v1/triggers/{id}/requests", get(requests))
        .route("/v1/triggers/{id}/requests/{request_id}", get(request))
        .route(
            "/v1/triggers/{id}/requests/{request_id}/replay",
            post(replay),
        )
}

/// A trigger id from the path; one that cannot be is not found, as one
/// that does not exist.
fn trigger_id(text: &str) -> Result<TriggerId, ApiError> {
    TriggerId::parse(text).ok_or_else(|| ApiError::not_found("trigger"))
}

fn request_id_of(text: &str) -> Result<RequestId, ApiError> {
    RequestId::parse(text).ok_or_else(|| ApiError::not_found("request"))
}

fn ok(status: StatusCode, v: Value) -> Answer {
    Ok((status, axum::Json(v)))
}

fn with_key(t: &Trigger, base: &str, api_key: Option<String>) -> Value {
    let mut v = t.view(base);
    if let Some(k) = api_key {
        // Shown this once: only its hash is kept.
        v["api_key"] = k.into();
    }
    v
}

async fn create(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Json(input): Json<TriggerInput>,
) -> Answer {
    let (t, key) = triggers::create(&p, &a, input).await?;
    ok(StatusCode::CREATED, with_key(&t, &base, key))
}

async fn index(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Query(q): Query<PageParams>,
) -> Answer {
    let (all, next_cursor) = triggers::page(&p, &a, q.limit()?, q.cursor).await?;
    let data: Vec<Value> = all.iter().map(|t| t.view(&base)).collect();
    ok(
        StatusCode::OK,
        json!({"data": data, "next_cursor": next_cursor}),
    )
}

async fn show(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    let id = trigger_id(&id)?;
    ok(
        StatusCode::OK,
        triggers::get(&p, &a, &id).await?.0.view(&base),
    )
}

async fn update(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Json(input): Json<TriggerInput>,
) -> Answer {
    let id = trigger_id(&id)?;
    ok(
        StatusCode::OK,
        triggers::update(&p, &a, &id, input).await?.view(&base),
    )
}

async fn set_active(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    active: bool,
) -> Answer {
    let id = trigger_id(&id)?;
    let input = TriggerInput {
        active: Some(active),
        ..Default::default()
    };
    ok(
        StatusCode::OK,
        triggers::update(&p, &a, &id, input).await?.view(&base),
    )
}

async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = trigger_id(&id)?;
    triggers::delete(&p, &a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    let id = trigger_id(&id)?;
    let (t, key) = triggers::rotate_key(&p, &a, &id).await?;
    ok(StatusCode::OK, with_key(&t, &base, Some(key)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Preview {
    sample: Value,
    /// Try a transform before saving it; the trigger's own otherwise.
    #[serde(default)]
    transform: Option<String>,
}

/// The contact the transform makes of a sample, and the sample's leaf paths
/// to map fields from; or a 422 naming the line (and column) at fault.
async fn preview(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Json(body): Json<Preview>,
) -> Answer {
    let id = trigger_id(&id)?;
    let answer = triggers::preview(&p, &a, &id, &body.sample, body.transform).await?;
    ok(StatusCode::OK, answer)
}

async fn requests(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Answer {
    let id = trigger_id(&id)?;
    let page = triggers::requests::page(&p, &a, &id, q.limit()?, q.cursor).await?;
    let records: Vec<RequestRecord> = decoded(page.items, "decode request")?;
    let data: Vec<RequestView> = records.iter().map(RequestView::from).collect();
    ok(
        StatusCode::OK,
        json!({"data": data, "next_cursor": page.next_cursor}),
    )
}

async fn request(
    State(p): P,
    Account(a): Account,
    Path((id, request_id)): Path<(String, String)>,
) -> Answer {
    let (id, request_id) = (trigger_id(&id)?, request_id_of(&request_id)?);
    let record = triggers::requests::load(&p, &a, &id, &request_id).await?;
    ok(
        StatusCode::OK,
        serde_json::to_value(RequestView::from(&record)).expect("serialisable"),
    )
}

/// Applies a failed request again, with the trigger as it is now.
async fn replay(
    State(p): P,
    Account(a): Account,
    Path((id, request_id)): Path<(String, String)>,
) -> Answer {
    let (id, request_id) = (trigger_id(&id)?, request_id_of(&request_id)?);
    let (request_id, attempt) = triggers::requests::replay(&p, &a, &id, &request_id).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({"request_id": request_id, "attempt": attempt}),
    )
}
