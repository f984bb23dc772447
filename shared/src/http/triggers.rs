//! `/v1/triggers`: create, list, get, update, delete, activate, deactivate,
//! rotate the API key, preview a sample, read the request log, replay.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

use super::answer;
use super::views::{Page, RequestView, TriggerView};
use crate::Platform;
use crate::error::decoded;
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, BaseUrl, Json, PageParams, Path, Query};
use crate::ids::{RequestId, TriggerId};
use crate::triggers::pipeline::RequestRecord;
use crate::triggers::{self, NewTrigger, Preview, Trigger, TriggerPatch};

type P = State<Arc<Platform>>;
type Answer = Result<Response, ApiError>;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(index, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(rotate_key))
        .routes(routes!(preview))
        .routes(routes!(preview_new))
        .routes(routes!(requests))
        .routes(routes!(request))
        .routes(routes!(replay))
}

/// A trigger id from the path; one that cannot be is not found, as one
/// that does not exist.
fn trigger_id(text: &str) -> Result<TriggerId, ApiError> {
    TriggerId::parse(text).ok_or_else(|| ApiError::not_found("trigger"))
}

fn request_id_of(text: &str) -> Result<RequestId, ApiError> {
    RequestId::parse(text).ok_or_else(|| ApiError::not_found("request"))
}

/// The trigger as answered, with its API key when just made (shown this
/// once: only its hash is kept).
fn view(status: StatusCode, t: &Trigger, base: &str, api_key: Option<String>) -> Answer {
    let mut v = TriggerView::new(t, base);
    v.api_key = api_key;
    Ok(answer(status, &v))
}

/// Create a trigger
///
/// Answers its URL, and its API key once when `require_api_key`.
#[utoipa::path(post, operation_id = "create_trigger", path = "/v1/triggers", tag = "trigger", request_body = NewTrigger,
    responses((status = 201, description = "made", body = TriggerView),
              (status = 403, description = "the account has as many triggers as its limit (`trigger_limit_reached`)", body = ErrorBody),
              (status = 422, description = "a field, the transform (its line and column in details) or an action is invalid", body = ErrorBody)))]
async fn create(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Json(input): Json<NewTrigger>,
) -> Answer {
    let (t, key) = triggers::create(&p, &a, input).await?;
    view(StatusCode::CREATED, &t, &base, key)
}

/// List triggers
#[utoipa::path(get, operation_id = "list_triggers", path = "/v1/triggers", tag = "trigger", params(PageParams),
    responses((status = 200, description = "a page of triggers, oldest first", body = Page<TriggerView>)))]
async fn index(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Query(q): Query<PageParams>,
) -> Answer {
    let (all, next_cursor) = triggers::page(&p, &a, q.limit()?, q.cursor).await?;
    let data = all.iter().map(|t| TriggerView::new(t, &base)).collect();
    Ok(answer(StatusCode::OK, &Page::new(data, next_cursor)))
}

/// Get a trigger
#[utoipa::path(get, operation_id = "get_trigger", path = "/v1/triggers/{id}", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    responses((status = 200, description = "found", body = TriggerView),
              (status = 404, description = "no such trigger in this account", body = ErrorBody)))]
async fn show(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    let id = trigger_id(&id)?;
    view(
        StatusCode::OK,
        &triggers::get(&p, &a, &id).await?.0,
        &base,
        None,
    )
}

/// Change a trigger (absent fields are kept)
#[utoipa::path(patch, operation_id = "update_trigger", path = "/v1/triggers/{id}", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    request_body = TriggerPatch,
    responses((status = 200, description = "changed", body = TriggerView),
              (status = 404, description = "no such trigger in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody),
              (status = 422, description = "a field, the transform (its line and column in details) or an action is invalid", body = ErrorBody)))]
async fn update(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Json(input): Json<TriggerPatch>,
) -> Answer {
    let id = trigger_id(&id)?;
    let t = triggers::update(&p, &a, &id, input).await?;
    view(StatusCode::OK, &t, &base, None)
}

async fn set_active(p: &Platform, a: &str, base: &str, id: &str, active: bool) -> Answer {
    let id = trigger_id(id)?;
    let input = TriggerPatch {
        active: Some(active),
        ..Default::default()
    };
    let t = triggers::update(p, a, &id, input).await?;
    view(StatusCode::OK, &t, base, None)
}

/// Activate a trigger
#[utoipa::path(post, operation_id = "activate_trigger", path = "/v1/triggers/{id}/activate", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    responses((status = 200, description = "active", body = TriggerView),
              (status = 404, description = "no such trigger in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn activate(
    State(p): P,
    Account(a): Account,
    BaseUrl(b): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    set_active(&p, &a, &b, &id, true).await
}

/// Deactivate a trigger (its URL answers 404)
#[utoipa::path(post, operation_id = "deactivate_trigger", path = "/v1/triggers/{id}/deactivate", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    responses((status = 200, description = "inactive", body = TriggerView),
              (status = 404, description = "no such trigger in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn deactivate(
    State(p): P,
    Account(a): Account,
    BaseUrl(b): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    set_active(&p, &a, &b, &id, false).await
}

