//! Events published into an account (`POST /v1/events`, a trigger's
//! `publish_event`, Hookline's own `webhook.disabled`), and their fan-out
//! to every matching webhook.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::Platform;
use crate::error::Error;
use crate::ids::EventId;
use crate::messages::{ApplyMessage, Delivery};
use crate::ports::Query;
use crate::webhooks::{self, Webhook};

/// Events one call may publish.
pub const MAX_EVENTS: usize = 100;
pub use crate::webhooks::MAX_EVENT_BYTES;
/// Webhooks one fan-out message matches an event against when they are
/// read from the store (an account with more than the cache holds); the
/// rest goes on in a message of its own.
pub const FAN_OUT_PAGE: usize = 200;
/// Deliveries queued by one send.
const SEND_CHUNK: usize = 100;

/// Mumara's payload fields that hold text (`campaign_id` may be a number too).
const TEXT_FIELDS: [&str; 12] = [
    "email",
    "message_id",
    "broadcast_name",
    "sending_domain",
    "sending_node",
    "link_url",
    "bounce_type",
    "complaint_type",
    "bridge",
    "dedicated_ip",
    "phone_number",
    "name",
];

fn invalid(at: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid("invalid_event", format!("{at}: {message}"))
}

/// Checks one published event and makes it what is sent: its own fields,
/// an `id`, and its `timestamp` in RFC 3339 UTC (now, when absent).
pub fn parse_event(raw: &Value, at: &str, now: DateTime<Utc>) -> Result<Map<String, Value>, Error> {
    let Value::Object(fields) = raw else {
        return Err(invalid(at, "an event is a JSON object"));
    };
    let mut event = Map::with_capacity(fields.len() + 2);
    let kind = match fields.get("event") {
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(invalid(&format!("{at}.event"), "must be a string")),
        None => {
            return Err(invalid(
                &format!("{at}.event"),
                "is required: the event type, e.g. delivered",
            ));
        }
    };
    webhooks::check_event_name(kind).map_err(|m| invalid(&format!("{at}.event"), m))?;
    if fields.contains_key("id") {
        return Err(invalid(
            &format!("{at}.id"),
            "is given by Hookline (answered in ids); send message_id for yours",
        ));
    }
    let timestamp = match fields.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) if s.trim().is_empty() => now,
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map_err(|e| {
                invalid(
                    &format!("{at}.timestamp"),
                    format!("{e}: an ISO 8601 time, e.g. 2024-01-15T10:30:00Z"),
                )
            })?
            .with_timezone(&Utc),
        Some(_) => {
            return Err(invalid(
                &format!("{at}.timestamp"),
                "an ISO 8601 time, e.g. 2024-01-15T10:30:00Z",
            ));
        }
    };
    for field in TEXT_FIELDS {
        if let Some(v) = fields.get(field)
            && !matches!(v, Value::String(_) | Value::Null)
        {
            return Err(invalid(&format!("{at}.{field}"), "must be a string"));
        }
    }
    if let Some(v) = fields.get("campaign_id")
        && !matches!(v, Value::String(_) | Value::Number(_) | Value::Null)
    {
        return Err(invalid(
            &format!("{at}.campaign_id"),
            "must be a string or a number",
        ));
    }
    event.insert("id".into(), Value::String(EventId::new().to_string()));
    event.insert("event".into(), Value::String(kind.to_string()));
    event.insert(
        "timestamp".into(),
        Value::String(timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    for (k, v) in fields {
        if !event.contains_key(k) {
            event.insert(k.clone(), v.clone());
        }
    }
    let size = serde_json::to_vec(&event).map_or(usize::MAX, |b| b.len());
    if size > MAX_EVENT_BYTES {
        return Err(invalid(
            at,
            format!("the event is {size} bytes as JSON, more than {MAX_EVENT_BYTES}"),
        ));
    }
    Ok(event)
}

/// The events of a `POST /v1/events` body: one event, or `{"events": [...]}`.
pub fn parse_body(body: &Value, now: DateTime<Utc>) -> Result<Vec<Map<String, Value>>, Error> {
    match body.get("events") {
        Some(Value::Array(list)) => {
            if list.is_empty() || list.len() > MAX_EVENTS {
                return Err(invalid(
                    "events",
                    format!("1 to {MAX_EVENTS} events a call"),
                ));
            }
            if body.as_object().is_some_and(|o| o.len() > 1) {
                return Err(invalid(
                    "events",
                    "send one event, or {\"events\": [...]} with nothing beside it",
                ));
            }
            list.iter()
                .enumerate()
                .map(|(i, e)| parse_event(e, &format!("events[{i}]"), now))
                .collect()
        }
        Some(_) => Err(invalid("events", "must be a list of events")),
        None => Ok(vec![parse_event(body, "event", now)?]),
    }
}

/// Queues the events to be fanned out to the account's webhooks; answers
/// their ids once every one is durably queued.
pub async fn publish(
    p: &Platform,
    account: &str,
    events: Vec<Map<String, Value>>,
) -> Result<Vec<String>, Error> {
    let ids = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let messages = events
        .into_iter()
        .map(|event| {
            let message = ApplyMessage::FanOut {
                account: account.to_string(),
                event,
                after: None,
            };
            (message.encode(), std::time::Duration::ZERO)
        })
        .collect();
    p.apply_queue.send_batch(messages).await?;
    Ok(ids)
}

/// The text a filter compares: strings as they are, numbers as digits
/// (`"123"` matches `123`).
fn text_of(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        Value::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

/// Whether the event goes to the webhook: active, subscribed to its type,
/// and each filter (ANDed) holding one of the event's value (ORed).
pub fn matches(w: &Webhook, event: &Map<String, Value>) -> bool {
    let Some(kind) = event.get("event").and_then(Value::as_str) else {
        return false;
    };
    w.active
        && w.events.iter().any(|e| e == kind)
        && w.filters.iter().all(|(field, values)| {
            event
                .get(field)
                .and_then(text_of)
                .is_some_and(|t| values.iter().any(|v| *v == *t))
        })
}

/// Matches `event` against the account's webhooks from `after` on and
/// queues a delivery for each match; answers where to go on from when
/// webhooks are left (read from the store a page at a time).
pub async fn fan_out(
    p: &Platform,
    account: &str,
    event: &Map<String, Value>,
    after: Option<String>,
) -> Result<Option<String>, Error> {
    let (matched, next): (Vec<std::sync::Arc<Webhook>>, Option<String>) =
        match (&after, webhooks::all_cached(p, account).await?) {
            (None, Some(all)) => (
                all.iter().filter(|w| matches(w, event)).cloned().collect(),
                None,
            ),
            _ => {
                let mut query = Query::new(crate::keys::webhooks(account), "");
                query.limit = FAN_OUT_PAGE;
                query.cursor = after;
                let page = p.store.query(query).await?;
                let found: Vec<Webhook> = crate::error::decoded(page.items, "decode webhook")?;
                (
                    found
                        .into_iter()
                        .filter(|w| matches(w, event))
                        .map(std::sync::Arc::new)
                        .collect(),
                    page.next_cursor,
                )
            }
        };
    // A chunk at a time: each message carries the event.
    let now = p.clock.now();
    for chunk in matched.chunks(SEND_CHUNK) {
        let messages = chunk
            .iter()
            .map(|w| {
                let delivery = Delivery {
                    account: account.to_string(),
                    webhook_id: w.id.clone(),
                    event: event.clone(),
                    attempt: 1,
                    first_queued_at: now,
                    text: None,
                    pending_logged: false,
                    not_before: None,
                };
                (delivery.encode(), p.settings.first_delay())
            })
            .collect();
        p.delivery_queue.send_batch(messages).await?;
    }
    Ok(next)
}

/// Publishes Hookline's own event into the account, as a user's would be.
pub async fn publish_own(
    p: &Platform,
    account: &str,
    fields: Map<String, Value>,
) -> Result<(), Error> {
    let event = parse_event(&Value::Object(fields), "event", p.clock.now())?;
    publish(p, account, vec![event]).await.map(drop)
}
