//! `/v1/dead-letters`: list, redrive (all, or `{"ids": [...]}`), delete
//! one, delete all.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use super::answer;
use super::views::Page;
use crate::Platform;
use crate::dead_letters::{self, DeadLetter, Redriven};
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, PageParams, Path, Query};
use crate::ids::DeadLetterId;
use crate::ports::store::Progress;

type P = State<Arc<Platform>>;

/// A dead letter's id from a request; one that cannot be is not found.
fn dead_letter_id(text: &str) -> Result<DeadLetterId, ApiError> {
    DeadLetterId::parse(text).ok_or_else(|| ApiError::not_found(&format!("dead letter {text}")))
}

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list, purge))
        .routes(routes!(redrive))
        .routes(routes!(remove))
}

/// Queue messages given up on, newest first
///
/// Kept until redriven or deleted.
#[utoipa::path(get, operation_id = "list_dead_letters", path = "/v1/dead-letters", tag = "dead letter", params(PageParams),
    responses((status = 200, description = "a page of dead letters", body = Page<DeadLetter>)))]
async fn list(
    State(p): P,
    Account(a): Account,
    Query(q): Query<PageParams>,
) -> Result<Response, ApiError> {
    let (data, next_cursor) = dead_letters::page(&p, &a, q.limit()?, q.cursor).await?;
    Ok(answer(StatusCode::OK, &Page::new(data, next_cursor)))
}

/// Which dead letters to redrive.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct Redrive {
    /// Which to redrive; without, the oldest 100.
    #[serde(default)]
    #[schema(value_type = Option<Vec<DeadLetterId>>, max_items = 100)]
    ids: Option<Vec<String>>,
}

/// What became of one dead letter.
#[derive(Serialize, ToSchema)]
struct RedriveOutcome {
    id: DeadLetterId,
    outcome: Redriven,
}

#[derive(Serialize, ToSchema)]
struct RedriveAnswer {
    data: Vec<RedriveOutcome>,
}

/// Apply dead letters again and remove them
///
/// All (the oldest 100 a call), or those named by `{"ids": [...]}`. An
/// inbound request is replayed from its request log.
#[utoipa::path(post, operation_id = "redrive_dead_letters", path = "/v1/dead-letters/redrive", tag = "dead letter",
    request_body(content = Redrive, description = "optional: none, `{}`, or the ids"),
    responses((status = 202, description = "what became of each", body = RedriveAnswer),
              (status = 404, description = "no such dead letter in this account", body = ErrorBody),
              (status = 422, description = "more than 100 ids, or the body is not this shape", body = ErrorBody)))]
async fn redrive(
    State(p): P,
    Account(a): Account,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // No body, or `{}`, redrives all.
    let ids = crate::http::extract::optional_json::<Redrive>(&body)?.and_then(|r| r.ids);
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
    let data = dead_letters::redrive(&p, &a, ids)
        .await?
        .into_iter()
        .map(|(id, outcome)| RedriveOutcome { id, outcome })
        .collect();
    Ok(answer(StatusCode::ACCEPTED, &RedriveAnswer { data }))
}

/// Work left to do: call again.
#[derive(Serialize, ToSchema)]
struct MoreRemain {
    message: &'static str,
}

/// Delete every dead letter
///
/// Up to 10 s of work a call: 204 when none is left, 202 when more remain
/// (call again).
#[utoipa::path(delete, operation_id = "delete_dead_letters", path = "/v1/dead-letters", tag = "dead letter",
    responses((status = 204, description = "none left"),
              (status = 202, description = "more remain: call again", body = MoreRemain)))]
async fn purge(State(p): P, Account(a): Account) -> Result<Response, ApiError> {
    Ok(match dead_letters::purge(&p, &a).await? {
        Progress::Done => StatusCode::NO_CONTENT.into_response(),
        Progress::More => answer(
            StatusCode::ACCEPTED,
            &MoreRemain {
                message: "more dead letters remain: call again",
            },
        ),
    })
}

/// Delete a dead letter
#[utoipa::path(delete, operation_id = "delete_dead_letter", path = "/v1/dead-letters/{id}", tag = "dead letter", params(("id" = inline(DeadLetterId), Path)),
    responses((status = 204, description = "deleted"),
              (status = 404, description = "no such dead letter in this account", body = ErrorBody)))]
async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    dead_letters::remove(&p, &a, &dead_letter_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