/// Delete a trigger
///
/// Its request log is removed in the background.
#[utoipa::path(delete, operation_id = "delete_trigger", path = "/v1/triggers/{id}", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    responses((status = 204, description = "deleted"),
              (status = 404, description = "no such trigger in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = trigger_id(&id)?;
    triggers::delete(&p, &a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a new API key, required from now on
///
/// The key is in this answer only; the old one stops working at once.
#[utoipa::path(post, operation_id = "rotate_trigger_key", path = "/v1/triggers/{id}/rotate-key", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    responses((status = 200, description = "the trigger, with api_key", body = TriggerView),
              (status = 404, description = "no such trigger in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn rotate_key(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    let id = trigger_id(&id)?;
    let (t, key) = triggers::rotate_key(&p, &a, &id).await?;
    view(StatusCode::OK, &t, &base, Some(key))
}

/// A sample payload to try a transform on.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    /// A body like those the trigger receives.
    #[schema(value_type = Object)]
    sample: Value,
    /// Try this transform before saving it; the trigger's own otherwise.
    #[serde(default)]
    #[schema(max_length = 16384)]
    transform: Option<String>,
    /// Try this identifier; the trigger's own otherwise.
    #[serde(default)]
    identifier: Option<crate::contacts::Identifier>,
}

/// Try a transform on a sample
///
/// The contact the transform makes of the sample, and the sample's leaf
/// paths to map fields from; or a 422 naming the line (and column) at
/// fault, with the paths in its details.
#[utoipa::path(post, operation_id = "preview_trigger", path = "/v1/triggers/{id}/preview", tag = "trigger", params(("id" = inline(TriggerId), Path)),
    request_body = PreviewRequest,
    responses((status = 200, description = "what the sample makes", body = Preview),
              (status = 404, description = "no such trigger in this account", body = ErrorBody),
              (status = 422, description = "the transform fails on the sample (line and column in details), or yields no identifier", body = ErrorBody)))]
async fn preview(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Json(body): Json<PreviewRequest>,
) -> Answer {
    let id = trigger_id(&id)?;
    let made =
        triggers::preview(&p, &a, &id, &body.sample, body.transform, body.identifier).await?;
    Ok(answer(StatusCode::OK, &made))
}

/// A sample payload to try a transform on, before the trigger is made.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPreviewRequest {
    /// A body like those the trigger will receive.
    #[schema(value_type = Object)]
    sample: Value,
    /// The transform to try; none: the sample's own top-level contact fields.
    #[serde(default)]
    #[schema(max_length = 16384)]
    transform: Option<String>,
    /// The field that will find the contact.
    #[serde(default = "email")]
    identifier: crate::contacts::Identifier,
}

fn email() -> crate::contacts::Identifier {
    crate::contacts::Identifier::Email
}

/// Try a transform on a sample, before making the trigger
///
/// As the trigger's own preview: the contact the sample makes and its leaf
/// paths, or a 422 naming the line and column at fault.
#[utoipa::path(post, operation_id = "preview_new_trigger", path = "/v1/triggers/preview", tag = "trigger",
    request_body = NewPreviewRequest,
    responses((status = 200, description = "what the sample makes", body = Preview),
              (status = 422, description = "the transform fails on the sample (line and column in details), or yields no identifier", body = ErrorBody)))]
async fn preview_new(Account(_): Account, Json(body): Json<NewPreviewRequest>) -> Answer {
    let made = triggers::preview_new(&body.sample, body.transform, body.identifier).await?;
    Ok(answer(StatusCode::OK, &made))
}

/// What the trigger received and what became of it, newest first
#[utoipa::path(get, operation_id = "list_trigger_requests", path = "/v1/triggers/{id}/requests", tag = "trigger",
    params(("id" = inline(TriggerId), Path), PageParams),
    responses((status = 200, description = "a page of requests", body = Page<RequestView>),
              (status = 404, description = "no such trigger in this account", body = ErrorBody)))]
async fn requests(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Answer {
    let id = trigger_id(&id)?;
    let page = triggers::requests::page(&p, &a, &id, q.limit()?, q.cursor).await?;
    let records: Vec<RequestRecord> = decoded(page.items, "decode request")?;
    let data = records.iter().map(RequestView::from).collect();
    Ok(answer(StatusCode::OK, &Page::new(data, page.next_cursor)))
}

/// One request to a trigger, and what became of it
#[utoipa::path(get, operation_id = "get_trigger_request", path = "/v1/triggers/{id}/requests/{request_id}", tag = "trigger",
    params(("id" = inline(TriggerId), Path), ("request_id" = inline(RequestId), Path)),
    responses((status = 200, description = "found", body = RequestView),
              (status = 404, description = "no such trigger or request in this account", body = ErrorBody)))]
async fn request(
    State(p): P,
    Account(a): Account,
    Path((id, request_id)): Path<(String, String)>,
) -> Answer {
    let (id, request_id) = (trigger_id(&id)?, request_id_of(&request_id)?);
    let record = triggers::requests::load(&p, &a, &id, &request_id).await?;
    Ok(answer(StatusCode::OK, &RequestView::from(&record)))
}

/// A replay, queued.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Replayed {
    request_id: RequestId,
    /// Which attempt the replay will be.
    attempt: u32,
}

/// Apply a failed request again, with the trigger as it is now
#[utoipa::path(post, operation_id = "replay_trigger_request", path = "/v1/triggers/{id}/requests/{request_id}/replay", tag = "trigger",
    params(("id" = inline(TriggerId), Path), ("request_id" = inline(RequestId), Path)),
    responses((status = 202, description = "queued", body = Replayed),
              (status = 404, description = "no such trigger or request in this account", body = ErrorBody),
              (status = 409, description = "the request did not fail, or its payload was not kept", body = ErrorBody)))]
async fn replay(
    State(p): P,
    Account(a): Account,
    Path((id, request_id)): Path<(String, String)>,
) -> Answer {
    let (id, request_id) = (trigger_id(&id)?, request_id_of(&request_id)?);
    let (request_id, attempt) = triggers::requests::replay(&p, &a, &id, &request_id).await?;
    Ok(answer(
        StatusCode::ACCEPTED,
        &Replayed {
            request_id,
            attempt,
        },
    ))
}
