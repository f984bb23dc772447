//! Checks of what a trigger is made of: its identifier, transform and actions.

use serde_json::{Value, json};

use crate::Platform;
use crate::collections;
use crate::contacts::Identifier;
use crate::error::Error;
use crate::transforms::Transform;

use super::*;

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
    if source.chars().count() > MAX_TRANSFORM {
        return Err(Error::invalid(
            "invalid_transform",
            format!("the transform is longer than {MAX_TRANSFORM} characters"),
        )
        .with_details(json!({"field": "transform"})));
    }
    Transform::compile_bounded(source.to_string())
        .await
        .map_err(|e| e.into_error("compile a transform"))?
        .map(|(t, _)| t)
        .map_err(|e| {
            Error::invalid("invalid_transform", format!("transform {e}"))
                .with_details(json!({"field": "transform", "line": e.line, "column": e.column}))
        })
}

/// Field names a message template may use: `{{email}}`, `{{fields.key}}`...
pub(super) fn check_template(template: &str) -> Result<(), String> {
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
        // Fields the action does not have are refused (`deny_unknown_fields`):
        // a typo would otherwise be ignored.
        let action: Action =
            serde_json::from_value(value.clone()).map_err(|e| fail(e.to_string()))?;
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
                check_template(template).map_err(fail)?;
                let found = match crate::ids::WebhookId::parse(webhook_id) {
                    Some(id) => match crate::webhooks::get(platform, account, &id).await {
                        Ok(_) => true,
                        Err(Error::NotFound(_)) => false,
                        Err(e) => return Err(e),
                    },
                    None => false,
                };
                if !found {
                    return Err(fail(format!("webhook {webhook_id:?} does not exist")));
                }
            }
            Action::PublishEvent { event } => {
                crate::webhooks::check_event_name(event).map_err(fail)?
            }
        }
        actions.push(action);
    }
    Ok(actions)
}
