//! `POST /hooks/{id}`: authenticate, validate, queue durably, answer. All the
//! work on the payload happens after, in `inbound`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

use super::inbound::Inbound;
use crate::Platform;
use crate::apply::ApplyMessage;
use crate::http::ApiError;
use crate::http::extract::Path;
use crate::ids;
use crate::keys;
use crate::ports::{Cond, Put, StoreError};

/// What one inbound request may carry (413 beyond).
pub const BODY_LIMIT: usize = 256 * 1024;
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

pub async fn hook(
    State(p): State<Arc<Platform>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    // The headers taken out, not cloned as the `HeaderMap` extractor does.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = Bytes::from_request(Request::from_parts(parts, body), &()).await;
    let Some(trigger) = super::find_for_ingest(&p, &id).await?.filter(|t| t.active) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no active trigger has this URL",
        ));
    };
    if trigger.require_api_key {
        check_key(&headers, trigger.api_key_sha256.as_deref())?;
    }
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {} KiB", BODY_LIMIT / 1024),
        ),
        _ => ApiError::bad_request("invalid_body", r.body_text()),
    })?;
    let payload = parse_body(&headers, &body)?;
    let idempotency_key = idempotency_key(&headers)?;

    let request_id = ids::new_id("req");
    let claim = match &idempotency_key {
        Some(k) => {
            let hash = super::sha256_hex_bytes(&body);
            match claim_key(&p, &trigger.id, k, &request_id, &hash).await? {
                Claim::Ours(key, version) => Some((key, version, hash)),
                Claim::Repeat(first) => return Ok(captured(&first)),
            }
        }
        None => None,
    };
    let message = ApplyMessage::Inbound(Inbound {
        account: trigger.account.clone(),
        trigger_id: trigger.id.clone(),
        request_id: request_id.clone(),
        received_at: p.clock.now(),
        payload,
        idempotency_key: idempotency_key.clone(),
        body_sha256: claim.as_ref().map(|(_, _, hash)| hash.clone()),
        attempt: 1,
    });
    if let Err(e) = message.send(&p).await {
        // Not accepted: release our claim so that the client's retry is accepted.
        if let Some((key, version, _)) = &claim {
            let _ = p.store.delete(key, Cond::Version(*version)).await;
        }
        return Err(e.into());
    }
    if let Some((key, version, hash)) = claim {
        let now = p.clock.now();
        if let Err(e) = mark_queued(&p, key, Cond::Version(version), &request_id, &hash, now).await
        {
            // The request is queued; applying it marks the key (`settle_key`).
            tracing::warn!(error = %e, "could not mark an idempotency key queued");
        }
    }
    Ok(captured(&request_id))
}

/// Marks a key this request claimed (or one whose claim lapsed, under
/// `Cond::Absent`) as queued, for the idempotency window from
/// `received_at`: repeats answer its request id from now on.
async fn mark_queued(
    p: &Platform,
    key: crate::ports::Key,
    cond: Cond,
    request_id: &str,
    body_sha256: &str,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let expires = received_at + chrono::TimeDelta::from_std(IDEMPOTENCY_WINDOW).expect("in range");
    let queued = json!({"request_id": request_id, "body_sha256": body_sha256, "state": "queued"});
    let put = Put::new(key, queued).when(cond).expires(expires);
    p.store.put(put).await.map(|_| ())
}

