//! A trigger and its actions, as stored and as created or updated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::collections::Kind;
use crate::contacts::Identifier;
use crate::ids::TriggerId;

pub const ID_PREFIX: &str = "trg";
pub(super) const MAX_ACTIONS: usize = 20;
pub(super) const MAX_TEMPLATE: usize = 1600;
pub const MAX_TRANSFORM: usize = crate::transforms::MAX_SOURCE;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    AddToList {
        #[schema(value_type = crate::ids::ListId)]
        list_id: String,
    },
    AddToSequence {
        #[schema(value_type = crate::ids::SequenceId)]
        sequence_id: String,
    },
    StopSequence {
        #[schema(value_type = crate::ids::SequenceId)]
        sequence_id: String,
    },
    UpdateContact {},
    SendMessage {
        #[schema(pattern = r"\S")]
        webhook_id: String,
        /// Text with `{{email}}`, `{{name}}`, `{{fields.<key>}}`... placeholders.
        #[schema(max_length = 1600, pattern = r"\S")]
        template: String,
    },
    PublishEvent {
        #[schema(pattern = "^[a-z0-9_.-]{1,64}$")]
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

pub fn sha256_hex(text: &str) -> String {
    sha256_hex_bytes(text.as_bytes())
}

pub fn sha256_hex_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a create sets; absent fields take their defaults.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrigger {
    #[schema(value_type = crate::collections::Name)]
    pub name: String,
    /// The contact field that finds the contact; `email` when absent.
    #[schema(value_type = Option<Identifier>)]
    pub identifier: Option<String>,
    /// Lines of `target = CEL expression`; `#` starts a comment. Without
    /// one, the payload's own fields (email, phone_number, name, ...) are taken.
    #[schema(max_length = 16384)]
    pub transform: Option<String>,
    #[schema(value_type = Option<Vec<Action>>, max_items = 20)]
    pub actions: Option<Vec<Value>>,
    /// Whether posts must carry `Authorization: Bearer <the trigger's API key>`.
    pub require_api_key: Option<bool>,
    pub active: Option<bool>,
}

/// What an update may change; absent fields keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerPatch {
    #[schema(value_type = Option<crate::collections::Name>)]
    pub name: Option<String>,
    #[schema(value_type = Option<Identifier>)]
    pub identifier: Option<String>,
    /// `null` removes the transform.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 16384)]
    pub transform: crate::patch::Patch<String>,
    #[schema(value_type = Option<Vec<Action>>, max_items = 20)]
    pub actions: Option<Vec<Value>>,
    /// Setting it true needs a key: rotate-key makes one.
    pub require_api_key: Option<bool>,
    pub active: Option<bool>,
}
