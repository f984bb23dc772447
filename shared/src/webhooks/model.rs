//! A webhook as stored, and as created or changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::WebhookId;
use crate::patch::Patch;

/// Event types a webhook may subscribe to without a trigger publishing
/// them: Mumara's email events, and Hookline's own operational event.
pub const EVENT_TYPES: [&str; 11] = [
    "received",
    "delivered",
    "bounced",
    "rejected",
    "delayed",
    "newsletter_opened",
    "newsletter_clicked",
    "transactional_opened",
    "transactional_clicked",
    "complaint",
    DISABLED_EVENT,
];

/// An event type's name: 1 to 64 of a-z, 0-9, `_`, `.` or `-`.
pub fn check_event_name(event: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&event.len())
        && event.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "event {event:?} must be 1 to 64 of a-z, 0-9, _, . or -"
        ))
    }
}

/// The largest event, as JSON.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Published when a webhook is disabled by a 410 or by failing too long.
pub const DISABLED_EVENT: &str = "webhook.disabled";

/// The event fields a filter may match.
pub const FILTER_KEYS: [&str; 5] = [
    "sending_domain",
    "sending_node",
    "bridge",
    "dedicated_ip",
    "campaign_id",
];

/// Pushover's sounds (its API names), as the seed lists them.
pub const SOUNDS: [&str; 23] = [
    "pushover",
    "bike",
    "bugle",
    "cashregister",
    "classical",
    "cosmic",
    "falling",
    "gamelan",
    "incoming",
    "intermission",
    "magic",
    "mechanical",
    "pianobar",
    "siren",
    "spacealarm",
    "tugboat",
    "alien",
    "climb",
    "persistent",
    "echo",
    "updown",
    "vibrate",
    "none",
];

pub(super) const MAX_EVENTS: usize = 50;
pub(super) const MAX_FILTER_VALUES: usize = 100;
pub(super) const MAX_MAPPINGS: usize = 100;
pub(super) const MAX_URL: usize = 2048;
pub(super) const MAX_CREDENTIAL: usize = 512;
/// A per-webhook rate limit: deliveries a second.
pub(super) const MAX_RATE: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Method {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    Json,
    Form,
}

/// How a web endpoint is called, credentials included (never answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Channel {
    Web {
        url: String,
        method: Method,
        content_type: ContentType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        basic_auth: Option<BasicAuth>,
    },
    Pushover {
        user_key: String,
        api_token: String,
        sound: String,
    },
    Twilio {
        account_sid: String,
        auth_token: String,
        from: String,
        /// The event field holding the number to text.
        to_field: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// A signing secret; after a rotation the old one signs too until it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// `whsec_` and base64 of the key's bytes (the Standard Webhooks form).
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Values within a filter are ORed, filters ANDed; an empty one matches any.
pub type Filters = std::collections::BTreeMap<String, Vec<String>>;

/// One field of a custom payload: from an event field, or a static value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Where the value goes in the body sent: a name, or a dotted path.
    pub field: String,
    /// The event field to take it from (a dotted path for nested fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A static value instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// What is sent: absent means the standard event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappings: Option<Vec<Mapping>>,
    /// CEL lines over the event, as in triggers; targets are dotted paths
    /// in the body sent (`text = "Bounce: " + email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

/// Why a webhook stopped being called without anyone asking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub account: String,
    pub name: String,
    pub channel: Channel,
    pub events: Vec<String>,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    pub log_response_body: bool,
    pub active: bool,
    /// Newest first; empty when requests are not signed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// The secrets that sign at `now`.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| s.value.as_str())
    }

    /// The basic-auth password of a web channel, if it has one.
    pub fn channel_password(&self) -> Option<&str> {
        match &self.channel {
            Channel::Web {
                basic_auth: Some(a),
                ..
            } => Some(&a.password),
            _ => None,
        }
    }

    /// `active`, `inactive`, or `disabled` (by a 410 or by failing too long).
    pub fn status(&self) -> &'static str {
        match (self.active, &self.disabled) {
            (true, _) => "active",
            (false, Some(_)) => "disabled",
            (false, None) => "inactive",
        }
    }
}

/// How a webhook's endpoint fares, kept apart from the webhook (written
/// by deliveries, so that they never race a user's edit): absent while it
/// works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The first failure of the current streak.
    pub failing_since: DateTime<Utc>,
    /// The latest failure, to within a minute: a streak whose last failure
    /// is older than the longest retry step has ended.
    pub last_failure_at: DateTime<Utc>,
}

/// A channel as given: every field of every type, checked by `validation`
/// so that each error names its field.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// `web`, `pushover` or `twilio`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(web|pushover|twilio)$")]
    pub kind: String,
    /// web: the endpoint; https unless private targets are allowed.
    pub url: Option<String>,
    /// web: `POST` (the default) or `GET` (the payload as query parameters).
    #[schema(pattern = "^(POST|GET)$")]
    pub method: Option<String>,
    /// web: `json` (the default) or `form`.
    #[schema(pattern = "^(json|form)$")]
    pub content_type: Option<String>,
    /// web: `{"type": "none"}` or `{"type": "basic", "username", "password"}` (POST only).
    pub auth: Option<AuthInput>,
    /// web: signs each request (Standard Webhooks). On update an absent,
    /// empty or blank secret keeps the current one; `null` removes it.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<String>)]
    pub secret: Patch<String>,
    /// pushover: the user (or group) key.
    pub user_key: Option<String>,
    /// pushover: the application's API token (kept on update when absent).
    pub api_token: Option<String>,
    /// pushover: one of Pushover's sounds (`pushover` when absent).
    pub sound: Option<String>,
    /// twilio: the account SID.
    pub account_sid: Option<String>,
    /// twilio: the auth token (kept on update when absent).
    pub auth_token: Option<String>,
    /// twilio: the number messages come from.
    pub from: Option<String>,
    /// twilio: the event field holding the number to text (`phone_number` when absent).
    pub to_field: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthInput {
    /// `none` or `basic`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(none|basic)$")]
    pub kind: String,
    pub username: Option<String>,
    /// Kept on update when absent.
    pub password: Option<String>,
}

/// `POST /v1/webhooks`
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    #[schema(pattern = r"\S", max_length = 200)]
    pub name: String,
    pub channel: ChannelInput,
    /// Event types: Mumara's (`delivered`, `newsletter_opened`...),
    /// `webhook.disabled`, or one a trigger of the account publishes.
    pub events: Vec<String>,
    /// `sending_domain`, `sending_node`, `bridge`, `dedicated_ip`,
    /// `campaign_id`: each a list of values (strings or numbers).
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    pub payload: Option<PayloadSpec>,
    /// Deliveries a second at most; bursts wait their turn.
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<u32>,
    pub log_response_body: Option<bool>,
    pub active: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: absent fields are kept.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[schema(pattern = r"\S", max_length = 200)]
    pub name: Option<String>,
    /// The whole channel; credentials left out are kept when the type stays.
    pub channel: Option<ChannelInput>,
    pub events: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    /// `null` goes back to the standard payload.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<PayloadSpec>)]
    pub payload: Patch<PayloadSpec>,
    /// `null` removes the limit.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub rate_limit: Patch<u32>,
    pub log_response_body: Option<bool>,
    pub active: Option<bool>,
}