/// Called when a request is applied: should ingest have queued it but failed
/// to mark its `Idempotency-Key` queued (a store error, a timeout between
/// the two), the key would lapse as pending within a minute and a retry
/// after that be taken as a new request. Marked now, it holds for the
/// idempotency window; a lapsed one is made again, unless a retry has
/// claimed it meanwhile (then nothing can tell the two apart).
pub async fn settle_key(p: &Platform, m: &Inbound) -> Result<(), StoreError> {
    let (Some(k), Some(hash)) = (&m.idempotency_key, &m.body_sha256) else {
        return Ok(());
    };
    let key = keys::idempotency(&m.trigger_id, k);
    let cond = match p.store.get(&key).await? {
        None => Cond::Absent,
        Some(item)
            if item.body["state"] == "pending" && item.body["request_id"] == *m.request_id =>
        {
            Cond::Version(item.version)
        }
        Some(_) => return Ok(()),
    };
    let written = mark_queued(p, key, cond, &m.request_id, hash, m.received_at).await;
    match written {
        // Marked meanwhile by ingest or another delivery, or claimed by a retry.
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

/// How long a claimed key may stay pending (claimed, not yet queued) before
/// it lapses, should the process die between the two.
const PENDING_WINDOW: Duration = Duration::from_secs(60);

enum Claim {
    /// This request holds the key: the item and its version.
    Ours(crate::ports::Key, u64),
    /// A repeat of a queued request: its id.
    Repeat(String),
}

/// Claims an `Idempotency-Key` for this request, or answers why not.
async fn claim_key(
    p: &Platform,
    trigger: &str,
    k: &str,
    request_id: &str,
    hash: &str,
) -> Result<Claim, ApiError> {
    let key = keys::idempotency(trigger, k);
    let pending_until =
        p.clock.now() + chrono::TimeDelta::from_std(PENDING_WINDOW).expect("in range");
    let pending = json!({"request_id": request_id, "body_sha256": hash, "state": "pending"});
    match p
        .store
        .put(
            Put::new(key.clone(), pending)
                .when(Cond::Absent)
                .expires(pending_until),
        )
        .await
    {
        Ok(version) => return Ok(Claim::Ours(key, version)),
        Err(StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    let first = p.store.get(&key).await?;
    let busy = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is being accepted; retry in a moment",
        )
    };
    let Some(first) = first else {
        return Err(busy());
    };
    if first.body["body_sha256"] != hash {
        return Err(ApiError::invalid(
            "idempotency_key_reused",
            "this Idempotency-Key came with a different body: use a new key for a new request",
        ));
    }
    match (
        first.body["state"].as_str(),
        first.body["request_id"].as_str(),
    ) {
        (Some("queued"), Some(id)) => Ok(Claim::Repeat(id.to_string())),
        _ => Err(busy()),
    }
}

/// The answer once a request is queued (written out directly: this is the
/// hottest path there is, and a request id needs no escaping).
fn captured(request_id: &str) -> Response {
    debug_assert!(ids::looks_like(request_id, "req"));
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"message":"Request captured successfully","request_id":"{request_id}"}}"#),
    )
        .into_response()
}

fn check_key(headers: &HeaderMap, expected_sha256: Option<&str>) -> Result<(), ApiError> {
    let key = crate::http::extract::bearer(headers).map_err(|_| {
        ApiError::unauthorized(
            "this trigger requires its API key: send Authorization: Bearer <api_key>",
        )
    })?;
    let given = super::sha256_hex(key);
    match expected_sha256 {
        Some(want) if bool::from(want.as_bytes().ct_eq(given.as_bytes())) => Ok(()),
        _ => Err(ApiError::unauthorized("the API key is not this trigger's")),
    }
}

fn media_type(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::bad_request(
            "invalid_content_type",
            "the Content-Type header is not readable text",
        )
    })?;
    Ok(Some(
        text.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    ))
}

/// The posted object: JSON (`application/json`, any `+json`) or a form.
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let unsupported = |what: &str| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "{what}: send JSON with Content-Type: application/json (or a form, application/x-www-form-urlencoded)"
            ),
        )
    };
    let media = media_type(headers)?;
    let is_json = match media.as_deref() {
        Some("application/json") => true,
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => true,
        Some("application/x-www-form-urlencoded") => false,
        Some(other) => {
            return Err(unsupported(&format!(
                "Content-Type {other} is not accepted"
            )));
        }
        None => return Err(unsupported("the Content-Type header is missing")),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body is empty: send a JSON object",
        ));
    }
    if !is_json {
        return parse_form(body);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
            .with_details(json!({"line": e.line(), "column": e.column()}))
    })?;
    match value {
        Value::Object(map) if 1 + map.values().map(depth).max().unwrap_or(0) > MAX_DEPTH => {
            Err(ApiError::invalid(
                "too_deep",
                format!(
                    "the body nests deeper than {MAX_DEPTH} levels, more than the request log can keep"
                ),
            ))
        }
        Value::Object(_) if let Some(n) = underflowing_number(body) => Err(ApiError::invalid(
            "number_out_of_range",
            format!(
                "the number {n} is too small to keep (it would become 0): magnitudes from 1e-130 to 9.99e125, or 0"
            ),
        )),
        Value::Object(map) => match map
            .values()
            .find_map(crate::transforms::number_out_of_range)
        {
            Some(n) => Err(ApiError::invalid(
                "number_out_of_range",
                format!(
                    "the number {n} is outside what the request log can keep: magnitudes from 1e-130 to 9.99e125, or 0"
                ),
            )),
            None => Ok(map),
        },
        other => Err(ApiError::invalid(
            "not_an_object",
            format!("the body must be a JSON object, not {}", kind_of(&other)),
        )),
    }
}

