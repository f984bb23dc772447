//! `/v1/dead-letters`: list, redrive (all, or `{"ids": [...]}`), delete
//! one, delete all.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::Platform;
use crate::dead_letters;
use crate::http::ApiError;
use crate::http::extract::{Account, PageParams, Path, Query};
use crate::ids::DeadLetterId;
use crate::ports::store::Progress;

type P = State<Arc<Platform>>;

/// A dead letter's id from a request; one that cannot be is not found.
fn dead_letter_id(text: &str) -> Result<DeadLetterId, ApiError> {
    DeadLetterId::parse(text).ok_or_else(|| ApiError::not_found(&format!("dead letter {text}")))
}

pub fn router() -> Router<Arc<Platform>> {
    Router::new()
        .route("/v1/dead-letters", get(list).delete(purge))
        .route("/v1/dead-letters/redrive", post(redrive))
        .route("/v1/dead-letters/{id}", delete(remove))
}

async fn list(
    State(p): P,
    Account(a): Account,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (data, next_cursor) = dead_letters::page(&p, &a, q.limit()?, q.cursor).await?;
    Ok(axum::Json(
        json!({"data": data, "next_cursor": next_cursor}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Redrive {
    /// Which to redrive; all (the oldest `MAX_REDRIVE`) when absent.
    #[serde(default)]
    ids: Option<Vec<String>>,
}

async fn redrive(
    State(p): P,
    Account(a): Account,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<serde_json::Value>), ApiError> {
    // No body, or `{}`, redrives all.
    let ids = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Redrive>(&body)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    ApiError::invalid("invalid_body", format!("invalid body: {e}"))
                }
                _ => ApiError::bad_request(
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ),
            })?
            .ids
    };
    // Too many first, then each: the order the answers have always had.
    let ids = match ids {
        Some(ids) if ids.len() > dead_letters::MAX_REDRIVE => {
            return Err(ApiError::invalid(
                "too_many_ids",
                format!(
                    "redrive at most {} dead letters a call",
                    dead_letters::MAX_REDRIVE
                ),
            ));
        }
        Some(ids) => Some(
            ids.iter()
                .map(|id| dead_letter_id(id))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let results: Vec<_> = dead_letters::redrive(&p, &a, ids)
        .await?
        .into_iter()
        .map(|(id, outcome)| json!({"id": id, "outcome": outcome}))
        .collect();
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"data": results}))))
}

/// 204 when none is left, 202 when more remain (call again).
async fn purge(State(p): P, Account(a): Account) -> Result<axum::response::Response, ApiError> {
    Ok(match dead_letters::purge(&p, &a).await? {
        Progress::Done => StatusCode::NO_CONTENT.into_response(),
        Progress::More => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"message": "more dead letters remain: call again"})),
        )
            .into_response(),
    })
}

async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    dead_letters::remove(&p, &a, &dead_letter_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
