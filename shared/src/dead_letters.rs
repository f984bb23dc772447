//! Dead letters: queue messages a worker gave up on, kept in the store with
//! their reason and attempts until they are redriven or deleted. Not in a
//! dead-letter queue: SQS keeps a message 14 days at most, and an operator
//! must be able to see and redrive them on both hosts alike.
//!
//! `GET /v1/dead-letters`, `POST /v1/dead-letters/redrive` (all, or
//! `{"ids": [...]}`), `DELETE /v1/dead-letters/{id}`, `DELETE
//! /v1/dead-letters` (all).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Platform;
use crate::error::{Error, Result};
use crate::ids::{CampaignId, DeadLetterId, RequestId, TriggerId, WebhookId};
use crate::keys;
use crate::messages::{ApplyMessage, CampaignMessage, Delivery};
use crate::ports::{Cond, Page, Put, Query, StoreError};

/// The most of a message's text kept when it cannot be read (for a look;
/// such a message cannot be redriven into anything but the same failure).
const MAX_UNREADABLE: usize = 16 * 1024;
/// Dead letters one redrive call moves at most; call again for the rest.
pub const MAX_REDRIVE: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    /// The queue it died on: `apply`, `delivery` or `campaigns`.
    pub queue: String,
    /// What the message was: `inbound` (a request to a trigger URL),
    /// `delivery` (an event to a webhook), `fan_out`, `purge`,
    /// `purge_trigger_log`, `purge_webhook`, `purge_account`,
    /// `purge_campaign`, `campaign_segment`, `campaign_batch`, or `unreadable`.
    pub kind: String,
    pub reason: String,
    /// Times it was received before it was given up on.
    pub attempts: u32,
    pub dead_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<TriggerId>,
    /// An inbound request's id: its request log says what became of it,
    /// and redriving it replays it from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// A delivery's webhook: redriving it delivers again (from attempt 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<WebhookId>,
    /// A delivery's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// A campaign run's segment or batch: redriving it does it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
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
    let id = DeadLetterId::new();
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
        Some(ApplyMessage::PurgeAccount { .. }) => (
            // No tenant's: the account is being removed, and others must
            // not learn of it. Repeating the DELETE sends the purge again.
            keys::NO_ACCOUNT.to_string(),
            "purge_account",
            None,
            None,
            Some(body.to_string()),
        ),
        Some(ApplyMessage::FanOut { account, .. }) => (
            account.clone(),
            "fan_out",
            None,
            None,
            Some(body.to_string()),
        ),
        Some(ApplyMessage::PurgeCampaign { account, .. }) => (
            account.clone(),
            "purge_campaign",
            None,
            None,
            Some(body.to_string()),
        ),
        Some(ApplyMessage::PurgeWebhook { account, .. }) => (
            account.clone(),
            "purge_webhook",
            None,
            None,
            Some(body.to_string()),
        ),
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
        None => return keep_unreadable(platform, "apply", body, reason).await,
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
        webhook_id: None,
        event_id: None,
        campaign_id: None,
        message,
    };
    keep(platform, &account, letter).await
}

/// Keeps a message no one can read, under no account, with the start of its text.
pub async fn keep_unreadable(
    platform: &Platform,
    queue: &str,
    body: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let mut end = body.len().min(MAX_UNREADABLE);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let letter = DeadLetter {
        id: DeadLetterId::new(),
        queue: queue.into(),
        kind: "unreadable".into(),
        reason: reason.into(),
        attempts: 0,
        dead_at: platform.clock.now(),
        trigger_id: None,
        request_id: None,
        webhook_id: None,
        event_id: None,
        campaign_id: None,
        message: Some(body[..end].to_string()),
    };
    keep(platform, keys::NO_ACCOUNT, letter).await
}

/// Keeps a delivery given up on (attempts used up, its webhook disabled
/// or inactive, its payload impossible to make). Redriving it delivers it
/// again from its first attempt.
pub async fn keep_delivery(
    platform: &Platform,
    d: &Delivery,
    reason: &str,
) -> Result<(), StoreError> {
    let letter = DeadLetter {
        id: DeadLetterId::new(),
        queue: "delivery".into(),
        kind: "delivery".into(),
        reason: reason.into(),
        attempts: d.attempt,
        dead_at: platform.clock.now(),
        trigger_id: None,
        request_id: None,
        webhook_id: Some(d.webhook_id.clone()),
        event_id: d
            .event
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        campaign_id: None,
        message: Some(d.encode()),
    };
    keep(platform, &d.account, letter).await
}

/// Keeps a message of the campaign queue as a dead letter.
pub async fn keep_campaign(
    platform: &Platform,
    m: &CampaignMessage,
    reason: &str,
    attempts: u32,
) -> Result<(), StoreError> {
    let (kind, campaign) = match m {
        CampaignMessage::Segment { campaign_id, .. } => ("campaign_segment", campaign_id),
        CampaignMessage::Batch { campaign_id, .. } => ("campaign_batch", campaign_id),
    };
    let letter = DeadLetter {
        id: DeadLetterId::new(),
        queue: "campaigns".into(),
        kind: kind.into(),
        reason: reason.into(),
        attempts,
        dead_at: platform.clock.now(),
        trigger_id: None,
        request_id: None,
        webhook_id: None,
        event_id: None,
        campaign_id: Some(campaign.clone()),
        message: Some(m.encode()),
    };
    keep(platform, m.account(), letter).await
}

