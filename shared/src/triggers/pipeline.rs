//! What happens to an accepted request, on the apply queue: transform,
//! contact upsert, actions in order, and a record of it all in the request
//! log. Applying the same message twice has the effect of once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Action, Trigger};
use crate::Platform;
use crate::collections;
use crate::contacts::{self, Changes, Contact, UpsertError};
use crate::error::Error;
use crate::ids::{RequestId, TriggerId};
use crate::keys;
use crate::ports::{Cond, Put, StoreError};
use crate::transforms;

use crate::messages::Inbound;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RequestStatus)]
pub enum Status {
    Applied,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionOutcome {
    #[serde(rename = "type")]
    pub kind: String,
    pub ok: bool,
    pub detail: String,
}

/// One entry of `GET /v1/triggers/{id}/requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub id: RequestId,
    pub trigger_id: TriggerId,
    pub received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub status: Status,
    /// Why it failed, for a person to act on.
    pub reason: Option<String>,
    pub contact: Option<Contact>,
    pub contact_created: bool,
    pub actions: Vec<ActionOutcome>,
    pub attempts: u32,
    pub idempotency_key: Option<String>,
    pub payload: Map<String, Value>,
    /// The payload was too large to keep beside the rest of the record: it
    /// cannot be replayed from the log (only sent again by its sender).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_omitted: bool,
}

impl RequestRecord {
    /// The record of applying `m` now, before it is run.
    fn new(p: &Platform, m: &Inbound) -> Self {
        Self {
            id: m.request_id.clone(),
            trigger_id: m.trigger_id.clone(),
            received_at: m.received_at,
            processed_at: p.clock.now(),
            status: Status::Applied,
            reason: None,
            contact: None,
            contact_created: false,
            actions: Vec::new(),
            attempts: m.attempt,
            idempotency_key: m.idempotency_key.clone(),
            payload: m.payload.clone(),
            payload_omitted: false,
        }
    }
}

/// Applies one accepted request. An error is a store failure, worth a retry;
/// everything the payload or the configuration gets wrong is recorded as a
/// failed request instead, so it never poisons the queue.
pub async fn run(p: &Platform, m: &Inbound) -> Result<(), Error> {
    let Some((record_key, cond)) = unrecorded(p, m).await? else {
        return Ok(()); // delivered again: already applied (and its key settled)
    };
    super::idempotency::settle_key(p, m).await?;
    let mut record = RequestRecord::new(p, m);
    let Some((trigger, _)) = super::find(p, &m.trigger_id).await? else {
        // Deleted meanwhile, its request log with it: a record written now
        // could never be read, nor would it ever be removed.
        tracing::info!(request_id = %m.request_id, trigger = %crate::ids::trigger_ref(&m.trigger_id),
            "the trigger was deleted before the request was applied; dropped");
        return Ok(());
    };
    if crate::accounts::usage::deleting(p, &m.account).await? {
        tracing::info!(request_id = %m.request_id, "the account is being deleted; dropped");
        return Ok(());
    }
    let applied = run_trigger(p, &trigger, m, &mut record).await?;
    if let Err(reason) = applied {
        record.status = Status::Failed;
        record.reason = Some(reason);
    }
    Ok(save(p, record_key, record, cond).await?)
}

/// The key of the request's record and the condition to write it under,
/// unless this attempt is recorded already (its message delivered again).
async fn unrecorded(
    p: &Platform,
    m: &Inbound,
) -> Result<Option<(crate::ports::Key, Cond)>, StoreError> {
    let record_key = keys::trigger_request(&m.account, &m.trigger_id, &m.request_id);
    let existing = p.store.get(&record_key).await?;
    let before: Option<RequestRecord> = existing
        .as_ref()
        .and_then(|i| serde_json::from_value(i.body.clone()).ok());
    if before.is_some_and(|r| r.attempts >= m.attempt) {
        return Ok(None);
    }
    let cond = existing.map_or(Cond::Absent, |i| Cond::Version(i.version));
    Ok(Some((record_key, cond)))
}

/// Records a request whose message is given up on: the store kept failing
/// however often it was tried. It shows in the request log as failed and can
/// be replayed once the service is healthy; the message itself goes to the
/// dead-letter queue. A request applied meanwhile is left as it is.
pub async fn give_up(p: &Platform, m: &Inbound, attempts: u32) -> Result<(), StoreError> {
    let Some((record_key, cond)) = unrecorded(p, m).await? else {
        return Ok(());
    };
    if super::find(p, &m.trigger_id).await?.is_none() {
        return Ok(()); // deleted, its log with it (as in `apply`)
    }
    let mut record = RequestRecord::new(p, m);
    record.status = Status::Failed;
    // The store's own error stays in the server's log.
    record.reason = Some(format!(
        "not applied: the service failed to store it {attempts} times; replay it once the service is healthy"
    ));
    save(p, record_key, record, cond).await
}

