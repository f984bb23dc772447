//! Webhook input checked and turned into what is stored: every error is a
//! 422 naming its field and how to fix it.

use serde_json::Value;

use super::model::*;
use crate::Platform;
use crate::error::Error;
use crate::patch::Patch;

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid_field("invalid_webhook", field, message)
}

/// A credential or short setting: trimmed, not empty, bounded, printable.
fn text(field: &str, value: Option<&str>) -> Result<String, Error> {
    let v = value.map(str::trim).unwrap_or_default();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if v.chars().count() > MAX_CREDENTIAL || v.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("at most {MAX_CREDENTIAL} characters, none of them control characters"),
        ));
    }
    Ok(v.to_string())
}

/// Checks a web endpoint's URL: http(s), https unless private targets are
/// allowed, and no address the egress guard refuses.
pub fn parse_url(p: &Platform, raw: Option<&str>) -> Result<String, Error> {
    parse_url_field(p, "invalid_webhook", "channel.url", raw)
}

/// `parse_url` for a URL sent as `field`, refused with `code`.
pub fn parse_url_field(
    p: &Platform,
    code: &'static str,
    field: &str,
    raw: Option<&str>,
) -> Result<String, Error> {
    let invalid = |_: &str, m: &dyn std::fmt::Display| Error::invalid_field(code, field, m);
    let raw = raw.map(str::trim).unwrap_or_default();
    if raw.is_empty() {
        return Err(invalid("", &"is required"));
    }
    if raw.len() > MAX_URL {
        return Err(invalid("", &format!("longer than {MAX_URL} characters")));
    }
    let url = url::Url::parse(raw).map_err(|e| invalid("", &format!("{e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if p.settings.allow_private_targets => {}
        "http" => {
            return Err(invalid(
                "",
                &"must be https (plain http only where private targets are allowed)",
            ));
        }
        s => return Err(invalid("", &format!("scheme {s} is not https"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "",
            &"must not carry credentials: use auth (basic) instead",
        ));
    }
    p.egress.check_url(&url).map_err(|e| invalid("", &e))?;
    Ok(url.to_string())
}

/// Accepts Pushover's API names and the seed's labels ("Cash Register",
/// "Mute").
pub fn parse_sound(raw: Option<&str>) -> Result<String, Error> {
    let Some(raw) = raw else {
        return Ok("pushover".into());
    };
    let squashed: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    let name = match squashed.as_str() {
        "mute" | "silent" => "none",
        "alienalarm" => "alien",
        other => other,
    };
    SOUNDS
        .iter()
        .find(|s| **s == name)
        .map(|s| s.to_string())
        .ok_or_else(|| {
            invalid(
                "channel.sound",
                format!(
                    "{raw:?} is not a Pushover sound: use one of {}",
                    SOUNDS.join(", ")
                ),
            )
        })
}

/// The channel to store, given the one stored before (an update keeps the
/// credentials it leaves out, when the type stays), and the secret change.
pub fn parse_channel(
    p: &Platform,
    input: &ChannelInput,
    current: Option<&Channel>,
) -> Result<Channel, Error> {
    let web_only = |field: &str, given: bool| {
        if given && input.kind != "web" {
            Err(invalid(
                &format!("channel.{field}"),
                format!("is for web channels, not {}", input.kind),
            ))
        } else {
            Ok(())
        }
    };
    web_only("url", input.url.is_some())?;
    web_only("method", input.method.is_some())?;
    web_only("content_type", input.content_type.is_some())?;
    web_only("auth", input.auth.is_some())?;
    web_only(
        "secret",
        matches!(&input.secret, Patch::Value(s) if !s.trim().is_empty()),
    )?;
    let not_for = |field: &str, given: bool, kind: &str| {
        if given && input.kind != kind {
            Err(invalid(
                &format!("channel.{field}"),
                format!("is for {kind} channels, not {}", input.kind),
            ))
        } else {
            Ok(())
        }
    };
    not_for("user_key", input.user_key.is_some(), "pushover")?;
    not_for("api_token", input.api_token.is_some(), "pushover")?;
    not_for("sound", input.sound.is_some(), "pushover")?;
    not_for("account_sid", input.account_sid.is_some(), "twilio")?;
    not_for("auth_token", input.auth_token.is_some(), "twilio")?;
    not_for("from", input.from.is_some(), "twilio")?;
    not_for("to_field", input.to_field.is_some(), "twilio")?;
    match input.kind.as_str() {
        "web" => {
            // An update keeps what it leaves out.
            let kept = match current {
                Some(Channel::Web {
                    url,
                    method,
                    content_type,
                    basic_auth,
                }) => Some((url, *method, *content_type, basic_auth)),
                _ => None,
            };
            let url = match (&input.url, kept) {
                (None, Some((url, ..))) => url.clone(),
                (given, _) => parse_url(p, given.as_deref())?,
            };
            let method = match input.method.as_deref().map(str::trim) {
                None if kept.is_some() => kept.map_or(Method::Post, |k| k.1),
                None | Some("POST") | Some("post") => Method::Post,
                Some("GET") | Some("get") => Method::Get,
                Some(m) => {
                    return Err(invalid(
                        "channel.method",
                        format!("{m:?} is not POST or GET"),
                    ));
                }
            };
            let content_type = match input.content_type.as_deref().map(str::trim) {
                None if kept.is_some() => kept.map_or(ContentType::Json, |k| k.2),
                None | Some("json") => ContentType::Json,
                Some("form") => ContentType::Form,
                Some(c) => {
                    return Err(invalid(
                        "channel.content_type",
                        format!("{c:?} is not json or form"),
                    ));
                }
            };
            let kept_password = match current {
                Some(Channel::Web {
                    basic_auth: Some(a),
                    ..
                }) => Some(a.password.as_str()),
                _ => None,
            };
            let basic_auth = match &input.auth {
                None => match kept {
                    Some((_, _, _, Some(auth))) if method == Method::Post => Some(auth.clone()),
                    _ => None,
                },
                Some(a) if a.kind == "none" => {
                    if a.username.is_some() || a.password.is_some() {
                        return Err(invalid(
                            "channel.auth",
                            "type none takes no username or password",
                        ));
                    }
                    None
                }
                Some(a) if a.kind == "basic" => {
                    if method == Method::Get {
                        return Err(invalid(
                            "channel.auth",
                            "basic authentication is only available with the POST method",
                        ));
                    }
                    let username = text("channel.auth.username", a.username.as_deref())?;
                    if username.contains(':') {
                        return Err(invalid(
                            "channel.auth.username",
                            "must not contain `:` (basic authentication joins it to the password with one)",
                        ));
                    }
                    let password = match (a.password.as_deref(), kept_password) {
                        (None, Some(kept)) => kept.to_string(),
                        (given, _) => text("channel.auth.password", given)?,
                    };
                    Some(BasicAuth { username, password })
                }
                Some(a) => {
                    return Err(invalid(
                        "channel.auth.type",
                        format!("{:?} is not none or basic", a.kind),
                    ));
                }
            };
            Ok(Channel::Web {
                url,
                method,
                content_type,
                basic_auth,
            })
        }
        "pushover" => {
            let kept = match current {
                Some(Channel::Pushover { api_token, .. }) => Some(api_token.as_str()),
                _ => None,
            };
            let (kept_user, kept_sound) = match current {
                Some(Channel::Pushover {
                    user_key, sound, ..
                }) => (Some(user_key.as_str()), Some(sound.as_str())),
                _ => (None, None),
            };
            Ok(Channel::Pushover {
                user_key: text("channel.user_key", input.user_key.as_deref().or(kept_user))?,
                api_token: match (input.api_token.as_deref(), kept) {
                    (None, Some(k)) => k.to_string(),
                    (given, _) => text("channel.api_token", given)?,
                },
                sound: parse_sound(input.sound.as_deref().or(kept_sound))?,
            })
        }
        "twilio" => {
            let (kept, kept_sid, kept_from, kept_to) = match current {
                Some(Channel::Twilio {
                    auth_token,
                    account_sid,
                    from,
                    to_field,
                }) => (
                    Some(auth_token.as_str()),
                    Some(account_sid.as_str()),
                    Some(from.as_str()),
                    Some(to_field.as_str()),
                ),
                _ => (None, None, None, None),
            };
            let to_field = match input.to_field.as_deref().or(kept_to) {
                None => "phone_number".to_string(),
                Some(f) => {
                    let f = text("channel.to_field", Some(f))?;
                    check_path("channel.to_field", &f)?;
                    f
                }
            };
            Ok(Channel::Twilio {
                account_sid: text(
                    "channel.account_sid",
                    input.account_sid.as_deref().or(kept_sid),
                )?,
                auth_token: match (input.auth_token.as_deref(), kept) {
                    (None, Some(k)) => k.to_string(),
                    (given, _) => text("channel.auth_token", given)?,
                },
                from: text("channel.from", input.from.as_deref().or(kept_from))?,
                to_field,
            })
        }
        other => Err(invalid(
            "channel.type",
            format!("{other:?} is not web, pushover or twilio"),
        )),
    }
}

/// A dotted path of event fields or body fields: keys of 1 to 64
/// characters, at most 8 deep.
fn check_path(field: &str, path: &str) -> Result<(), Error> {
    let keys: Vec<&str> = path.split('.').collect();
    if keys.len() > 8 || keys.iter().any(|k| k.is_empty() || k.len() > 64) {
        return Err(invalid(
            field,
            format!("{path:?} is not a dotted path of at most 8 keys of 1 to 64 characters"),
        ));
    }
    Ok(())
}

/// The shortest secret of one's own (a generated one has 32 random bytes).
const MIN_SECRET: usize = 8;

/// The signing secret given, if any: blank means none. Accepts the
/// Standard Webhooks form (`whsec_` and base64) or any text of 8 to 512
/// characters, used as the key's bytes: `whsec_` + base64 of the text in
/// the Standard Webhooks libraries.
pub fn parse_secret(raw: &str) -> Result<Option<String>, Error> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Some(b64) = s.strip_prefix("whsec_") {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| invalid("channel.secret", "after whsec_ it must be base64"))?;
        if !(16..=64).contains(&bytes.len()) {
            return Err(invalid(
                "channel.secret",
                "a whsec_ secret holds 16 to 64 bytes",
            ));
        }
        return Ok(Some(s.to_string()));
    }
    if !(MIN_SECRET..=MAX_CREDENTIAL).contains(&s.chars().count())
        || s.chars().any(char::is_control)
    {
        return Err(invalid(
            "channel.secret",
            format!(
                "{MIN_SECRET} to {MAX_CREDENTIAL} characters, or whsec_ and base64 (omit it for none)"
            ),
        ));
    }
    use base64::Engine;
    Ok(Some(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    )))
}

