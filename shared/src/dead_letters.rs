//! Dead letters: queue messages a worker gave up on, kept in the store with
//! their reason and attempts until they are redriven or deleted. Not in a
//! dead-letter queue: SQS keeps a message 14 days at most, and an operator
//! must be able to see and redrive them on both hosts alike.
//!
//! `GET /v1/dead-letters`, `POST /v1/dead-letters/redrive` (all, or
//! `{"ids": [...]}`), `DELETE /v1/dead-letters/{id}`, `DELETE
//! /v1/dead-letters` (all).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

use crate::Platform;
use crate::apply::ApplyMessage;
use crate::http::ApiError;
use crate::http::extract::{Account, PageParams, Path, Query};
use crate::keys;
use crate::ports::{Cond, Put, Query as StoreQuery, StoreError};

/// The most of a message's text kept when it cannot be read (for a look;
/// such a message cannot be redriven into anything but the same failure).
const MAX_UNREADABLE: usize = 16 * 1024;
/// Dead letters one redrive call moves at most; call again for the rest.
pub const MAX_REDRIVE: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// The queue it died on: `apply` (and `delivery`, once it exists).
    pub queue: String,
    /// What the message was: `inbound` (a request to a trigger URL),
    /// `purge`, `purge_trigger_log`, or `unreadable`.
    pub kind: String,
    pub reason: String,
    /// Times it was received before it was given up on.
    pub attempts: u32,
    pub dead_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// An inbound request's id: its request log says what became of it,
    /// and redriving it replays it from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The message itself, sent again as it was by a redrive (an inbound
    /// request is replayed from its log when it has a record there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Keeps a message of the apply queue as a dead letter. Only once this
/// answers may the message leave its queue.
pub async fn keep_apply(
    platform: &Platform,
    body: &str,
    reason: &str,
    attempts: u32,
) -> Result<(), StoreError> {
    let id = crate::ids::new_id("dl");
    let parsed = serde_json::from_str::<ApplyMessage>(body).ok();
    let (account, kind, trigger_id, request_id, message) = match &parsed {
        Some(ApplyMessage::Inbound(m)) => (
            m.account.clone(),
            "inbound",
            Some(m.trigger_id.clone()),
            Some(m.request_id.clone()),
            Some(body.to_string()),
        ),
        Some(ApplyMessage::Purge { account, .. }) => {
            (account.clone(), "purge", None, None, Some(body.to_string()))
        }
        Some(ApplyMessage::PurgeTriggerLog {
            account,
            trigger_id,
        }) => (
            account.clone(),
            "purge_trigger_log",
            Some(trigger_id.clone()),
            None,
            Some(body.to_string()),
        ),
        None => {
            let mut end = body.len().min(MAX_UNREADABLE);
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            (
                keys::NO_ACCOUNT.to_string(),
                "unreadable",
                None,
                None,
                Some(body[..end].to_string()),
            )
        }
    };
    let letter = DeadLetter {
        id: id.clone(),
        queue: "apply".into(),
        kind: kind.into(),
        reason: reason.into(),
        attempts,
        dead_at: platform.clock.now(),
        trigger_id,
        request_id,
        message,
    };
    let key = keys::dead_letter(&account, &id);
    let body = serde_json::to_value(&letter).expect("serialisable");
    match platform
        .store
        .put(Put::new(key.clone(), body).when(Cond::Absent))
        .await
    {
        // A request too large to keep twice: its log has its payload (the
        // failed record is written before an inbound message is kept here).
        Err(StoreError::TooLarge(_)) if letter.kind == "inbound" => {
            let body = serde_json::to_value(DeadLetter {
                message: None,
                ..letter
            })
            .expect("serialisable");
            platform
                .store
                .put(Put::new(key, body).when(Cond::Absent))
                .await?;
        }
        other => {
            other?;
        }
    }
    Ok(())
}

type P = State<Arc<Platform>>;

