//! What the API answers, apart from what the store keeps: a stored document
//! may carry fields for the domain alone (a contact's
//! `changed_by_request_at`, a trigger's key hash), which never reach users.
//! Each type here is also its schema in `GET /openapi.json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::collections::Collection;
use crate::contacts::{Contact, Identifier};
use crate::ids::{RequestId, TriggerId};
use crate::triggers::pipeline::{ActionOutcome, RequestRecord, Status};
use crate::triggers::{Action, Trigger};

/// A page of a list route: pass `next_cursor` as `?cursor=` for the next
/// one; `null` on the last.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, next_cursor: Option<String>) -> Self {
        Self { data, next_cursor }
    }
}

/// A contact list or a sequence.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Collection)]
pub struct CollectionView<'a> {
    /// `lst_...` for a list, `seq_...` for a sequence.
    pub id: &'a str,
    pub name: &'a str,
    pub created_at: DateTime<Utc>,
}

impl<'a> From<&'a Collection> for CollectionView<'a> {
    fn from(c: &'a Collection) -> Self {
        Self {
            id: &c.id,
            name: &c.name,
            created_at: c.created_at,
        }
    }
}

/// A contact, as answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Contact)]
pub struct ContactView<'a> {
    pub id: &'a str,
    #[schema(required = true)]
    pub email: Option<&'a str>,
    /// Digits with the country code.
    #[schema(required = true)]
    pub phone_number: Option<&'a str>,
    #[schema(required = true)]
    pub name: Option<&'a str>,
    #[schema(required = true)]
    pub first_name: Option<&'a str>,
    #[schema(required = true)]
    pub last_name: Option<&'a str>,
    /// Every other field the transforms set.
    #[schema(value_type = Object)]
    pub fields: &'a Map<String, Value>,
    /// Ids of the lists it is in.
    #[schema(value_type = Vec<String>)]
    pub lists: &'a [String],
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> From<&'a Contact> for ContactView<'a> {
    fn from(c: &'a Contact) -> Self {
        Self {
            id: &c.id,
            email: c.email.as_deref(),
            phone_number: c.phone_number.as_deref(),
            name: c.name.as_deref(),
            first_name: c.first_name.as_deref(),
            last_name: c.last_name.as_deref(),
            fields: &c.fields,
            lists: &c.lists,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Where a contact is in a sequence.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Stopped,
}

/// A contact in a sequence: who, and where they are in it (read from the
/// member record, which also keeps what only the domain reads).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SequenceMember {
    pub contact_id: String,
    #[schema(required = true)]
    #[serde(default)]
    pub email: Option<String>,
    #[schema(required = true)]
    #[serde(default)]
    pub phone_number: Option<String>,
    #[schema(required = true)]
    #[serde(default)]
    pub name: Option<String>,
    pub status: MemberStatus,
    pub added_at: DateTime<Utc>,
    #[schema(required = true)]
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A trigger, as answered: everything but its key's hash, and its URL.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Trigger)]
pub struct TriggerView<'a> {
    #[schema(value_type = TriggerId)]
    pub id: &'a TriggerId,
    pub name: &'a str,
    /// Where external systems post: `<base>/hooks/<id>`.
    pub url: String,
    pub identifier: Identifier,
    #[schema(required = true)]
    pub transform: Option<&'a str>,
    #[schema(value_type = Vec<Action>)]
    pub actions: &'a [Action],
    pub require_api_key: bool,
    /// An inactive trigger's URL answers 404.
    pub active: bool,
    /// The API key: only in the answer that made it (create, rotate-key).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub api_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> TriggerView<'a> {
    pub fn new(t: &'a Trigger, base_url: &str) -> Self {
        Self {
            id: &t.id,
            name: &t.name,
            url: format!("{base_url}/hooks/{}", t.id),
            identifier: t.identifier,
            transform: t.transform.as_deref(),
            actions: &t.actions,
            require_api_key: t.require_api_key,
            active: t.active,
            api_key: None,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// One request of a trigger's request log, as answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TriggerRequest)]
pub struct RequestView<'a> {
    #[schema(value_type = RequestId)]
    pub id: &'a RequestId,
    #[schema(value_type = TriggerId)]
    pub trigger_id: &'a TriggerId,
    pub received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub status: Status,
    /// Why it failed, for a person to act on.
    #[schema(required = true)]
    pub reason: Option<&'a str>,
    #[schema(required = true)]
    pub contact: Option<ContactView<'a>>,
    pub contact_created: bool,
    #[schema(value_type = Vec<ActionOutcome>)]
    pub actions: &'a [ActionOutcome],
    pub attempts: u32,
    #[schema(required = true)]
    pub idempotency_key: Option<&'a str>,
    #[schema(value_type = Object)]
    pub payload: &'a Map<String, Value>,
    /// The payload was too large to keep beside the rest: it cannot be replayed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub payload_omitted: bool,
}

impl<'a> From<&'a RequestRecord> for RequestView<'a> {
    fn from(r: &'a RequestRecord) -> Self {
        Self {
            id: &r.id,
            trigger_id: &r.trigger_id,
            received_at: r.received_at,
            processed_at: r.processed_at,
            status: r.status,
            reason: r.reason.as_deref(),
            contact: r.contact.as_ref().map(ContactView::from),
            contact_created: r.contact_created,
            actions: &r.actions,
            attempts: r.attempts,
            idempotency_key: r.idempotency_key.as_deref(),
            payload: &r.payload,
            payload_omitted: r.payload_omitted,
        }
    }
}
