//! The attempt log of each webhook: every attempt, what came back and
//! what happens next; kept `Settings::attempt_retention` (30 days).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Platform;
use crate::error::Error;
use crate::ids::{AttemptId, WebhookId};
use crate::keys;
use crate::ports::{Put, Query, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A 2xx came back.
    Succeeded,
    /// It failed; `next_attempt_at` says when the next goes (none for a test).
    Failed,
    /// Not attempted yet: waiting on the webhook's rate limit, on its
    /// account (suspended), or on its endpoint (failing: one call at a time).
    Pending,
    /// Failed with no attempt left, or the webhook was disabled: kept as a
    /// dead letter, to be redriven.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub id: AttemptId,
    pub webhook_id: WebhookId,
    pub event_id: String,
    /// The event's type.
    pub event: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: u32,
    pub status: Status,
    #[schema(required = true)]
    pub response_status: Option<u16>,
    pub duration_ms: u64,
    /// The first 16 KiB of the answer, when the webhook logs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Why it failed when no answer says it (refused, timed out, reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// Sent by the test button.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Writes an attempt into its webhook's log.
pub async fn record(p: &Platform, account: &str, a: &Attempt) -> Result<(), StoreError> {
    let expires = a.at
        + chrono::Duration::from_std(p.settings.attempt_retention)
            .unwrap_or(chrono::Duration::days(30));
    let body = serde_json::to_value(a).expect("serialisable");
    let put = Put::new(keys::attempt(account, &a.webhook_id, &a.id), body).expires(expires);
    match p.store.put(put.clone()).await {
        // A body too odd for the store (its size is bounded): kept without it.
        Err(StoreError::TooLarge(_)) => {
            let mut lean = a.clone();
            lean.response_body = Some("(not kept: the store refused it)".into());
            p.store
                .put(Put {
                    body: serde_json::to_value(&lean).expect("serialisable"),
                    ..put
                })
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}

/// The webhook's attempts, newest first, and the cursor of the rest.
pub async fn page(
    p: &Platform,
    account: &str,
    webhook: &WebhookId,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Attempt>, Option<String>), Error> {
    let mut query = Query::new(keys::attempts(account, webhook), "");
    query.limit = limit;
    query.cursor = cursor;
    query.reverse = true;
    let page = p.store.query(query).await?;
    Ok((
        crate::error::decoded(page.items, "decode attempt")?,
        page.next_cursor,
    ))
}
