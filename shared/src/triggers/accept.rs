//! Accepting a request to a trigger URL: the trigger found and the
//! caller's API key checked, then the payload queued durably (once per
//! `Idempotency-Key`). The work on the payload happens after, in `pipeline`.

use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::Trigger;
use super::idempotency::{Claim, claim_key, mark_queued};
use crate::Platform;
use crate::error::{Error, Result};
use crate::ids::{RequestId, TriggerId};
use crate::messages::ApplyMessage;
use crate::messages::Inbound;
use crate::ports::Cond;
use serde_json::{Map, Value};

/// The active trigger with this id, once the caller has shown its API key
/// (`api_key`, when the trigger requires one).
pub async fn admit(p: &Platform, id: &TriggerId, api_key: Option<&str>) -> Result<Arc<Trigger>> {
    let Some(trigger) = super::find_for_ingest(p, id).await?.filter(|t| t.active) else {
        return Err(Error::NotFound("no active trigger has this URL".into()));
    };
    if trigger.require_api_key {
        let key = api_key.ok_or_else(|| {
            Error::unauthorized(
                "this trigger requires its API key: send Authorization: Bearer <api_key>",
            )
        })?;
        let given = super::sha256_hex(key);
        match trigger.api_key_sha256.as_deref() {
            Some(want) if bool::from(want.as_bytes().ct_eq(given.as_bytes())) => {}
            _ => return Err(Error::unauthorized("the API key is not this trigger's")),
        }
    }
    Ok(trigger)
}

/// Queues `payload` for `trigger`, durably; answers the request's id (the
/// first request's, for a repeat of one sent with the same
/// `idempotency_key` and `body`).
pub async fn queue(
    p: &Platform,
    trigger: &Trigger,
    payload: Map<String, Value>,
    idempotency_key: Option<String>,
    body: &[u8],
) -> Result<String> {
    let request_id = RequestId::new();
    let claim = match &idempotency_key {
        Some(k) => {
            let hash = super::sha256_hex_bytes(body);
            match claim_key(p, &trigger.id, k, &request_id, &hash).await? {
                Claim::Ours(key, version) => Some((key, version, hash)),
                Claim::Repeat(first) => return Ok(first),
            }
        }
        None => None,
    };
    let message = ApplyMessage::Inbound(Inbound {
        account: trigger.account.clone(),
        trigger_id: trigger.id.clone(),
        request_id: request_id.clone(),
        received_at: p.clock.now(),
        payload,
        idempotency_key,
        body_sha256: claim.as_ref().map(|(_, _, hash)| hash.clone()),
        attempt: 1,
    });
    if let Err(e) = message.send(p).await {
        // Not accepted: release our claim so that the client's retry is accepted.
        if let Some((key, version, _)) = &claim {
            let _ = p.store.delete(key, Cond::Version(*version)).await;
        }
        return Err(e.into());
    }
    if let Some((key, version, hash)) = claim {
        let now = p.clock.now();
        if let Err(e) = mark_queued(p, key, Cond::Version(version), &request_id, &hash, now).await {
            // The request is queued; applying it marks the key (`settle_key`).
            tracing::warn!(error = %e, "could not mark an idempotency key queued");
        }
    }
    Ok(request_id.to_string())
}
