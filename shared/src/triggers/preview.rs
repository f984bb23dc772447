//! Trying a trigger's transform (or one about to be saved) on a sample
//! payload, before any request arrives.

use serde_json::{Value, json};

use crate::Platform;
use crate::contacts::{Changes, Identifier};
use crate::error::{Error, Result};

/// What a sample would make.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The contact's fields as the transform sets them.
    pub contact: PreviewContact,
    /// The field that would find (or make) the contact.
    pub identifier: Identifier,
    /// Every leaf of the sample, to map from.
    pub paths: Vec<LeafPath>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PreviewContact {
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub phone_number: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub first_name: Option<String>,
    #[schema(required = true)]
    pub last_name: Option<String>,
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LeafPath {
    /// Dotted, with `[i]` for array elements: `candidate.emails[0]`.
    pub path: String,
    pub value: Value,
}

/// The contact the transform makes of `sample`, and the sample's leaf paths
/// to map fields from; or an `Invalid` error naming the line (and column)
/// at fault, with the paths in its details.
pub async fn preview(
    p: &Platform,
    account: &str,
    id: &crate::ids::TriggerId,
    sample: &Value,
    transform: Option<String>,
    identifier: Option<Identifier>,
) -> Result<Preview> {
    let (trigger, _) = super::get(p, account, id).await?;
    preview_new(
        sample,
        transform.or(trigger.transform.clone()),
        identifier.unwrap_or(trigger.identifier),
    )
    .await
}

/// `preview`, for a trigger not made yet: its transform (none: the
/// sample's own top-level contact fields) and identifier.
pub async fn preview_new(
    sample: &Value,
    transform: Option<String>,
    identifier: Identifier,
) -> Result<Preview> {
    let Value::Object(fields_of) = sample else {
        return Err(Error::invalid(
            "invalid_sample",
            "sample must be a JSON object, like the bodies this trigger receives",
        ));
    };
    let leaves: Vec<LeafPath> = crate::transforms::leaf_paths(sample)
        .into_iter()
        .map(|(path, value)| LeafPath { path, value })
        .collect();
    let paths = serde_json::to_value(&leaves).expect("serialisable");
    let source = transform.filter(|s| !s.trim().is_empty());
    let fields = match &source {
        Some(s) => super::compile(s)
            .await?
            .evaluate(fields_of)
            .await
            .map_err(|e| e.into_error("evaluate a transform"))?
            .map_err(|e| {
                Error::invalid("transform_failed", format!("transform {e}"))
                    .with_details(json!({"field": "transform", "line": e.line, "column": e.column, "paths": paths}))
            })?,
        None => crate::transforms::direct(fields_of).map_err(|e| {
            Error::invalid("transform_failed", format!("{}: {}", e.target, e.message))
                .with_details(json!({"paths": paths}))
        })?,
    };
    let changes = Changes::parse(fields)
        .map_err(|m| Error::invalid("invalid_contact", m).with_details(json!({"paths": paths})))?;
    let contact = PreviewContact {
        email: changes.email.as_ref().map(|e| e.to_string()),
        phone_number: changes.phone_number.as_ref().map(|n| n.to_string()),
        name: changes.name,
        first_name: changes.first_name,
        last_name: changes.last_name,
        fields: changes.fields,
    };
    let found = match identifier {
        Identifier::Email => contact.email.is_some(),
        Identifier::PhoneNumber => contact.phone_number.is_some(),
    };
    if !found {
        let name = identifier.as_str();
        return Err(Error::invalid(
            "missing_identifier",
            format!("the sample yields no {name}, the trigger's identifier"),
        )
        .with_details(json!({"contact": contact, "paths": paths})));
    }
    Ok(Preview {
        contact,
        identifier,
        paths: leaves,
    })
}
