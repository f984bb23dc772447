//! A trigger's request log: every request accepted, with its outcome, for
//! the retention; listing, reading, and replaying a failed one.

use super::pipeline::{RequestRecord, Status};
use crate::Platform;
use crate::error::{Error, Result};
use crate::ids::{RequestId, TriggerId};
use crate::keys;
use crate::messages::ApplyMessage;
use crate::messages::Inbound;
use crate::ports::{Page, Query};

/// The account's trigger's requests, newest first.
pub async fn page(
    p: &Platform,
    account: &str,
    id: &TriggerId,
    limit: usize,
    cursor: Option<String>,
) -> Result<Page> {
    super::get(p, account, id).await?;
    let mut query = Query::new(keys::trigger_requests(account, id), "");
    query.limit = limit;
    query.cursor = cursor;
    query.reverse = true;
    Ok(p.store.query(query).await?)
}

/// One request of the account's trigger.
pub async fn load(
    p: &Platform,
    account: &str,
    id: &TriggerId,
    request_id: &RequestId,
) -> Result<RequestRecord> {
    super::get(p, account, id).await?;
    let item = p
        .store
        .get(&keys::trigger_request(account, id, request_id))
        .await?;
    let item = item.ok_or_else(|| Error::not_found("request"))?;
    serde_json::from_value(item.body).map_err(|e| Error::internal("decode request", e))
}

/// Queues a failed request to be applied again, with the trigger as it is
/// now (a replay, a redriven dead letter); answers its id and the attempt
/// it will be.
pub async fn replay(
    p: &Platform,
    account: &str,
    id: &TriggerId,
    request_id: &RequestId,
) -> Result<(RequestId, u32)> {
    let record = load(p, account, id, request_id).await?;
    if record.status != Status::Failed {
        return Err(Error::conflict(
            "not_failed",
            "only a failed request can be replayed; this one was applied",
        ));
    }
    if record.payload_omitted {
        return Err(Error::conflict(
            "payload_not_kept",
            "the payload was too large to keep in the request log, so it cannot be replayed; have its sender send it again",
        ));
    }
    let attempt = record.attempts + 1;
    let message = ApplyMessage::Inbound(Inbound {
        account: account.to_string(),
        trigger_id: id.clone(),
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
