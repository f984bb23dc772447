//! What is sent for one delivery: the payload (standard, mapped, or made by
//! a transform), shaped for the webhook's channel (a web endpoint, Pushover,
//! Twilio), signed with Standard Webhooks headers when it has a secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::Platform;
use crate::transforms::Transform;
use crate::webhooks::{Channel, ContentType, Method, PayloadSpec, Webhook};

/// A request ready to go out.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<(&'static str, Vec<u8>)>,
    /// For basic authentication.
    pub basic_auth: Option<(String, String)>,
}

/// The `webhook-id` of an event's deliveries to one webhook: the same for
/// every attempt and redrive, so receivers can drop repeats.
pub fn message_id(event_id: &str, webhook_id: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\n{webhook_id}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{content}` under each
/// secret, space separated (Standard Webhooks).
pub fn signature<'a>(
    secrets: impl Iterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    content: &[u8],
) -> String {
    let mut out = Vec::new();
    for secret in secrets {
        let key = secret
            .strip_prefix("whsec_")
            .and_then(|b| STANDARD.decode(b).ok())
            .unwrap_or_else(|| secret.as_bytes().to_vec());
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(content);
        out.push(format!(
            "v1,{}",
            STANDARD.encode(mac.finalize().into_bytes())
        ));
    }
    out.join(" ")
}

/// The value at a dotted path of `event` (`data.candidate.email`, `items.0`).
fn lookup<'a>(event: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut keys = path.split('.');
    let mut at = event.get(keys.next()?)?;
    for k in keys {
        at = match at {
            Value::Object(o) => o.get(k)?,
            Value::Array(a) => a.get(k.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// Sets `value` at a dotted path of `out`, making objects on the way.
fn insert(out: &mut Map<String, Value>, path: &str, value: Value) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a path has a key");
    let mut at = out;
    for k in keys {
        let slot = at
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        at = slot.as_object_mut().expect("made an object");
    }
    at.insert(last.to_string(), value);
}

/// Compiled payload transforms, by webhook and version of its source.
#[derive(Default)]
struct Compiled(Mutex<HashMap<String, (String, Transform)>>);

async fn transform(p: &Platform, w: &Webhook, source: &str) -> Result<Transform, Unsendable> {
    let cache = p.kept.get::<Compiled>();
    if let Some((kept_source, t)) = cache
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(w.id.as_str())
        && kept_source == source
    {
        return Ok(t.clone());
    }
    let t = Transform::compile_payload_bounded(source.to_string())
        .await
        .map_err(|e| busy_or_never("the payload transform could not be compiled", e))?
        .map_err(|e| Unsendable::Never(format!("the payload transform does not compile: {e}")))?;
    let mut all = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
    if all.len() >= 10_000 {
        all.clear();
    }
    all.insert(w.id.to_string(), (source.to_string(), t.clone()));
    Ok(t)
}

/// Why a delivery cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsendable {
    /// Ever: the same event fails the same way; it is not retried.
    Never(String),
    /// Now: the transform threads are all busy.
    Busy(String),
}

/// Busy transform threads pass (the delivery waits); a panic would
/// happen again on the same event.
fn busy_or_never(what: &str, e: crate::transforms::pool::Failed) -> Unsendable {
    match e {
        crate::transforms::pool::Failed::Busy => Unsendable::Busy(format!("{what}: {e}")),
        crate::transforms::pool::Failed::Panicked(_) => Unsendable::Never(format!("{what}: {e}")),
    }
}

/// The body a webhook sends for `event`: the event itself, or what its
/// mappings or transform make of it.
pub async fn payload(
    p: &Platform,
    w: &Webhook,
    event: &Map<String, Value>,
) -> Result<Value, Unsendable> {
    match &w.payload {
        None => Ok(Value::Object(event.clone())),
        Some(PayloadSpec {
            mappings: Some(mappings),
            ..
        }) => {
            let mut out = Map::new();
            for m in mappings {
                let value = match (&m.from, &m.value) {
                    (Some(from), _) => lookup(event, from).cloned().unwrap_or(Value::Null),
                    (None, Some(v)) => v.clone(),
                    (None, None) => Value::Null,
                };
                insert(&mut out, &m.field, value);
            }
            Ok(Value::Object(out))
        }
        Some(PayloadSpec {
            transform: Some(source),
            ..
        }) => {
            let t = transform(p, w, source).await?;
            match t.evaluate_payload(event).await {
                Ok(Ok(body)) => Ok(Value::Object(body)),
                Ok(Err(e)) => Err(Unsendable::Never(format!(
                    "the payload transform failed: {e}"
                ))),
                Err(e) => Err(busy_or_never("the payload transform could not run", e)),
            }
        }
        Some(_) => Ok(Value::Object(event.clone())),
    }
}

/// Form fields of a payload: its top-level keys, strings as they are,
/// other values as JSON text.
fn pairs(payload: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match payload {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        other => vec![("payload".into(), text(other))],
    }
}

fn form(pairs: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A line for a person (Pushover, SMS): the text given, the payload's
/// `message` or `text`, or the event in brief.
fn line(payload: &Value, event: &Map<String, Value>, text: Option<&str>, max: usize) -> String {
    let field = |k: &str| payload.get(k).and_then(Value::as_str);
    let chosen = text.map(str::to_string).or_else(|| {
        field("message")
            .or_else(|| field("text"))
            .map(str::to_string)
    });
    let line = chosen.unwrap_or_else(|| {
        let get = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default();
        let mut l = format!("{}: {}", get("event"), get("email"));
        for k in [
            "broadcast_name",
            "bounce_type",
            "complaint_type",
            "link_url",
        ] {
            if !get(k).is_empty() {
                l.push_str(&format!(" · {}", get(k)));
            }
        }
        l
    });
    line.chars().take(max).collect()
}

/// The request for one attempt of `event` to `w`, sent at `now`.
pub async fn build(
    p: &Platform,
    w: &Webhook,
    event: &Map<String, Value>,
    text: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Outbound, Unsendable> {
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or_default();
    let body = match text {
        // A message of a trigger's `send_message`: the text, with its event.
        Some(_) => Value::Object(event.clone()),
        None => payload(p, w, event).await?,
    };
    let parse = |u: &str| {
        reqwest::Url::parse(u)
            .map_err(|e| Unsendable::Never(format!("the URL {u:?} is invalid: {e}")))
    };
    let form_type = "application/x-www-form-urlencoded";
    match &w.channel {
        Channel::Web {
            url,
            method,
            content_type,
            basic_auth,
        } => {
            let mut url = parse(url)?;
            let (content, body) = match (method, content_type) {
                (Method::Get, _) => {
                    let mut query = url.query().unwrap_or_default().to_string();
                    let more = form(&pairs(&body));
                    if !query.is_empty() && !more.is_empty() {
                        query.push('&');
                    }
                    query.push_str(&more);
                    url.set_query((!query.is_empty()).then_some(query.as_str()));
                    (query.into_bytes(), None)
                }
                (Method::Post, ContentType::Json) => {
                    let bytes = serde_json::to_vec(&body).expect("JSON values serialise");
                    (bytes.clone(), Some(("application/json", bytes)))
                }
                (Method::Post, ContentType::Form) => {
                    let bytes = form(&pairs(&body)).into_bytes();
                    (bytes.clone(), Some((form_type, bytes)))
                }
            };
            // Every request carries its id (receivers drop repeats by it)
            // and time; a signature when the webhook has a secret.
            let id = message_id(event_id, &w.id);
            let ts = now.timestamp();
            let mut headers = Vec::with_capacity(3);
            if !w.secrets.is_empty() {
                let sig = signature(w.signing_secrets(now), &id, ts, &content);
                headers.push(("webhook-signature", sig));
            }
            headers.push(("webhook-id", id));
            headers.push(("webhook-timestamp", ts.to_string()));
            Ok(Outbound {
                method: match method {
                    Method::Get => reqwest::Method::GET,
                    Method::Post => reqwest::Method::POST,
                },
                url,
                headers,
                body,
                basic_auth: basic_auth
                    .as_ref()
                    .map(|a| (a.username.clone(), a.password.clone())),
            })
        }
        Channel::Pushover {
            user_key,
            api_token,
            sound,
        } => {
            let base = p.settings.pushover_url.trim_end_matches('/');
            let title = body
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "Hookline: {}",
                        event
                            .get("event")
                            .and_then(Value::as_str)
                            .unwrap_or("event")
                    )
                });
            let fields = vec![
                ("token".to_string(), api_token.clone()),
                ("user".to_string(), user_key.clone()),
                ("message".to_string(), line(&body, event, text, 1024)),
                ("title".to_string(), title.chars().take(250).collect()),
                ("sound".to_string(), sound.clone()),
            ];
            Ok(Outbound {
                method: reqwest::Method::POST,
                url: parse(&format!("{base}/1/messages.json"))?,
                headers: Vec::new(),
                body: Some((form_type, form(&fields).into_bytes())),
                basic_auth: None,
            })
        }
        Channel::Twilio {
            account_sid,
            auth_token,
            from,
            to_field,
        } => {
            let base = p.settings.twilio_url.trim_end_matches('/');
            let to = lookup(event, to_field)
                .and_then(text_of)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    Unsendable::Never(format!("the event has no {to_field} to send the SMS to"))
                })?;
            let fields = vec![
                ("To".to_string(), to),
                ("From".to_string(), from.clone()),
                ("Body".to_string(), line(&body, event, text, 1600)),
            ];
            let sid: String =
                url::form_urlencoded::byte_serialize(account_sid.as_bytes()).collect();
            Ok(Outbound {
                method: reqwest::Method::POST,
                url: parse(&format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"))?,
                headers: Vec::new(),
                body: Some((form_type, form(&fields).into_bytes())),
                basic_auth: Some((account_sid.clone(), auth_token.clone())),
            })
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The most of a response body kept in the attempt log.
pub const MAX_LOGGED_BODY: usize = 16 * 1024;

/// What an attempt got back.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `None` when no answer came (refused, reset, timed out).
    pub status: Option<u16>,
    pub retry_after: Option<std::time::Duration>,
    /// The first 16 KiB, when asked for.
    pub body: Option<String>,
    /// Why there was no answer, or the answer was not read whole.
    pub error: Option<String>,
    pub duration: std::time::Duration,
}

impl Answer {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `Retry-After` in seconds, or as an HTTP date.
fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

/// Sends `out` through the guarded client and reads what comes back.
pub async fn send(p: &Platform, out: Outbound, keep_body: bool) -> Answer {
    let started = std::time::Instant::now();
    let now = p.clock.now();
    let Outbound {
        method,
        url,
        headers,
        body,
        basic_auth,
    } = out;
    let sent = p
        .egress
        .send(method, url, |mut b| {
            for (name, value) in headers {
                b = b.header(name, value);
            }
            if let Some((content_type, bytes)) = body {
                b = b
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes);
            }
            if let Some((user, password)) = basic_auth {
                b = b.basic_auth(user, Some(password));
            }
            b
        })
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: None,
                retry_after: None,
                body: None,
                error: Some(describe(&e)),
                duration: started.elapsed(),
            };
        }
    };
    let status = response.status().as_u16();
    let retry = retry_after(response.headers(), now);
    // Read up to the cap (the status is the answer; the body is for the log),
    // then let the rest go with the connection.
    let mut kept = Vec::new();
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if keep_body {
                    let room = MAX_LOGGED_BODY.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                if !keep_body || kept.len() >= MAX_LOGGED_BODY {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("the answer was cut off: {}", describe_reqwest(&e)));
                break;
            }
        }
    }
    Answer {
        status: Some(status),
        retry_after: retry,
        body: keep_body.then(|| String::from_utf8_lossy(&kept).into_owned()),
        error,
        duration: started.elapsed(),
    }
}

fn describe(e: &crate::egress::EgressError) -> String {
    match e {
        crate::egress::EgressError::Refused(why) => format!("refused destination: {why}"),
        crate::egress::EgressError::Http(e) => describe_reqwest(e),
    }
}

/// reqwest's error with its causes ("error sending request: connection
/// refused"), and what a refusal of the guard said.
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer within the timeout".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut seen = 0;
    while let Some(s) = cur {
        if let Some(refused) = s.downcast_ref::<crate::egress::EgressError>() {
            return format!(
                "refused destination: {}",
                refused
                    .to_string()
                    .trim_start_matches("refused destination: ")
            );
        }
        if seen < 3 {
            text.push_str(&format!(": {s}"));
        }
        seen += 1;
        cur = s.source();
    }
    text
}

/// Sample events for a webhook's test button.
pub fn sample(kind: &str, now: DateTime<Utc>) -> Map<String, Value> {
    let mut e = serde_json::json!({
        "id": crate::ids::EventId::new().to_string(),
        "event": kind,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "email": "recipient@example.com",
        "message_id": "abc123xyz",
        "campaign_id": 123,
        "broadcast_name": "January Newsletter",
        "sending_domain": "mail.example.com",
        "sending_node": "smtp1",
        "phone_number": "15005550006",
        "test": true,
    });
    let extra = match kind {
        k if k.ends_with("clicked") => Some(("link_url", "https://example.com/offer")),
        "bounced" => Some(("bounce_type", "hard")),
        "complaint" => Some(("complaint_type", "abuse")),
        _ => None,
    };
    if let Some((k, v)) = extra {
        e[k] = Value::String(v.into());
    }
    match e {
        Value::Object(o) => o,
        _ => unreachable!("an object"),
    }
}