/// A number in the JSON text that is not zero but parses as 0 (`1e-400`):
/// it would be kept as a 0 the sender never sent.
fn underflowing_number(json: &[u8]) -> Option<String> {
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < json.len()
                && matches!(json[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let token = std::str::from_utf8(&json[start..i]).ok()?;
            let mantissa = token.split(['e', 'E']).next().unwrap_or("");
            let nonzero = mantissa.bytes().any(|d| matches!(d, b'1'..=b'9'));
            if nonzero && token.parse::<f64>().is_ok_and(|f| f == 0.0) {
                return Some(token.to_string());
            }
            continue;
        }
        i += 1;
    }
    None
}

/// DynamoDB stores documents nested at most 32 deep; the request log keeps
/// the payload two levels down, and leaves room to spare.
const MAX_DEPTH: usize = 24;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A form as an object of strings; a repeated name becomes a list.
fn parse_form(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::bad_request(
            "invalid_form",
            "the form is not UTF-8",
        ));
    }
    // A form carries control characters %-encoded. Raw, each would grow
    // sixfold once queued as JSON (`\u0001`), past what a queue message holds.
    if let Some(b) = body
        .iter()
        .find(|b| **b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Err(ApiError::bad_request(
            "invalid_form",
            format!("the form has a raw control character (byte 0x{b:02x}): %-encode it"),
        ));
    }
    // Decoded here rather than by `form_urlencoded::parse`, which replaces
    // bytes that are not UTF-8 once decoded: `name=Jos%E9` is refused, not
    // stored as "Jos\u{FFFD}".
    let decode = |part: &[u8]| -> Result<String, ()> {
        let plus_as_space: Vec<u8> = part
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_encoding::percent_decode(&plus_as_space)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ())
    };
    let mut map = Map::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let k = decode(k).map_err(|_| {
            ApiError::bad_request(
                "invalid_form",
                "a form field's name is not UTF-8 once %-decoded",
            )
        })?;
        let v = decode(v).map_err(|_| {
            ApiError::bad_request(
                "invalid_form",
                format!(
                    "the form field {} is not UTF-8 once %-decoded",
                    k.chars().take(64).collect::<String>()
                ),
            )
        })?;
        if k.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_form",
                "a form field has no name",
            ));
        }
        let v = Value::String(v);
        match map.get_mut(&k) {
            None => {
                map.insert(k, v);
            }
            Some(Value::Array(items)) => items.push(v),
            Some(first) => {
                let first = first.take();
                map.insert(k, Value::Array(vec![first, v]));
            }
        }
    }
    Ok(map)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
    };
    let text = v.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn a_key_left_pending_is_marked_queued_when_its_request_is_applied() {
        use crate::ports::TestClock;
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at(chrono::Utc::now());
        let p = crate::adapters::embedded::platform(
            dir.path(),
            crate::config::Settings::default(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        let (trigger, body) = (
            "trg_01jd0000000000000000000000",
            br#"{"email":"a@example.com"}"#,
        );
        // Claimed and queued, but never marked queued (ingest failed there);
        // applied at once, or only once the pending claim has lapsed.
        let hash = super::super::sha256_hex_bytes(body);
        for (k, applied_after) in [("order-1", 0), ("order-2", 120)] {
            let request_id = ids::new_id("req");
            let Claim::Ours(..) = claim_key(&p, trigger, k, &request_id, &hash).await.unwrap()
            else {
                panic!("a fresh key is ours");
            };
            let inbound = Inbound {
                account: "acc_test".into(),
                trigger_id: trigger.into(),
                request_id: request_id.clone(),
                received_at: p.clock.now(),
                payload: serde_json::from_slice(body).unwrap(),
                idempotency_key: Some(k.into()),
                body_sha256: Some(hash.clone()),
                attempt: 1,
            };
            clock.advance(Duration::from_secs(applied_after));
            crate::triggers::inbound::apply(&p, &inbound).await.unwrap();
            // Well past the pending window: a retry is still its repeat.
            clock.advance(Duration::from_secs(600));
            match claim_key(&p, trigger, k, &ids::new_id("req"), &hash).await {
                Ok(Claim::Repeat(first)) => assert_eq!(first, request_id, "{k}"),
                Ok(Claim::Ours(..)) => panic!("{k} lapsed: the retry would be a new request"),
                Err(e) => panic!("{k}: {}", e.message),
            }
        }
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        assert!(
            parse_body(
                &headers(Some("application/json")),
                nested(MAX_DEPTH - 1).as_bytes()
            )
            .is_ok()
        );
        let err = parse_body(
            &headers(Some("application/json")),
            nested(MAX_DEPTH).as_bytes(),
        )
        .unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (422, "too_deep"));
    }

    #[test]
    fn bodies() {
        let ok = parse_body(
            &headers(Some("application/json; charset=utf-8")),
            br#"{"a":1}"#,
        )
        .unwrap();
        assert_eq!(ok["a"], 1);
        assert!(
            parse_body(
                &headers(Some("application/vnd.greenhouse+json")),
                br#"{"a":1}"#
            )
            .is_ok()
        );
        let form = parse_body(
            &headers(Some("application/x-www-form-urlencoded")),
            b"email=a%40example.com&tag=x&tag=y",
        )
        .unwrap();
        assert_eq!(form["email"], "a@example.com");
        assert_eq!(form["tag"], json!(["x", "y"]));
        let edge = br#"{"a":9.9e125,"b":-1e-129,"c":0,"d":0.0,"e":18446744073709551615}"#;
        if let Err(e) = parse_body(&headers(Some("application/json")), edge) {
            panic!("{}", e.message);
        }
        let form = parse_body(
            &headers(Some("application/x-www-form-urlencoded")),
            b"name=Jos%C3%A9+Diaz&empty=&flag&&note=a%2Bb%3Dc",
        )
        .unwrap();
        assert_eq!(form["name"], "Jos\u{e9} Diaz");
        assert_eq!((&form["empty"], &form["flag"]), (&json!(""), &json!("")));
        assert_eq!(form["note"], "a+b=c");
        // A trailing newline (curl -d @file) is no control character to refuse.
        let form = parse_body(
            &headers(Some("application/x-www-form-urlencoded")),
            b"a=1\n",
        )
        .unwrap();
        assert_eq!(form["a"], "1\n");
        for (ct, body, status, code) in [
            (Some("application/json"), &b""[..], 400, "empty_body"),
            (Some("application/json"), b"  \n", 400, "empty_body"),
            (Some("application/json"), b"{\"a\":", 400, "invalid_json"),
            (Some("application/json"), b"[1,2]", 422, "not_an_object"),
            (Some("application/json"), b"\"text\"", 422, "not_an_object"),
            (Some("application/json"), b"null", 422, "not_an_object"),
            (
                Some("application/json"),
                b"{\"a\":1e200}",
                422,
                "number_out_of_range",
            ),
            (
                Some("application/json"),
                b"{\"a\":[{\"b\":-1e-200}]}",
                422,
                "number_out_of_range",
            ),
            (
                Some("application/json"),
                b"{\"a\":\"1e-400\",\"b\":[0, 0.0e-999, 1e-400]}",
                422,
                "number_out_of_range",
            ),
            (Some("text/plain"), b"{}", 415, "unsupported_media_type"),
            (None, b"{}", 415, "unsupported_media_type"),
            (
                Some("application/x-www-form-urlencoded"),
                b"=x",
                400,
                "invalid_form",
            ),
            // Not UTF-8 once decoded (Latin-1 é), in a value and in a name.
            (
                Some("application/x-www-form-urlencoded"),
                b"name=Jos%E9",
                400,
                "invalid_form",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                b"n%FFme=x",
                400,
                "invalid_form",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                b"name=a\x01b",
                400,
                "invalid_form",
            ),
        ] {
            let err = parse_body(&headers(ct), body).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code),
                (status, code),
                "{ct:?} {body:?}"
            );
        }
    }
}
