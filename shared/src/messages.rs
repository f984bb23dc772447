//! The messages of each queue: plain types, with no domain code. The
//! domain sends them; one dispatcher per queue (`apply::ApplyHandler` for
//! the apply queue) receives them and calls the domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Platform;
use crate::ids::{CampaignId, RequestId, RunId, TriggerId, WebhookId};
use crate::ports::QueueError;

/// Which collection: a list or a sequence (`collections::Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionKind {
    List,
    Sequence,
}

/// A request accepted at a trigger URL, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    pub account: String,
    pub trigger_id: TriggerId,
    pub request_id: RequestId,
    pub received_at: DateTime<Utc>,
    pub payload: Map<String, Value>,
    pub idempotency_key: Option<String>,
    /// The body's SHA-256 when it came with an `Idempotency-Key`: applying
    /// the request marks the key queued with it, should ingest not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    /// 1, then one more for each replay.
    pub attempt: u32,
}

/// The apply queue's messages: work accepted by the HTTP faces and done
/// after answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApplyMessage {
    /// A request to a trigger URL, accepted and waiting to be applied.
    Inbound(Inbound),
    /// An event published into the account, matched against its webhooks
    /// from `after` (a cursor of its webhooks; `None`: from the first) on:
    /// each page's deliveries are queued, then the rest of the fan-out as a
    /// message of its own.
    FanOut {
        account: String,
        event: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Remove the members of a deleted list or sequence.
    Purge {
        kind: CollectionKind,
        account: String,
        id: String,
    },
    /// Remove the request log of a deleted trigger.
    PurgeTriggerLog {
        account: String,
        trigger_id: TriggerId,
    },
    /// Remove the attempt log of a deleted webhook.
    PurgeWebhook {
        account: String,
        webhook_id: WebhookId,
    },
    /// Remove the users, runs and attempt log of a deleted campaign.
    PurgeCampaign {
        account: String,
        campaign_id: CampaignId,
    },
    /// Remove everything of a deleted account, then the account.
    PurgeAccount { account: String },
}

/// A message as JSON that SQS takes: SQS refuses U+FFFE and U+FFFF,
/// which serde_json writes as they are, so they go escaped (they can only
/// be inside strings, where `\uffff` means the same).
fn encode(message: &impl Serialize) -> String {
    let json = serde_json::to_string(message).expect("queue messages serialise");
    if json.contains(['\u{fffe}', '\u{ffff}']) {
        json.replace('\u{fffe}', "\\ufffe")
            .replace('\u{ffff}', "\\uffff")
    } else {
        json
    }
}

impl ApplyMessage {
    pub fn encode(&self) -> String {
        encode(self)
    }

    /// Queues the message to be applied now.
    pub async fn send(&self, platform: &Platform) -> Result<String, QueueError> {
        platform
            .apply_queue
            .send(self.encode(), std::time::Duration::ZERO)
            .await
    }
}

/// One delivery of an event to one webhook: the message of the delivery
/// queue, sent again (with `attempt` one more) for each attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub account: String,
    pub webhook_id: WebhookId,
    /// The event as published (its `id`, `event` and `timestamp` included).
    pub event: Map<String, Value>,
    /// 1 on the first attempt.
    pub attempt: u32,
    /// When the first attempt was queued.
    pub first_queued_at: DateTime<Utc>,
    /// A `send_message` action's rendered text, sent instead of a payload
    /// made of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether a `pending` record was written for it (it waited on the
    /// webhook's rate limit or its account): once is enough.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_logged: bool,
    /// The slot it holds under its webhook's rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

impl Delivery {
    pub fn encode(&self) -> String {
        encode(self)
    }
}

/// The campaign queue's messages: a run's work, in parts that each end
/// well within a Lambda invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CampaignMessage {
    /// Match one segment of the account's profiles from `after` (a cursor;
    /// `None`: from the first) on: one page, then the rest as a message of
    /// its own.
    Segment {
        account: String,
        campaign_id: CampaignId,
        run_id: RunId,
        segment: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Users the segment's pages before claimed and did not fill a
        /// batch of 50 with (fewer than 50).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        carry: Vec<String>,
    },
    /// Post these users (claimed by the run) to the campaign's URL.
    Batch {
        account: String,
        campaign_id: CampaignId,
        run_id: RunId,
        users: Vec<String>,
    },
}

impl CampaignMessage {
    pub fn encode(&self) -> String {
        encode(self)
    }

    pub fn account(&self) -> &str {
        match self {
            Self::Segment { account, .. } | Self::Batch { account, .. } => account,
        }
    }
}
