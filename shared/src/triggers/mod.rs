//! Inbound triggers (Mixmax rules with a webhook trigger, Heymarket
//! automations): a URL that external systems POST to, a transform that turns
//! the payload into a contact, and actions run on that contact.
//!
//! - `mod.rs`: the trigger, its validation and storage (and caches);
//! - `accept.rs`: accepting a request at its URL (before answering), with
//!   `idempotency.rs`, the `Idempotency-Key` protocol;
//! - `pipeline.rs`: running an accepted request through the trigger (on the
//!   apply queue);
//! - `requests.rs`: the request log; `preview.rs`: a transform tried on a sample.
//!
//! The HTTP routes are in `http/triggers.rs` and `http/ingest.rs`.

pub mod accept;
mod idempotency;
pub mod pipeline;
mod preview;
pub mod requests;

pub use preview::preview;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::Platform;
use crate::collections::{self, Kind};
use crate::contacts::Identifier;
use crate::error::Error;
use crate::ids;
use crate::keys;
use crate::ports::{Cond, Put, StoreError, Write};
use crate::transforms::Transform;

pub const ID_PREFIX: &str = "trg";
const MAX_ACTIONS: usize = 20;
const MAX_TEMPLATE: usize = 1600;
const MAX_TRANSFORM: usize = 16 * 1024;

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
    pub id: String,
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
    #[serde(default, deserialize_with = "present")]
    pub transform: Option<Option<String>>,
    pub actions: Option<Vec<Value>>,
    pub require_api_key: Option<bool>,
    pub active: Option<bool>,
}

/// Tells "absent" (outer `None`) from "null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub fn parse_identifier(text: &str) -> Result<Identifier, Error> {
    match text {
        "email" => Ok(Identifier::Email),
        "phone_number" => Ok(Identifier::PhoneNumber),
        other => Err(Error::invalid(
            "invalid_identifier",
            format!("identifier {other:?} is not email or phone_number"),
        )),
    }
}

/// Compiles a transform, answering a 422 that names the line and column.
pub async fn compile(source: &str) -> Result<Transform, Error> {
    if source.len() > MAX_TRANSFORM {
        return Err(Error::invalid(
            "invalid_transform",
            format!("the transform is longer than {MAX_TRANSFORM} bytes"),
        ));
    }
    Transform::compile_bounded(source.to_string())
        .await
        .map_err(|e| Error::internal("compile a transform", e))?
        .map(|(t, _)| t)
        .map_err(|e| {
            Error::invalid("invalid_transform", format!("transform {e}"))
                .with_details(json!({"line": e.line, "column": e.column}))
        })
}