fn decode(items: Vec<crate::ports::Item>) -> Result<Vec<DeadLetter>, ApiError> {
    items
        .into_iter()
        .map(|i| serde_json::from_value(i.body))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::internal("decode dead letter", e))
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
    let mut query = StoreQuery::new(keys::dead_letters(&a), "");
    query.limit = q.limit()?;
    query.cursor = q.cursor;
    query.reverse = true;
    let page = p.store.query(query).await?;
    let data = decode(page.items)?;
    Ok(axum::Json(
        json!({"data": data, "next_cursor": page.next_cursor}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Redrive {
    /// Which to redrive; all (the oldest `MAX_REDRIVE`) when absent.
    #[serde(default)]
    ids: Option<Vec<String>>,
}

/// Sends dead letters to be applied again and removes them: an inbound
/// request is replayed from its request log (as `.../replay` does), other
/// messages are queued again as they were. Answers what happened to each.
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
    let letters: Vec<DeadLetter> = match ids {
        Some(ids) if ids.len() > MAX_REDRIVE => {
            return Err(ApiError::invalid(
                "too_many_ids",
                format!("redrive at most {MAX_REDRIVE} dead letters a call"),
            ));
        }
        Some(ids) => {
            let mut found = Vec::new();
            let mut ids = ids;
            ids.sort();
            ids.dedup();
            for id in ids {
                if !crate::ids::looks_like(&id, "dl") {
                    return Err(ApiError::not_found(&format!("dead letter {id}")));
                }
                match p.store.get(&keys::dead_letter(&a, &id)).await? {
                    Some(item) => found.push(item),
                    None => return Err(ApiError::not_found(&format!("dead letter {id}"))),
                }
            }
            decode(found)?
        }
        None => {
            let mut query = StoreQuery::new(keys::dead_letters(&a), "");
            query.limit = MAX_REDRIVE;
            decode(p.store.query(query).await?.items)?
        }
    };
    let mut results = Vec::new();
    for letter in letters {
        let outcome = send_again(&p, &a, &letter).await?;
        p.store
            .delete(&keys::dead_letter(&a, &letter.id), Cond::Any)
            .await?;
        results.push(json!({"id": letter.id, "outcome": outcome}));
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"data": results}))))
}

/// What became of one redriven dead letter: `queued`, or `dropped` when
/// there is nothing left to apply (its request or trigger was deleted, or
/// the request was applied since).
async fn send_again(p: &Platform, a: &str, letter: &DeadLetter) -> Result<&'static str, ApiError> {
    if let (Some(trigger), Some(request)) = (&letter.trigger_id, &letter.request_id) {
        match crate::triggers::routes::send_again(p, a.to_string(), trigger.clone(), request).await
        {
            Ok(_) => return Ok("queued"),
            // The log lost its payload: the dead letter still has it, below.
            Err(e) if e.code == "payload_not_kept" => {}
            // Applied since: nothing to do.
            Err(e) if e.status == StatusCode::CONFLICT => return Ok("dropped"),
            // No record (or no trigger): sent as it was, below; applying
            // drops it if its trigger is gone.
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    match &letter.message {
        Some(body) => {
            p.apply_queue
                .send(body.clone(), std::time::Duration::ZERO)
                .await?;
            Ok("queued")
        }
        None => Ok("dropped"),
    }
}

/// Deletes every dead letter of the account, page by page for up to 10 s;
/// 204 when none is left, 202 when more remain (call again).
async fn purge(State(p): P, Account(a): Account) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let progress = crate::ports::store::clear_partition(
        &*p.store,
        &keys::dead_letters(&a),
        std::time::Duration::from_secs(10),
    )
    .await?;
    Ok(match progress {
        crate::ports::store::Progress::Done => StatusCode::NO_CONTENT.into_response(),
        crate::ports::store::Progress::More => (
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
    let key = keys::dead_letter(&a, &id);
    if !crate::ids::looks_like(&id, "dl") || p.store.get(&key).await?.is_none() {
        return Err(ApiError::not_found(&format!("dead letter {id}")));
    }
    p.store.delete(&key, Cond::Any).await?;
    Ok(StatusCode::NO_CONTENT)
}
