//! Request bodies as trigger URLs take them: JSON (`application/json`, any
//! `+json`) or a form, bounded in depth, checked for numbers that would not
//! survive storage.

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::http::ApiError;

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
    let blank = body.iter().all(u8::is_ascii_whitespace);
    // A form with no fields (or only a line end) is an empty object; JSON
    // needs one written.
    if !is_json {
        return if blank {
            Ok(Map::new())
        } else {
            parse_form(body)
        };
    }
    if blank {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body is empty: send a JSON object",
        ));
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
        // A form with no fields is an empty object, as forms are posted.
        for blank in [&b""[..], b"  ", b"\r\n"] {
            let form = parse_body(&headers(Some("application/x-www-form-urlencoded")), blank);
            assert!(form.unwrap().is_empty());
        }
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