/// Field names a message template may use: `{{email}}`, `{{fields.key}}`...
fn check_template(template: &str) -> Result<(), String> {
    if template.trim().is_empty() {
        return Err("template is empty".into());
    }
    if template.chars().count() > MAX_TEMPLATE {
        return Err(format!("template is longer than {MAX_TEMPLATE} characters"));
    }
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("a `{{` has no closing `}}`")?;
        let field = after[..end].trim();
        let known = matches!(
            field,
            "email" | "name" | "first_name" | "last_name" | "phone_number"
        ) || field.strip_prefix("fields.").is_some_and(|k| !k.is_empty());
        if !known {
            return Err(format!(
                "unknown placeholder {{{{{field}}}}}: use email, name, first_name, last_name, phone_number or fields.<key>"
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn check_event_name(event: &str) -> Result<(), String> {
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

/// Parses and checks actions: every list and sequence they name must exist.
pub async fn parse_actions(
    platform: &Platform,
    account: &str,
    raw: &[Value],
) -> Result<Vec<Action>, Error> {
    if raw.len() > MAX_ACTIONS {
        return Err(Error::invalid(
            "invalid_actions",
            format!("at most {MAX_ACTIONS} actions"),
        ));
    }
    let mut actions = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        let fail = |m: String| Error::invalid("invalid_actions", format!("actions[{i}]: {m}"));
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        const KINDS: &str = "add_to_list, add_to_sequence, stop_sequence, update_contact, send_message, publish_event";
        if !KINDS.split(", ").any(|k| k == kind) {
            return Err(fail(format!("type {kind:?} is not one of {KINDS}")));
        }
        let action: Action =
            serde_json::from_value(value.clone()).map_err(|e| fail(e.to_string()))?;
        // Refuse fields the action does not have: a typo would otherwise be ignored.
        let allowed = serde_json::to_value(&action).expect("serialisable");
        if let (Some(given), Some(known)) = (value.as_object(), allowed.as_object())
            && let Some(extra) = given.keys().find(|k| !known.contains_key(*k))
        {
            return Err(fail(format!("{kind} has no field {extra:?}")));
        }
        if let Some((kind, id)) = action.collection() {
            // A store that cannot answer is the service's fault (503), not
            // the request's.
            if collections::find(platform, kind, account, id)
                .await?
                .is_none()
            {
                return Err(fail(format!("{} {id:?} does not exist", kind.word())));
            }
        }
        match &action {
            Action::AddToList { .. }
            | Action::AddToSequence { .. }
            | Action::StopSequence { .. }
            | Action::UpdateContact {} => {}
            Action::SendMessage {
                webhook_id,
                template,
            } => {
                if webhook_id.trim().is_empty() {
                    return Err(fail("webhook_id is empty".into()));
                }
                check_template(template).map_err(fail)?;
            }
            Action::PublishEvent { event } => check_event_name(event).map_err(fail)?,
        }
        actions.push(action);
    }
    Ok(actions)
}

/// Creates a trigger; answers it and its API key when it requires one.
pub async fn create(
    platform: &Platform,
    account: &str,
    input: TriggerInput,
) -> Result<(Trigger, Option<String>), Error> {
    let name = collections::parse_name(
        input
            .name
            .as_deref()
            .ok_or_else(|| Error::invalid("invalid_body", "missing field `name`"))?,
    )?;
    let identifier = parse_identifier(input.identifier.as_deref().unwrap_or("email"))?;
    let transform = input.transform.flatten().filter(|t| !t.trim().is_empty());
    if let Some(t) = &transform {
        compile(t).await?;
    }
    let actions = parse_actions(
        platform,
        account,
        input.actions.as_deref().unwrap_or_default(),
    )
    .await?;
    let require_api_key = input.require_api_key.unwrap_or(false);
    let api_key = require_api_key.then(|| crate::accounts::generate_key("hl_trigger"));
    let now = platform.clock.now();
    let trigger = Trigger {
        id: ids::new_id(ID_PREFIX),
        account: account.to_string(),
        name,
        identifier,
        transform,
        actions,
        require_api_key,
        active: input.active.unwrap_or(true),
        api_key_sha256: api_key.as_deref().map(sha256_hex),
        created_at: now,
        updated_at: now,
    };
    save(platform, &trigger, Cond::Absent).await?;
    Ok((trigger, api_key))
}

/// Writes both copies: the one ingest finds by id, and the account's.
async fn save(platform: &Platform, t: &Trigger, cond: Cond) -> Result<(), StoreError> {
    let body = serde_json::to_value(t).expect("serialisable");
    let written = platform
        .store
        .write_all(vec![
            Write::Put(Put::new(keys::trigger(&t.id), body.clone()).when(cond)),
            Write::Put(Put::new(keys::account_trigger(&t.account, &t.id), body)),
        ])
        .await;
    // After the write, so that ingest cannot cache the old trigger meanwhile.
    platform.kept.get::<TriggerCache>().drop_entry(&t.id);
    written
}

/// The trigger with this id in any account, as ingest sees it, and its version.
pub async fn find(platform: &Platform, id: &str) -> Result<Option<(Trigger, u64)>, StoreError> {
    if !ids::looks_like(id, ID_PREFIX) {
        return Ok(None);
    }
    let Some(item) = platform.store.get(&keys::trigger(id)).await? else {
        return Ok(None);
    };
    let version = item.version;
    serde_json::from_value(item.body)
        .map(|t| Some((t, version)))
        .map_err(|e| StoreError::Backend(format!("corrupt trigger: {e}")))
}

/// How long ingest may answer from a trigger it read before. An edit made in
/// this process drops the entry at once; one made elsewhere (another Lambda
/// function) is seen within this time.
pub const TRIGGER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Triggers as ingest last read them: reading and decoding the trigger was
/// the largest part of accepting a request.
#[derive(Default)]
pub struct TriggerCache {
    entries: Mutex<HashMap<String, Cached>>,
    /// Bumped by every local edit. A lookup caches what it read only if no
    /// edit happened while it was reading, so it cannot put back a trigger
    /// that an edit has just replaced.
    edits: std::sync::atomic::AtomicU64,
}

/// Triggers a process keeps in its cache at most.
const CACHE_ENTRIES: usize = 10_000;

/// When it was read, and what: the trigger or its absence.
type Cached = (std::time::Instant, Option<std::sync::Arc<Trigger>>);

impl TriggerCache {
    fn drop_entry(&self, id: &str) {
        self.edits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// The trigger as ingest sees it, at most `TRIGGER_CACHE_TTL` old. Unknown
/// ids are remembered too, so a flood of requests to a deleted trigger stays cheap.
pub async fn find_for_ingest(
    platform: &Platform,
    id: &str,
) -> Result<Option<std::sync::Arc<Trigger>>, StoreError> {
    let cache = platform.kept.get::<TriggerCache>();
    if let Some((at, found)) = cache
        .entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(id)
        && at.elapsed() < TRIGGER_CACHE_TTL
    {
        return Ok(found.clone());
    }
    let edits = cache.edits.load(std::sync::atomic::Ordering::SeqCst);
    let found = find(platform, id)
        .await?
        .map(|(t, _)| std::sync::Arc::new(t));
    let mut entries = cache
        .entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if edits != cache.edits.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(found); // an edit raced this read: answer it, but do not keep it
    }
    if entries.len() >= CACHE_ENTRIES {
        entries.retain(|_, (at, _)| at.elapsed() < TRIGGER_CACHE_TTL);
    }
    if entries.len() < CACHE_ENTRIES {
        entries.insert(id.to_string(), (std::time::Instant::now(), found.clone()));
    }
    Ok(found)
}

/// The account's triggers, in id order, and the cursor of the rest.
pub async fn page(
    platform: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Trigger>, Option<String>), Error> {
    let mut query = crate::ports::Query::new(keys::account_triggers(account), "");
    query.limit = limit;
    query.cursor = cursor;
    let page = platform.store.query(query).await?;
    let all = page
        .items
        .into_iter()
        .map(|i| serde_json::from_value::<Trigger>(i.body))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::internal("decode trigger", e))?;
    Ok((all, page.next_cursor))
}

/// The account's trigger, or 404 (another account's answers 404 too).
pub async fn get(platform: &Platform, account: &str, id: &str) -> Result<(Trigger, u64), Error> {
    match find(platform, id).await? {
        Some((t, v)) if t.account == account => Ok((t, v)),
        _ => Err(Error::not_found("trigger")),
    }
}

/// Changes a trigger under its version, so concurrent edits are not lost.
pub async fn update(
    platform: &Platform,
    account: &str,
    id: &str,
    input: TriggerInput,
) -> Result<Trigger, Error> {
    let (mut t, version) = get(platform, account, id).await?;
    if let Some(name) = &input.name {
        t.name = collections::parse_name(name)?;
    }
    if let Some(identifier) = &input.identifier {
        t.identifier = parse_identifier(identifier)?;
    }
    if let Some(transform) = input.transform {
        let transform = transform.filter(|s| !s.trim().is_empty());
        if let Some(s) = &transform {
            compile(s).await?;
        }
        t.transform = transform;
    }
    if let Some(raw) = &input.actions {
        t.actions = parse_actions(platform, account, raw).await?;
    }
    if let Some(active) = input.active {
        t.active = active;
    }
    if let Some(require) = input.require_api_key {
        if require && t.api_key_sha256.is_none() {
            return Err(Error::invalid(
                "api_key_needed",
                "this trigger has no API key: POST /v1/triggers/{id}/rotate-key makes one and requires it",
            ));
        }
        t.require_api_key = require;
    }
    t.updated_at = platform.clock.now();
    save(platform, &t, Cond::Version(version)).await?;
    Ok(t)
}

/// A new API key, required from now on; the old one stops working.
pub async fn rotate_key(
    platform: &Platform,
    account: &str,
    id: &str,
) -> Result<(Trigger, String), Error> {
    let (mut t, version) = get(platform, account, id).await?;
    let key = crate::accounts::generate_key("hl_trigger");
    t.api_key_sha256 = Some(sha256_hex(&key));
    t.require_api_key = true;
    t.updated_at = platform.clock.now();
    save(platform, &t, Cond::Version(version)).await?;
    Ok((t, key))
}

pub async fn delete(platform: &Platform, account: &str, id: &str) -> Result<(), Error> {
    let (t, version) = get(platform, account, id).await?;
    // Queued first, so that no deleted trigger keeps its log for want of a
    // message; the purge waits until the trigger is gone.
    let purge = crate::messages::ApplyMessage::PurgeTriggerLog {
        account: account.to_string(),
        trigger_id: t.id.clone(),
    };
    purge.send(platform).await?;
    platform
        .store
        .write_all(vec![
            Write::Delete {
                key: keys::trigger(&t.id),
                cond: Cond::Version(version),
            },
            Write::Delete {
                key: keys::account_trigger(account, &t.id),
                cond: Cond::Any,
            },
        ])
        .await?;
    platform.kept.get::<TriggerCache>().drop_entry(&t.id);
    Ok(())
}

/// Removes a deleted trigger's request log. While the trigger exists (its
/// delete is in flight, or failed) this answers `Conflict`, to be retried.
pub async fn purge_log(
    platform: &Platform,
    account: &str,
    trigger_id: &str,
    budget: std::time::Duration,
) -> Result<crate::ports::store::Progress, StoreError> {
    if platform
        .store
        .get(&keys::trigger(trigger_id))
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict);
    }
    crate::ports::store::clear_partition(
        &*platform.store,
        &keys::trigger_requests(account, trigger_id),
        budget,
    )
    .await
}

/// Compiled transforms of the triggers this process has applied, so a warm
/// process compiles each transform once. Keyed by trigger id and checked
/// against the source, so an edited transform is compiled again.
#[derive(Default)]
pub struct TransformCache(Mutex<Compiled>);

#[derive(Default)]
struct Compiled {
    /// A transform that does not compile is kept too (an old one past
    /// today's limits, say), so that it is not compiled for every request.
    entries: HashMap<String, (String, Result<Transform, TransformError>, u64)>,
    /// What compiling the entries allocated: a bound on what they keep.
    bytes: u64,
}

use crate::transforms::TransformError;
use crate::transforms::pool::Failed;

/// Bounds memory (a 16 KiB transform keeps about 0.8 MB); past it the cache
/// starts again empty.
const CACHE_BYTES: u64 = 64 << 20;

impl TransformCache {
    pub async fn get(
        &self,
        trigger_id: &str,
        source: &str,
    ) -> Result<Result<Transform, TransformError>, Failed> {
        if let Some((s, t, _)) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .get(trigger_id)
            && s == source
        {
            return Ok(t.clone());
        }
        let (compiled, bytes) = match Transform::compile_bounded(source.to_string()).await? {
            Ok((t, bytes)) => (Ok(t), bytes),
            Err(e) => (Err(e), 0),
        };
        let bytes = bytes + source.len() as u64;
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.bytes + bytes > CACHE_BYTES {
            cache.entries.clear();
            cache.bytes = 0;
        }
        if let Some((_, _, old)) = cache.entries.insert(
            trigger_id.to_string(),
            (source.to_string(), compiled.clone(), bytes),
        ) {
            cache.bytes -= old;
        }
        cache.bytes += bytes;
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::faulty::{Fault, Faulty};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_store_that_cannot_answer_is_a_503_not_a_bad_action() {
        let (healthy, _dir) = crate::testkit::platform().await;
        let platform = Platform::new(
            Arc::new(Faulty(healthy.store.clone(), Fault::Everything)),
            healthy.apply_queue.clone(),
            healthy.clock.clone(),
            crate::config::Settings::default(),
        );
        let list = crate::ids::new_id(Kind::List.id_prefix());
        let raw = [json!({"type": "add_to_list", "list_id": list})];
        let err: crate::http::ApiError = parse_actions(&platform, "acct", &raw)
            .await
            .unwrap_err()
            .into();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (503, "storage_unavailable")
        );
        assert!(!err.message.contains("injected"));
        // A list that is not there is the request's fault.
        let err: crate::http::ApiError = parse_actions(&healthy, "acct", &raw)
            .await
            .unwrap_err()
            .into();
        assert_eq!((err.status.as_u16(), err.code), (422, "invalid_actions"));
    }

    #[test]
    fn templates() {
        assert!(
            check_template("Hi {{first_name}}, your order {{fields.order_id}} shipped").is_ok()
        );
        assert!(check_template("no placeholders").is_ok());
        assert!(check_template("Hi {{ name }}").is_ok());
        assert!(
            check_template("Hi {{nme}}")
                .unwrap_err()
                .contains("unknown placeholder {{nme}}")
        );
        assert!(check_template("Hi {{name").is_err());
        assert!(check_template("  ").is_err());
        assert!(check_template(&"x".repeat(1601)).is_err());
    }

    #[test]
    fn event_names() {
        assert!(check_event_name("candidate.hired").is_ok());
        assert!(check_event_name("Bad Name").is_err());
        assert!(check_event_name("").is_err());
    }

    #[tokio::test]
    async fn cache_recompiles_an_edited_transform() {
        let cache = TransformCache::default();
        let a = cache.get("trg_1", "email = a").await.unwrap().unwrap();
        let b = cache.get("trg_1", "email = b").await.unwrap().unwrap();
        let payload = serde_json::json!({"a": "x@example.com", "b": "y@example.com"});
        assert_eq!(
            a.apply(payload.as_object().unwrap())
                .unwrap()
                .email
                .as_deref(),
            Some("x@example.com")
        );
        assert_eq!(
            b.apply(payload.as_object().unwrap())
                .unwrap()
                .email
                .as_deref(),
            Some("y@example.com")
        );
    }
}