/// Writes the request's record, without its payload should both not fit.
pub(super) async fn save(
    p: &Platform,
    record_key: crate::ports::Key,
    mut record: RequestRecord,
    cond: Cond,
) -> Result<(), StoreError> {
    // Kept for the retention from the request's receipt: a replay does not
    // extend it.
    let expires = chrono::Duration::from_std(p.settings.request_log_retention)
        .ok()
        .and_then(|d| record.received_at.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let body = serde_json::to_value(&record).expect("serialisable");
    let written = match p
        .store
        .put(
            Put::new(record_key.clone(), body)
                .when(cond)
                .expires(expires),
        )
        .await
    {
        Err(StoreError::TooLarge(_)) => {
            // Keep the outcome even when payload and contact together are too big.
            record.payload = Map::from_iter([(
                "omitted".to_string(),
                json!("the payload is too large to keep in the log"),
            )]);
            record.payload_omitted = true;
            let body = serde_json::to_value(&record).expect("serialisable");
            p.store
                .put(Put::new(record_key, body).when(cond).expires(expires))
                .await
        }
        other => other,
    };
    match written {
        // Another delivery of the same message got there first.
        Ok(_) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The transform threads could not run it now: busy (retried without
/// using an attempt), or a panic (retried as a failure).
fn not_now(e: crate::transforms::pool::Failed) -> Error {
    match e {
        crate::transforms::pool::Failed::Busy => {
            Error::Busy(format!("the transform could not run: {e}"))
        }
        other => Error::internal("run a transform", other),
    }
}

/// Runs the trigger on the request, filling in the record. The inner error is
/// why the request failed; the outer one a store failure, worth a retry.
async fn run_trigger(
    p: &Platform,
    trigger: &Trigger,
    m: &Inbound,
    record: &mut RequestRecord,
) -> Result<Result<(), String>, Error> {
    let fields = match &trigger.transform {
        // The transform threads busy or failing is no fault of the request:
        // retried, as a store error is.
        Some(source) => match p
            .kept
            .get::<super::TransformCache>()
            .get(&trigger.id, source)
            .await
        {
            Ok(Ok(t)) => t.evaluate(&m.payload).await.map_err(not_now)?,
            Ok(Err(e)) => return Ok(Err(format!("the transform does not compile: {e}"))),
            Err(e) => return Err(not_now(e)),
        },
        None => transforms::direct(&m.payload),
    };
    let fields = match fields {
        Ok(f) => f,
        Err(e) if e.line == 0 => return Ok(Err(format!("{}: {}", e.target, e.message))),
        Err(e) => return Ok(Err(format!("transform {e}"))),
    };
    let changes = match Changes::parse(fields) {
        Ok(c) => c,
        Err(reason) => return Ok(Err(reason)),
    };
    let update = trigger
        .actions
        .iter()
        .any(|a| matches!(a, Action::UpdateContact {}));
    let (contact, created) = match contacts::upsert(
        p,
        &m.account,
        trigger.identifier,
        &changes,
        update,
        m.received_at,
    )
    .await
    {
        Ok(c) => c,
        Err(UpsertError::Invalid(reason)) => return Ok(Err(reason)),
        Err(UpsertError::Store(StoreError::TooLarge(m))) => {
            return Ok(Err(format!("the contact cannot be stored ({m})")));
        }
        Err(UpsertError::Store(e)) => return Err(e.into()),
    };
    record.contact_created = created;
    for (action, key) in trigger.actions.iter().zip(effect_keys(&trigger.actions)) {
        let outcome = run_action(p, m, &contact, created, &key, action).await?;
        record.actions.push(outcome);
    }
    // The contact as the actions left it (lists added).
    record.contact = contacts::get(p, &m.account, &contact.id)
        .await?
        .map(|(c, _)| c)
        .or(Some(contact));
    let failed: Vec<String> = record
        .actions
        .iter()
        .filter(|a| !a.ok)
        .map(|a| format!("{}: {}", a.kind, a.detail))
        .collect();
    Ok(if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    })
}

/// What names the effect of each action within a request (the id of the
/// event it publishes, of the message it sends): a hash of the action's
/// content, counted among identical ones before it, not its place in the
/// list. A replay after the trigger's actions were edited so finds what an
/// earlier attempt did, and does it once; a changed action is a new effect.
fn effect_keys(actions: &[Action]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    actions
        .iter()
        .map(|a| {
            let content = serde_json::to_string(a).expect("serialisable");
            let digest = Sha256::digest(content.as_bytes());
            let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            let same_before = seen.entry(short.clone()).or_default();
            *same_before += 1;
            match *same_before - 1 {
                0 => short,
                n => format!("{short}_{n}"),
            }
        })
        .collect()
}

async fn run_action(
    p: &Platform,
    m: &Inbound,
    contact: &Contact,
    created: bool,
    key: &str,
    action: &Action,
) -> Result<ActionOutcome, StoreError> {
    let outcome = |ok: bool, detail: String| ActionOutcome {
        kind: action.kind().into(),
        ok,
        detail,
    };
    if let Some((kind, id)) = action.collection() {
        if collections::find(p, kind, &m.account, id).await?.is_none() {
            return Ok(outcome(
                false,
                format!("{} {id} no longer exists", kind.word()),
            ));
        }
        let done = match action {
            Action::AddToList { .. } => {
                collections::add_to_list(p, &m.account, id, contact).await?
            }
            Action::AddToSequence { .. } => {
                collections::add_to_sequence(p, &m.account, id, contact, m.received_at).await?
            }
            _ => collections::stop_sequence(p, &m.account, id, contact, m.received_at).await?,
        };
        return Ok(outcome(true, done.as_str().into()));
    }
    Ok(match action {
        Action::AddToList { .. } | Action::AddToSequence { .. } | Action::StopSequence { .. } => {
            unreachable!("collection actions are handled above")
        }
        Action::UpdateContact {} => {
            outcome(true, if created { "created" } else { "updated" }.into())
        }
        Action::PublishEvent { event } => {
            // Named by the request, so a second run publishes the same event
            // (its deliveries carry the same webhook-id).
            let id = format!("evt_{}_{key}", m.request_id.trim_start_matches("req_"));
            let marker = keys::event(&m.account, &id);
            if p.store.get(&marker).await?.is_some() {
                return Ok(outcome(true, format!("{id} was published already")));
            }
            let mut fields = action_event(m, contact, &id, event);
            fields.insert("data".into(), Value::Object(m.payload.clone()));
            let size = serde_json::to_vec(&fields).map_or(usize::MAX, |b| b.len());
            let max = crate::webhooks::MAX_EVENT_BYTES;
            if size > max {
                return Ok(outcome(
                    false,
                    format!(
                        "the event is too large to publish ({size} bytes with the posted payload as its data; at most {max})"
                    ),
                ));
            }
            let message = crate::messages::ApplyMessage::FanOut {
                account: m.account.clone(),
                event: fields,
                after: None,
            };
            message
                .send(p)
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            // A second run of the request (a retry, a replay) finds it sent.
            sent(p, m, marker).await?;
            outcome(true, format!("published {id}"))
        }
        Action::SendMessage {
            webhook_id,
            template,
        } => {
            let id = format!("msg_{}_{key}", m.request_id.trim_start_matches("req_"));
            let marker = keys::message(&m.account, &id);
            if p.store.get(&marker).await?.is_some() {
                return Ok(outcome(true, format!("{id} was sent already")));
            }
            let found = match crate::ids::WebhookId::parse(webhook_id) {
                Some(w) => match crate::webhooks::get(p, &m.account, &w).await {
                    Ok(_) => Some(w),
                    Err(crate::error::Error::Store(e)) => return Err(e),
                    Err(_) => None,
                },
                None => None,
            };
            let Some(webhook) = found else {
                return Ok(outcome(
                    false,
                    format!("webhook {webhook_id} no longer exists"),
                ));
            };
            let text = render(template, contact);
            if text.len() > MAX_MESSAGE_BYTES {
                return Ok(outcome(
                    false,
                    format!(
                        "the message is too large to send ({} bytes; at most {MAX_MESSAGE_BYTES})",
                        text.len()
                    ),
                ));
            }
            let mut fields = action_event(m, contact, &id, "message");
            fields.insert("name".into(), json!(contact.name));
            fields.insert("text".into(), json!(text));
            let delivery = crate::messages::Delivery {
                account: m.account.clone(),
                webhook_id: webhook.clone(),
                event: fields,
                attempt: 1,
                first_queued_at: p.clock.now(),
                text: Some(text),
                pending_logged: false,
                not_before: None,
            };
            let delay = p.settings.first_delay();
            p.delivery_queue
                .send(delivery.encode(), delay)
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            sent(p, m, marker).await?;
            outcome(true, format!("{id} queued for webhook {webhook}"))
        }
    })
}

/// The event an action publishes or sends: its id, type and time (the
/// request's), and the contact it is about.
fn action_event(m: &Inbound, contact: &Contact, id: &str, kind: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("id".into(), json!(id));
    fields.insert("event".into(), json!(kind));
    let at = m
        .received_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    fields.insert("timestamp".into(), json!(at));
    fields.insert("email".into(), json!(contact.email));
    fields.insert("phone_number".into(), json!(contact.phone_number));
    fields.insert("contact_id".into(), json!(contact.id));
    fields.insert("request_id".into(), json!(m.request_id));
    fields
}

/// Marks what an action sent, after sending it: a second run of the
/// request skips it (a crash between the two sends it twice, never none).
async fn sent(p: &Platform, m: &Inbound, marker: crate::ports::Key) -> Result<(), StoreError> {
    // As long as the request can be replayed: its record's life, and a day.
    let kept = p.settings.request_log_retention + std::time::Duration::from_secs(86_400);
    let expires =
        m.received_at + chrono::Duration::from_std(kept).unwrap_or(chrono::Duration::days(31));
    p.store
        .put(Put::new(marker, json!({})).expires(expires))
        .await
        .map(drop)
}

/// The longest message a `send_message` action sends.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Fills `{{field}}` placeholders; a field the contact lacks becomes empty.
pub fn render(template: &str, c: &Contact) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let field = after[..end].trim();
        let value = match field {
            "email" => c.email.clone(),
            "name" => c.name.clone(),
            "first_name" => c.first_name.clone(),
            "last_name" => c.last_name.clone(),
            "phone_number" => c.phone_number.clone(),
            f => f
                .strip_prefix("fields.")
                .and_then(|k| c.fields.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
        };
        out.push_str(&value.unwrap_or_default());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed request whose record was too large to keep its payload is
    /// not replayed with the placeholder in its place.
    #[tokio::test]
    async fn a_request_logged_without_its_payload_is_not_replayed() {
        let (p, _dir) = crate::testkit::platform().await;
        let input = crate::triggers::NewTrigger {
            name: "T".into(),
            ..Default::default()
        };
        let (trigger, _) = crate::triggers::create(&p, "acc_test", input)
            .await
            .unwrap();
        let m = Inbound {
            account: "acc_test".into(),
            trigger_id: trigger.id.clone(),
            request_id: crate::ids::RequestId::new(),
            received_at: p.clock.now(),
            payload: Map::from_iter([("big".to_string(), json!("x".repeat(450_000)))]),
            idempotency_key: None,
            body_sha256: None,
            attempt: 1,
        };
        let mut record = RequestRecord::new(&p, &m);
        record.status = Status::Failed;
        let key = crate::keys::trigger_request("acc_test", &trigger.id, &m.request_id);
        save(&p, key.clone(), record, Cond::Any).await.unwrap();
        let kept: RequestRecord =
            serde_json::from_value(p.store.get(&key).await.unwrap().unwrap().body).unwrap();
        assert!(kept.payload_omitted && !kept.payload.contains_key("big"));

        let refused = super::super::requests::replay(&p, "acc_test", &trigger.id, &m.request_id)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "payload_not_kept", "{refused}");
    }

    fn actions(v: Value) -> Vec<Action> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_effect_is_named_by_its_action_not_its_place() {
        let before = actions(json!([
            {"type": "add_to_list", "list_id": "lst_1"},
            {"type": "publish_event", "event": "hired"},
            {"type": "publish_event", "event": "hired"},
            {"type": "publish_event", "event": "onboarded"},
        ]));
        let keys = effect_keys(&before);
        // Identical actions are told apart by their count; others differ.
        assert_eq!(keys[2], format!("{}_1", keys[1]));
        assert_ne!(keys[3], keys[1]);
        // The list action removed: the events keep their names.
        let after = actions(json!([
            {"type": "publish_event", "event": "hired"},
            {"type": "publish_event", "event": "hired"},
            {"type": "publish_event", "event": "onboarded"},
        ]));
        assert_eq!(effect_keys(&after), keys[1..]);
        // A changed event is a new one.
        let renamed = actions(json!([{"type": "publish_event", "event": "hired.v2"}]));
        assert_ne!(effect_keys(&renamed)[0], keys[1]);
    }
}
