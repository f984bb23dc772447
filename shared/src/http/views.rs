//! What the API answers, apart from what the store keeps: a stored document
//! may carry fields for the domain alone (a contact's
//! `changed_by_request_at`), which never reach users.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::contacts::Contact;
use crate::triggers::pipeline::{ActionOutcome, RequestRecord, Status};

/// A contact, as answered.
#[derive(Debug, Serialize)]
pub struct ContactView<'a> {
    pub id: &'a str,
    pub email: Option<&'a str>,
    pub phone_number: Option<&'a str>,
    pub name: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub fields: &'a Map<String, Value>,
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

/// One request of a trigger's request log, as answered.
#[derive(Debug, Serialize)]
pub struct RequestView<'a> {
    pub id: &'a str,
    pub trigger_id: &'a str,
    pub received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub status: Status,
    pub reason: Option<&'a str>,
    pub contact: Option<ContactView<'a>>,
    pub contact_created: bool,
    pub actions: &'a [ActionOutcome],
    pub attempts: u32,
    pub idempotency_key: Option<&'a str>,
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