/// A new random secret, in the Standard Webhooks form.
pub fn generate_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Event types: known ones (`EVENT_TYPES`), or ones a trigger of the
/// account publishes (`publishable`).
pub fn parse_events(raw: &[String], publishable: &[String]) -> Result<Vec<String>, Error> {
    if raw.is_empty() {
        return Err(invalid(
            "events",
            format!(
                "subscribe to at least one event type: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    if raw.len() > MAX_EVENTS {
        return Err(invalid(
            "events",
            format!("at most {MAX_EVENTS} event types"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for e in raw {
        let e = e.trim();
        let known = EVENT_TYPES.contains(&e) || publishable.iter().any(|p| p == e);
        if !known {
            let mut message = format!("unknown event type {e:?}: use {}", EVENT_TYPES.join(", "));
            if !publishable.is_empty() {
                message.push_str(&format!(
                    ", or one this account's triggers publish: {}",
                    publishable.join(", ")
                ));
            } else {
                message.push_str(", or one a trigger publishes (its publish_event action)");
            }
            return Err(invalid("events", message));
        }
        if !out.iter().any(|o| o == e) {
            out.push(e.to_string());
        }
    }
    Ok(out)
}

/// Filters: an object of known keys, each a list of strings or numbers.
pub fn parse_filters(raw: Option<&Value>) -> Result<Filters, Error> {
    let mut out = Filters::new();
    let obj = match raw {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(invalid(
                "filters",
                "must be an object of lists, e.g. {\"sending_domain\": [\"mail.example.com\"]}",
            ));
        }
    };
    for (key, values) in obj {
        if !FILTER_KEYS.contains(&key.as_str()) {
            return Err(invalid(
                "filters",
                format!("unknown filter {key:?}: use {}", FILTER_KEYS.join(", ")),
            ));
        }
        let field = format!("filters.{key}");
        let list = match values {
            Value::Null => continue,
            Value::Array(a) => a,
            _ => return Err(invalid(&field, "must be a list of values")),
        };
        if list.len() > MAX_FILTER_VALUES {
            return Err(invalid(
                &field,
                format!("at most {MAX_FILTER_VALUES} values"),
            ));
        }
        let mut texts = Vec::with_capacity(list.len());
        for v in list {
            let t = match v {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(invalid(&field, "values are strings or numbers")),
            };
            if t.is_empty() || t.chars().count() > 256 {
                return Err(invalid(&field, "each value is 1 to 256 characters"));
            }
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        if !texts.is_empty() {
            out.insert(key.clone(), texts);
        }
    }
    Ok(out)
}

/// A custom payload: mappings or a transform (not both).
pub async fn parse_payload(raw: Option<PayloadSpec>) -> Result<Option<PayloadSpec>, Error> {
    let Some(spec) = raw else { return Ok(None) };
    match (&spec.mappings, &spec.transform) {
        (Some(_), Some(_)) => Err(invalid("payload", "give mappings or a transform, not both")),
        (None, None) => Ok(None),
        (Some(mappings), None) => {
            if mappings.is_empty() || mappings.len() > MAX_MAPPINGS {
                return Err(invalid(
                    "payload.mappings",
                    format!(
                        "1 to {MAX_MAPPINGS} mappings (or leave payload out for the standard one)"
                    ),
                ));
            }
            let mut fields: Vec<&str> = Vec::new();
            for (i, m) in mappings.iter().enumerate() {
                let at = format!("payload.mappings[{i}]");
                check_path(&format!("{at}.field"), &m.field)?;
                if fields.iter().any(|f| {
                    let (a, b) = (f.split('.'), m.field.split('.'));
                    a.zip(b).all(|(x, y)| x == y)
                }) {
                    return Err(invalid(
                        &format!("{at}.field"),
                        format!("{:?} is set by an earlier mapping (or inside one)", m.field),
                    ));
                }
                fields.push(&m.field);
                match (&m.from, &m.value) {
                    (Some(from), None) => check_path(&format!("{at}.from"), from)?,
                    (None, Some(_)) => {}
                    _ => {
                        return Err(invalid(
                            &at,
                            "give from (an event field) or value (a static value), one of them",
                        ));
                    }
                }
            }
            Ok(Some(spec))
        }
        (None, Some(source)) => {
            compile(source).await?;
            Ok(Some(spec))
        }
    }
}

/// Compiles a payload transform, answering a 422 that names the line and column.
pub async fn compile(source: &str) -> Result<crate::transforms::Transform, Error> {
    let max = crate::transforms::MAX_SOURCE;
    if source.chars().count() > max {
        return Err(Error::invalid(
            "invalid_transform",
            format!("payload.transform is longer than {max} characters"),
        )
        .with_details(serde_json::json!({"field": "payload.transform"})));
    }
    crate::transforms::Transform::compile_payload_bounded(source.to_string())
        .await
        .map_err(|e| e.into_error("compile a transform"))?
        .map_err(|e| {
            Error::invalid("invalid_transform", format!("payload.transform {e}"))
                .with_details(serde_json::json!({"field": "payload.transform", "line": e.line, "column": e.column}))
        })
}

pub fn parse_rate(raw: Option<u32>) -> Result<Option<u32>, Error> {
    match raw {
        Some(n) if !(1..=MAX_RATE).contains(&n) => Err(invalid(
            "rate_limit",
            format!("deliveries a second: 1 to {MAX_RATE}, or null for none"),
        )),
        other => Ok(other),
    }
}
