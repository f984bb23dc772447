//! `GET /openapi.json`: `docs/openapi.json`, as it is. A test makes it from
//! the routers themselves and fails while the two differ: each handler
//! describes its own answers (`#[utoipa::path]`) and its types their
//! schemas (`ToSchema`); this module adds what is the same everywhere: the
//! title, the keys, and the errors any request can meet on its way (an
//! unreadable or oversized body, a missing key, a storage outage). A
//! process so builds no description at its start, and links none.

use serde_json::Value;
#[cfg(test)]
use serde_json::json;
use std::sync::OnceLock;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

/// The document, read.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| serde_json::from_str(self::DOCUMENT).expect("docs/openapi.json is JSON"))
}

/// The document as the routes describe themselves.
#[cfg(test)]
fn described() -> Value {
    let (_, api) = super::every_route().described.split_for_parts();
    complete(serde_json::to_value(api).expect("the document serialises"))
}

#[cfg(test)]
fn error(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

#[cfg(test)]
/// Statuses every operation can answer, whatever it does.
const ANYWHERE: [(&str, &str); 5] = [
    (
        "400",
        "the request cannot be read: a malformed query, path or body, or a cursor this list did not give",
    ),
    ("408", "the body did not arrive in time"),
    ("413", "the body is larger than the route takes"),
    (
        "500",
        "the service failed on this request (it is logged); retrying may help",
    ),
    (
        "503",
        "the service cannot store or answer this now: retry after Retry-After seconds",
    ),
];

#[cfg(test)]
/// Operations whose body may be left out (the schema then says what it
/// holds when given; utoipa marks every typed body required).
const OPTIONAL_BODIES: [&str; 2] = ["redrive_dead_letters", "test_webhook"];

#[cfg(test)]
fn complete(mut doc: Value) -> Value {
    doc["info"] = json!({
        "title": "Hookline",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Webhook platform: inbound triggers, outbound webhooks, webhook campaigns. \
                        Every error answers {\"error\": {\"code\", \"message\"}}.",
    });
    doc["security"] = json!([{"adminKey": []}]);
    doc["components"]["securitySchemes"] = json!({
        "adminKey": {"type": "http", "scheme": "bearer", "description": "an admin key of the account"},
        "triggerKey": {"type": "http", "scheme": "bearer", "description": "the trigger's API key, when it requires one"},
        "operatorKey": {"type": "http", "scheme": "bearer", "description": "the operator key (`/v1/operator/...` only)"},
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "patch" | "put" | "delete") {
                continue;
            }
            if OPTIONAL_BODIES
                .iter()
                .any(|id| operation["operationId"] == *id)
            {
                operation["requestBody"]["required"] = false.into();
            }
            let keyed = match operation.get("security") {
                None => true,
                Some(s) => s.to_string().contains("operatorKey"),
            };
            let has_limit = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "limit"));
            let json_body = operation["requestBody"]["required"] == true
                && operation["requestBody"]["content"]
                    .get("application/json")
                    .is_some();
            let responses = &mut operation["responses"];
            let mut add = |status: &str, description: &str| {
                if responses.get(status).is_none() {
                    responses[status] = error(description);
                }
            };
            for (status, description) in ANYWHERE {
                add(status, description);
            }
            if keyed {
                add("401", "no key, or not a valid one");
            }
            if json_body {
                add("415", "the body is not sent as application/json");
                add(
                    "422",
                    "the body does not fit its schema: the message names the field",
                );
            }
            if has_limit {
                add("422", "limit is out of range");
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is what the routes describe (with
    /// `HOOKLINE_WRITE_OPENAPI=1`, it is written so first).
    #[test]
    fn the_document_is_what_the_routes_describe() {
        let described = described();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        if std::env::var_os("HOOKLINE_WRITE_OPENAPI").is_some() {
            let text = serde_json::to_string_pretty(&described).expect("serialises");
            std::fs::write(path, text + "\n").expect("docs/openapi.json written");
            return;
        }
        let kept: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
        assert!(
            kept == described,
            "docs/openapi.json is not what the routes describe: write it again with \
             HOOKLINE_WRITE_OPENAPI=1 cargo test -p hookline --lib the_document_is"
        );
    }

    /// Every reference in the document names a schema it holds.
    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    /// Every operation has an id of its own (generated clients name their
    /// methods by it), an admin route's can answer 401, and one with an id
    /// in its path 404 (which its handler lists), but a CORS preflight.
    #[test]
    fn operations_are_named_once_and_list_their_errors() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id), "{method} {path}: operationId {id} twice");
                let responses = op["responses"].as_object().unwrap();
                if path.starts_with("/v1/") {
                    assert!(responses.contains_key("401"), "{method} {path}: 401");
                }
                // A CORS preflight is answered without looking anything up.
                if path.contains('{') && method != "options" {
                    assert!(responses.contains_key("404"), "{method} {path}: 404");
                }
            }
        }
        assert!(ids.len() >= 30, "{} operations", ids.len());
    }
}