async fn keep(platform: &Platform, account: &str, letter: DeadLetter) -> Result<(), StoreError> {
    let key = keys::dead_letter(account, &letter.id);
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

fn decode(items: Vec<crate::ports::Item>) -> Result<Vec<DeadLetter>> {
    crate::error::decoded(items, "decode dead letter")
}

/// The account's dead letters, newest first, and the cursor of the rest.
pub async fn page(
    p: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<DeadLetter>, Option<String>)> {
    let mut query = Query::new(keys::dead_letters(account), "");
    query.limit = limit;
    query.cursor = cursor;
    query.reverse = true;
    let Page { items, next_cursor } = p.store.query(query).await?;
    Ok((decode(items)?, next_cursor))
}

/// What became of one redriven dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Redriven {
    Queued,
    /// Nothing was left to apply: its request or trigger was deleted, or
    /// the request was applied since.
    Dropped,
}

/// Sends dead letters to be applied again and removes them: an inbound
/// request is replayed from its request log (as a replay does), other
/// messages are queued again as they were. `ids` names them (at most
/// `MAX_REDRIVE`); without, the oldest `MAX_REDRIVE`. Answers what became
/// of each.
pub async fn redrive(
    p: &Platform,
    account: &str,
    ids: Option<Vec<DeadLetterId>>,
) -> Result<Vec<(DeadLetterId, Redriven)>> {
    let letters: Vec<DeadLetter> = match ids {
        Some(ids) if ids.len() > MAX_REDRIVE => {
            return Err(Error::invalid(
                "too_many_ids",
                format!("redrive at most {MAX_REDRIVE} dead letters a call"),
            ));
        }
        Some(mut ids) => {
            let mut found = Vec::new();
            ids.sort();
            ids.dedup();
            for id in ids {
                match p.store.get(&keys::dead_letter(account, &id)).await? {
                    Some(item) => found.push(item),
                    None => return Err(Error::not_found(&format!("dead letter {id}"))),
                }
            }
            decode(found)?
        }
        None => {
            let mut query = Query::new(keys::dead_letters(account), "");
            query.limit = MAX_REDRIVE;
            decode(p.store.query(query).await?.items)?
        }
    };
    let mut results = Vec::new();
    for letter in letters {
        let outcome = send_again(p, account, &letter).await?;
        p.store
            .delete(&keys::dead_letter(account, &letter.id), Cond::Any)
            .await?;
        results.push((letter.id, outcome));
    }
    Ok(results)
}

async fn send_again(p: &Platform, account: &str, letter: &DeadLetter) -> Result<Redriven> {
    if let (Some(trigger), Some(request)) = (&letter.trigger_id, &letter.request_id) {
        match crate::triggers::requests::replay(p, account, trigger, request).await {
            Ok(_) => return Ok(Redriven::Queued),
            // The log lost its payload: the dead letter still has it, below.
            Err(e) if e.code() == "payload_not_kept" => {}
            // Applied since: nothing to do.
            Err(Error::Conflict { .. }) => return Ok(Redriven::Dropped),
            // No record (or no trigger): sent as it was, below; applying
            // drops it if its trigger is gone.
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    match &letter.message {
        Some(body) if letter.queue == "delivery" => {
            // Delivered again from its first attempt, with its webhook as it is now.
            let Ok(mut d) = serde_json::from_str::<Delivery>(body) else {
                return Ok(Redriven::Dropped);
            };
            d.attempt = 1;
            d.first_queued_at = p.clock.now();
            d.pending_logged = false;
            d.not_before = None;
            p.delivery_queue
                .send(d.encode(), std::time::Duration::ZERO)
                .await?;
            Ok(Redriven::Queued)
        }
        Some(body) if letter.queue == "campaigns" => {
            p.campaign_queue
                .send(body.clone(), std::time::Duration::ZERO)
                .await?;
            Ok(Redriven::Queued)
        }
        Some(body) => {
            p.apply_queue
                .send(body.clone(), std::time::Duration::ZERO)
                .await?;
            Ok(Redriven::Queued)
        }
        None => Ok(Redriven::Dropped),
    }
}

/// Deletes the account's dead letters, page by page for up to 10 s.
pub async fn purge(p: &Platform, account: &str) -> Result<crate::ports::store::Progress> {
    Ok(crate::ports::store::clear_partition(
        &*p.store,
        &keys::dead_letters(account),
        std::time::Duration::from_secs(10),
    )
    .await?)
}

/// Deletes one dead letter of the account.
pub async fn remove(p: &Platform, account: &str, id: &DeadLetterId) -> Result<()> {
    let key = keys::dead_letter(account, id);
    if p.store.get(&key).await?.is_none() {
        return Err(Error::not_found(&format!("dead letter {id}")));
    }
    p.store.delete(&key, Cond::Any).await?;
    Ok(())
}
