//! `/v1/triggers`: create, list, get, update, delete, activate, deactivate,
//! rotate the API key, preview a sample, read the request log, replay.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use super::inbound::{Inbound, RequestRecord, Status};
use super::{Trigger, TriggerInput};
use crate::Platform;
use crate::apply::ApplyMessage;
use crate::contacts::Changes;
use crate::http::ApiError;
use crate::http::extract::{Account, BaseUrl, Json, PageParams, Path, Query};
use crate::keys;
use crate::ports::Query as StoreQuery;

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
    let (t, key) = super::create(&p, &a, input).await?;
    ok(StatusCode::CREATED, with_key(&t, &base, key))
}

async fn index(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Query(q): Query<PageParams>,
) -> Answer {
    let mut query = StoreQuery::new(keys::account_triggers(&a), "");
    query.limit = q.limit()?;
    query.cursor = q.cursor;
    let page = p.store.query(query).await?;
    let data = page
        .items
        .into_iter()
        .map(|i| serde_json::from_value::<Trigger>(i.body).map(|t| t.view(&base)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal("decode trigger", e))?;
    ok(
        StatusCode::OK,
        json!({"data": data, "next_cursor": page.next_cursor}),
    )
}

async fn show(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    ok(StatusCode::OK, super::get(&p, &a, &id).await?.0.view(&base))
}

async fn update(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Json(input): Json<TriggerInput>,
) -> Answer {
    ok(
        StatusCode::OK,
        super::update(&p, &a, &id, input).await?.view(&base),
    )
}

async fn set_active(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    active: bool,
) -> Answer {
    let input = TriggerInput {
        active: Some(active),
        ..Default::default()
    };
    ok(
        StatusCode::OK,
        super::update(&p, &a, &id, input).await?.view(&base),
    )
}

async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::delete(&p, &a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(p): P,
    Account(a): Account,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Answer {
    let (t, key) = super::rotate_key(&p, &a, &id).await?;
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
    let (trigger, _) = super::get(&p, &a, &id).await?;
    let Value::Object(sample) = &body.sample else {
        return Err(ApiError::invalid(
            "invalid_sample",
            "sample must be a JSON object, like the bodies this trigger receives",
        ));
    };
    let paths: Vec<Value> = crate::transforms::leaf_paths(&body.sample)
        .into_iter()
        .map(|(path, value)| json!({"path": path, "value": value}))
        .collect();
    let source = body
        .transform
        .or(trigger.transform.clone())
        .filter(|s| !s.trim().is_empty());
    let fields = match &source {
        Some(s) => super::compile(s)
            .await?
            .evaluate(sample)
            .await
            .map_err(|e| ApiError::internal("evaluate a transform", e))?
            .map_err(|e| {
                ApiError::invalid("transform_failed", format!("transform {e}"))
                    .with_details(json!({"line": e.line, "paths": paths}))
            })?,
        None => crate::transforms::direct(sample).map_err(|e| {
            ApiError::invalid("transform_failed", format!("{}: {}", e.target, e.message))
                .with_details(json!({"paths": paths}))
        })?,
    };
    let changes = Changes::parse(fields).map_err(|m| {
        ApiError::invalid("invalid_contact", m).with_details(json!({"paths": paths}))
    })?;
    let identifier = trigger.identifier.as_str();
    let contact = json!({
        "email": changes.email.as_ref().map(|e| e.to_string()),
        "phone_number": changes.phone_number.as_ref().map(|n| n.to_string()),
        "name": changes.name, "first_name": changes.first_name, "last_name": changes.last_name,
        "fields": changes.fields,
    });
    if contact[identifier].is_null() {
        return Err(ApiError::invalid(
            "missing_identifier",
            format!("the sample yields no {identifier}, this trigger's identifier"),
        )
        .with_details(json!({"contact": contact, "paths": paths})));
    }
    ok(
        StatusCode::OK,
        json!({"contact": contact, "identifier": identifier, "paths": paths}),
    )
}

async fn requests(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Answer {
    super::get(&p, &a, &id).await?;
    let mut query = StoreQuery::new(keys::trigger_requests(&a, &id), "");
    query.limit = q.limit()?;
    query.cursor = q.cursor;
    query.reverse = true; // newest first
    let page = p.store.query(query).await?;
    let data: Vec<Value> = page.items.into_iter().map(|i| i.body).collect();
    ok(
        StatusCode::OK,
        json!({"data": data, "next_cursor": page.next_cursor}),
    )
}

async fn load(
    p: &Platform,
    account: &str,
    id: &str,
    request_id: &str,
) -> Result<RequestRecord, ApiError> {
    if !crate::ids::looks_like(request_id, "req") {
        return Err(ApiError::not_found("request"));
    }
    super::get(p, account, id).await?;
    let item = p
        .store
        .get(&keys::trigger_request(account, id, request_id))
        .await?;
    let item = item.ok_or_else(|| ApiError::not_found("request"))?;
    serde_json::from_value(item.body).map_err(|e| ApiError::internal("decode request", e))
}

async fn request(
    State(p): P,
    Account(a): Account,
    Path((id, request_id)): Path<(String, String)>,
) -> Answer {
    ok(
        StatusCode::OK,
        serde_json::to_value(load(&p, &a, &id, &request_id).await?).expect("serialisable"),
    )
}

/// Applies a failed request again, with the trigger as it is now.
async fn replay(
    State(p): P,
    Account(a): Account,
    Path((id, request_id)): Path<(String, String)>,
) -> Answer {
    let (request_id, attempt) = send_again(&p, a, id, &request_id).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({"request_id": request_id, "attempt": attempt}),
    )
}

/// Queues a failed request to be applied again (a replay, a redriven dead
/// letter); answers its id and the attempt it will be.
pub(crate) async fn send_again(
    p: &Platform,
    a: String,
    id: String,
    request_id: &str,
) -> Result<(String, u32), ApiError> {
    let record = load(p, &a, &id, request_id).await?;
    if record.status != Status::Failed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            "only a failed request can be replayed; this one was applied",
        ));
    }
    if record.payload_omitted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "payload_not_kept",
            "the payload was too large to keep in the request log, so it cannot be replayed; have its sender send it again",
        ));
    }
    let attempt = record.attempts + 1;
    let message = ApplyMessage::Inbound(Inbound {
        account: a,
        trigger_id: id,
        request_id: record.id.clone(),
        received_at: record.received_at,
        payload: record.payload,
        idempotency_key: record.idempotency_key,
        // The key was settled when the request was first applied.
        body_sha256: None,
        attempt,
    });
    message.send(p).await?;
    Ok((record.id, attempt))
}
