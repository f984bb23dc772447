//! A trigger and its actions, as stored and as created or updated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::collections::Kind;
use crate::contacts::Identifier;
use crate::ids::TriggerId;

pub const ID_PREFIX: &str = "trg";
pub(super) const MAX_ACTIONS: usize = 20;
pub(super) const MAX_TEMPLATE: usize = 1600;
pub(super) const MAX_TRANSFORM: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    AddToList {
        list_id: String,
    },
    AddToSequence {
        sequence_id: String,
    },
    StopSequence {
        sequence_id: String,
    },
    UpdateContact {},
    SendMessage {
        webhook_id: String,
        template: String,
    },
    PublishEvent {
        event: String,
    },
}

impl Action {
    /// The list or sequence the action works on, if it works on one.
    pub fn collection(&self) -> Option<(Kind, &str)> {
        match self {
            Action::AddToList { list_id } => Some((Kind::List, list_id)),
            Action::AddToSequence { sequence_id } | Action::StopSequence { sequence_id } => {
                Some((Kind::Sequence, sequence_id))
            }
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::AddToList { .. } => "add_to_list",
            Action::AddToSequence { .. } => "add_to_sequence",
            Action::StopSequence { .. } => "stop_sequence",
            Action::UpdateContact {} => "update_contact",
            Action::SendMessage { .. } => "send_message",
            Action::PublishEvent { .. } => "publish_event",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trigger {
    pub id: TriggerId,
    pub account: String,
    pub name: String,
    pub identifier: Identifier,
    pub transform: Option<String>,
    pub actions: Vec<Action>,
    pub require_api_key: bool,
    pub active: bool,
    /// SHA-256 of the API key, hex; never shown.
    pub api_key_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Trigger {
    /// What the API shows: everything but the key's hash, plus the URL.
    pub fn view(&self, base_url: &str) -> Value {
        json!({
            "id": self.id, "name": self.name, "url": format!("{base_url}/hooks/{}", self.id),
            "identifier": self.identifier, "transform": self.transform, "actions": self.actions,
            "require_api_key": self.require_api_key, "active": self.active,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }
}

pub fn sha256_hex(text: &str) -> String {
    sha256_hex_bytes(text.as_bytes())
}

pub fn sha256_hex_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a create or update may set; absent fields keep their value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerInput {
    pub name: Option<String>,
    pub identifier: Option<String>,
    /// `null` removes the transform.
    #[serde(default)]
    pub transform: crate::patch::Patch<String>,
    pub actions: Option<Vec<Value>>,
    pub require_api_key: Option<bool>,
    pub active: Option<bool>,
}
