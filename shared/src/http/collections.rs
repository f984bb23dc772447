//! `/v1/lists` and `/v1/sequences`: one set of handlers for both kinds,
//! documented once per kind (a macro writes each kind's routes).

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

use super::answer;
use super::views::{CollectionView, ContactView, Page, SequenceMember};
use crate::Platform;
use crate::collections::Kind;
use crate::contacts::Contact;
use crate::http::ApiError;
use crate::http::extract::{Account, Json, PageParams, Path, Query};
use crate::ids::{ListId, SequenceId};

/// A new list or sequence.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    /// Trimmed; not blank, no control characters.
    #[schema(value_type = crate::collections::Name)]
    name: String,
}

type P = State<Arc<Platform>>;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(lists::{index, create}))
        .routes(routes!(lists::{show, delete}))
        .routes(routes!(list_members))
        .routes(routes!(sequences::{index, create}))
        .routes(routes!(sequences::{show, delete}))
        .routes(routes!(sequence_members))
}

async fn index(p: &Platform, kind: Kind, a: &str, q: PageParams) -> Result<Response, ApiError> {
    let (all, next) = crate::collections::page(p, kind, a, q.limit()?, q.cursor).await?;
    let data = all.iter().map(CollectionView::from).collect();
    Ok(answer(StatusCode::OK, &Page::new(data, next)))
}

async fn create(
    p: &Platform,
    kind: Kind,
    a: &str,
    body: NewCollection,
) -> Result<Response, ApiError> {
    let c = crate::collections::create(p, kind, a, &body.name).await?;
    Ok(answer(StatusCode::CREATED, &CollectionView::from(&c)))
}

async fn show(p: &Platform, kind: Kind, a: &str, id: &str) -> Result<Response, ApiError> {
    let c = crate::collections::get(p, kind, a, id).await?;
    Ok(answer(StatusCode::OK, &CollectionView::from(&c)))
}

async fn delete(p: &Platform, kind: Kind, a: &str, id: &str) -> Result<StatusCode, ApiError> {
    crate::collections::delete(p, kind, a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes one kind's routes: `$Id` is the kind's id type, parsed from the
/// path (an id that cannot be one is not found, as one that does not exist).
macro_rules! collection_routes {
    ($module:ident, $kind:expr, $Id:ident, $tag:literal, $base:literal, $one:literal,
     [$list:literal, $new:literal, $get:literal, $delete:literal],
     [$list_op:literal, $new_op:literal, $get_op:literal, $delete_op:literal]) => {
        mod $module {
            use super::*;

            fn id(text: &str) -> Result<$Id, ApiError> {
                $Id::parse(text).ok_or_else(|| ApiError::not_found($tag))
            }

            #[utoipa::path(get, path = $base, tag = $tag, summary = $list, operation_id = $list_op, params(PageParams),
                responses((status = 200, description = "a page of them, oldest first", body = Page<CollectionView>)))]
            pub(super) async fn index(State(p): P, Account(a): Account, Query(q): Query<PageParams>) -> Result<Response, ApiError> {
                super::index(&p, $kind, &a, q).await
            }

            #[utoipa::path(post, path = $base, tag = $tag, summary = $new, operation_id = $new_op, request_body = NewCollection,
                responses((status = 201, description = "made", body = CollectionView)))]
            pub(super) async fn create(State(p): P, Account(a): Account, Json(body): Json<NewCollection>) -> Result<Response, ApiError> {
                super::create(&p, $kind, &a, body).await
            }

            #[utoipa::path(get, path = $one, tag = $tag, summary = $get, operation_id = $get_op, params(("id" = inline($Id), Path)),
                responses((status = 200, description = "found", body = CollectionView),
                          (status = 404, description = "no such one in this account", body = crate::http::error::ErrorBody)))]
            pub(super) async fn show(State(p): P, Account(a): Account, Path(i): Path<String>) -> Result<Response, ApiError> {
                super::show(&p, $kind, &a, &id(&i)?).await
            }

            #[utoipa::path(delete, path = $one, tag = $tag, summary = $delete, operation_id = $delete_op, params(("id" = inline($Id), Path)),
                responses((status = 204, description = "deleted; its memberships are removed in the background"),
                          (status = 404, description = "no such one in this account", body = crate::http::error::ErrorBody)))]
            pub(super) async fn delete(State(p): P, Account(a): Account, Path(i): Path<String>) -> Result<StatusCode, ApiError> {
                super::delete(&p, $kind, &a, &id(&i)?).await
            }
        }
    };
}

collection_routes!(
    lists,
    Kind::List,
    ListId,
    "list",
    "/v1/lists",
    "/v1/lists/{id}",
    [
        "List contact lists",
        "Create a contact list",
        "Get a contact list",
        "Delete a contact list"
    ],
    ["list_lists", "create_list", "get_list", "delete_list"]
);
collection_routes!(
    sequences,
    Kind::Sequence,
    SequenceId,
    "sequence",
    "/v1/sequences",
    "/v1/sequences/{id}",
    [
        "List sequences",
        "Create a sequence",
        "Get a sequence",
        "Delete a sequence"
    ],
    [
        "list_sequences",
        "create_sequence",
        "get_sequence",
        "delete_sequence"
    ]
);

/// Contacts in a list
#[utoipa::path(get, operation_id = "list_list_contacts", path = "/v1/lists/{id}/contacts", tag = "list",
    params(("id" = inline(ListId), Path), PageParams),
    responses((status = 200, description = "a page of contacts, in id order", body = Page<ContactView>),
              (status = 404, description = "no such list in this account", body = crate::http::error::ErrorBody)))]
async fn list_members(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Result<Response, ApiError> {
    let id = ListId::parse(&id).ok_or_else(|| ApiError::not_found("list"))?;
    let page = crate::collections::members(&p, Kind::List, &a, &id, q.limit()?, q.cursor).await?;
    // The contacts themselves, read concurrently; one deleted meanwhile is left out.
    let ids = page.items.iter().map(|i| i.key.sk.as_str());
    let found: Vec<Contact> =
        futures::future::try_join_all(ids.map(|id| crate::contacts::get(&p, &a, id)))
            .await?
            .into_iter()
            .flatten()
            .map(|(c, _)| c)
            .collect();
    let data = found.iter().map(ContactView::from).collect();
    Ok(answer(StatusCode::OK, &Page::new(data, page.next_cursor)))
}

/// Contacts in a sequence, each with its status: active or stopped
#[utoipa::path(get, operation_id = "list_sequence_contacts", path = "/v1/sequences/{id}/contacts", tag = "sequence",
    params(("id" = inline(SequenceId), Path), PageParams),
    responses((status = 200, description = "a page of members, in contact id order", body = Page<SequenceMember>),
              (status = 404, description = "no such sequence in this account", body = crate::http::error::ErrorBody)))]
async fn sequence_members(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Result<Response, ApiError> {
    let id = SequenceId::parse(&id).ok_or_else(|| ApiError::not_found("sequence"))?;
    let page =
        crate::collections::members(&p, Kind::Sequence, &a, &id, q.limit()?, q.cursor).await?;
    let data: Vec<SequenceMember> = crate::error::decoded(page.items, "decode sequence member")?;
    Ok(answer(StatusCode::OK, &Page::new(data, page.next_cursor)))
}
