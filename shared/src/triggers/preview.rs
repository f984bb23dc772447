//! Trying a trigger's transform (or one about to be saved) on a sample
//! payload, before any request arrives.

use serde_json::{Value, json};

use crate::Platform;
use crate::contacts::Changes;
use crate::error::{Error, Result};

/// The contact the transform makes of `sample`, and the sample's leaf paths
/// to map fields from; or an `Invalid` error naming the line (and column)
/// at fault, with the paths in its details.
pub async fn preview(
    p: &Platform,
    account: &str,
    id: &crate::ids::TriggerId,
    sample: &Value,
    transform: Option<String>,
) -> Result<Value> {
    let (trigger, _) = super::get(p, account, id).await?;
    let Value::Object(fields_of) = sample else {
        return Err(Error::invalid(
            "invalid_sample",
            "sample must be a JSON object, like the bodies this trigger receives",
        ));
    };
    let paths: Vec<Value> = crate::transforms::leaf_paths(sample)
        .into_iter()
        .map(|(path, value)| json!({"path": path, "value": value}))
        .collect();
    let source = transform
        .or(trigger.transform.clone())
        .filter(|s| !s.trim().is_empty());
    let fields = match &source {
        Some(s) => super::compile(s)
            .await?
            .evaluate(fields_of)
            .await
            .map_err(|e| Error::internal("evaluate a transform", e))?
            .map_err(|e| {
                Error::invalid("transform_failed", format!("transform {e}"))
                    .with_details(json!({"line": e.line, "paths": paths}))
            })?,
        None => crate::transforms::direct(fields_of).map_err(|e| {
            Error::invalid("transform_failed", format!("{}: {}", e.target, e.message))
                .with_details(json!({"paths": paths}))
        })?,
    };
    let changes = Changes::parse(fields)
        .map_err(|m| Error::invalid("invalid_contact", m).with_details(json!({"paths": paths})))?;
    let identifier = trigger.identifier.as_str();
    let contact = json!({
        "email": changes.email.as_ref().map(|e| e.to_string()),
        "phone_number": changes.phone_number.as_ref().map(|n| n.to_string()),
        "name": changes.name, "first_name": changes.first_name, "last_name": changes.last_name,
        "fields": changes.fields,
    });
    if contact[identifier].is_null() {
        return Err(Error::invalid(
            "missing_identifier",
            format!("the sample yields no {identifier}, this trigger's identifier"),
        )
        .with_details(json!({"contact": contact, "paths": paths})));
    }
    Ok(json!({"contact": contact, "identifier": identifier, "paths": paths}))
}
