use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use super::views::ContactView;
use crate::Platform;
use crate::contacts::{Contact, Email, Identifier, PhoneNumber};
use crate::error::decoded;
use crate::http::ApiError;
use crate::http::extract::{Account, Path, Query};

pub fn router() -> Router<Arc<Platform>> {
    Router::new()
        .route("/v1/contacts", get(lookup))
        .route("/v1/contacts/{id}", get(show))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    email: Option<String>,
    phone_number: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `?email=` or `?phone_number=` finds one contact; neither pages through all.
async fn lookup(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Query(q): Query<Lookup>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (by, value) = match (q.email, q.phone_number) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give email or phone_number, not both",
            ));
        }
        (Some(e), None) => (
            Identifier::Email,
            Email::parse(&e)
                .map_err(|m| ApiError::invalid("invalid_email", m))?
                .to_string(),
        ),
        (None, Some(n)) => (
            Identifier::PhoneNumber,
            PhoneNumber::parse(&n)
                .map_err(|m| ApiError::invalid("invalid_phone_number", m))?
                .to_string(),
        ),
        (None, None) => {
            let page = crate::http::extract::PageParams {
                limit: q.limit,
                cursor: q.cursor,
            };
            let found = crate::contacts::page(&p, &account, page.limit()?, page.cursor).await?;
            let all: Vec<Contact> = decoded(found.items, "decode contact")?;
            let data: Vec<ContactView> = all.iter().map(ContactView::from).collect();
            return Ok(axum::Json(
                json!({"data": data, "next_cursor": found.next_cursor}),
            ));
        }
    };
    let (contact, _) = crate::contacts::find(&p, &account, by, &value)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(axum::Json(
        serde_json::to_value(ContactView::from(&contact)).expect("serialisable"),
    ))
}

async fn show(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (contact, _) = crate::contacts::get(&p, &account, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(axum::Json(
        serde_json::to_value(ContactView::from(&contact)).expect("serialisable"),
    ))
}
