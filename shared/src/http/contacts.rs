//! `/v1/contacts`: find a contact by email or phone number, page through
//! them, get one.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

use super::answer;
use super::views::{ContactView, Page};
use crate::Platform;
use crate::contacts::{Contact, Email, Identifier, PhoneNumber};
use crate::error::decoded;
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, Path, Query};
use crate::ids::ContactId;

pub(crate) fn routes() -> Routes {
    Routes::new().routes(routes!(lookup)).routes(routes!(show))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Lookup {
    /// Find the contact with this email (not with phone_number). The
    /// pattern is what contacts keep: a dotted domain under a top-level
    /// domain, no quoted part.
    #[param(format = Email, max_length = 254,
        pattern = r#"^(?=[^@]{1,64}@)[^\s@<>,;".]+(?:\.[^\s@<>,;".]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$"#)]
    email: Option<String>,
    /// Find the contact with this phone number (not with email). The
    /// pattern is the form contacts keep (digits with the country code);
    /// written with punctuation (`+1 (215) 555-6677`, `0044 20 7946 0958`,
    /// ten North American digits) it is found too.
    #[param(pattern = r"^\+?[1-9][0-9]{7,14}$")]
    phone_number: Option<String>,
    /// Without email or phone_number: contacts a page.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<usize>,
    /// Without email or phone_number: `next_cursor` of the page before.
    cursor: Option<String>,
}

/// Find a contact by email or phone number; with neither, page through contacts
///
/// `?email=` or `?phone_number=` answers that contact (or 404); without
/// either, a page of contacts in id order.
#[utoipa::path(get, operation_id = "find_contacts", path = "/v1/contacts", tag = "contact", params(Lookup),
    responses((status = 200, description = "the contact, or a page of contacts",
               body = inline(ContactOrPage)),
              (status = 404, description = "no contact has this email or phone number", body = ErrorBody),
              (status = 422, description = "the email or phone number cannot be one, or limit is out of range", body = ErrorBody)))]
async fn lookup(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Query(q): Query<Lookup>,
) -> Result<Response, ApiError> {
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
            let data = all.iter().map(ContactView::from).collect();
            return Ok(answer(StatusCode::OK, &Page::new(data, found.next_cursor)));
        }
    };
    let (contact, _) = crate::contacts::find(&p, &account, by, &value)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(answer(StatusCode::OK, &ContactView::from(&contact)))
}

/// One contact, or a page of them (the schema of `GET /v1/contacts`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ContactOrPage<'a> {
    One(ContactView<'a>),
    Page(Page<ContactView<'a>>),
}

/// Get a contact
#[utoipa::path(get, operation_id = "get_contact", path = "/v1/contacts/{id}", tag = "contact", params(("id" = inline(ContactId), Path)),
    responses((status = 200, description = "the contact", body = ContactView),
              (status = 404, description = "no such contact in this account", body = ErrorBody)))]
async fn show(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = ContactId::parse(&id).ok_or_else(|| ApiError::not_found("contact"))?;
    let (contact, _) = crate::contacts::get(&p, &account, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(answer(StatusCode::OK, &ContactView::from(&contact)))
}
