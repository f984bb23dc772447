//! `/v1/lists` and `/v1/sequences`: one set of routes for both kinds.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use super::views::ContactView;
use crate::Platform;
use crate::collections::Kind;
use crate::http::ApiError;
use crate::http::extract::{Account, Json, PageParams, Path, Query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCollection {
    name: String,
}

type P = State<Arc<Platform>>;

pub fn router(kind: Kind) -> Router<Arc<Platform>> {
    let base = format!("/v1/{}s", kind.word());
    Router::new()
        .route(
            &base,
            get(move |State(p): P, Account(a): Account, Query(q): Query<PageParams>| async move {
                let (all, next) = crate::collections::page(&p, kind, &a, q.limit()?, q.cursor).await?;
                Ok::<_, ApiError>(axum::Json(json!({"data": all, "next_cursor": next})))
            })
            .post(move |State(p): P, Account(a): Account, Json(body): Json<NewCollection>| async move {
                let c = crate::collections::create(&p, kind, &a, &body.name).await?;
                Ok::<_, ApiError>((StatusCode::CREATED, axum::Json(c)))
            }),
        )
        .route(
            &format!("{base}/{{id}}"),
            get(move |State(p): P, Account(a): Account, Path(id): Path<String>| async move {
                Ok::<_, ApiError>(axum::Json(crate::collections::get(&p, kind, &a, &id).await?))
            })
            .delete(move |State(p): P, Account(a): Account, Path(id): Path<String>| async move {
                crate::collections::delete(&p, kind, &a, &id).await?;
                Ok::<_, ApiError>(StatusCode::NO_CONTENT)
            }),
        )
        .route(
            &format!("{base}/{{id}}/contacts"),
            get(move |State(p): P, Account(a): Account, Path(id): Path<String>, Query(q): Query<PageParams>| async move {
                let page = crate::collections::members(&p, kind, &a, &id, q.limit()?, q.cursor).await?;
                let data = match kind {
                    Kind::List => contacts_of(&p, &a, page.items.iter().map(|i| i.key.sk.as_str())).await?,
                    // A sequence member carries its status: active or stopped.
                    Kind::Sequence => page.items.iter().map(|i| sequence_member(&i.body)).collect(),
                };
                Ok::<_, ApiError>(axum::Json(json!({"data": data, "next_cursor": page.next_cursor})))
            }),
        )
}

/// The contacts themselves, read concurrently; one deleted meanwhile is left out.
async fn contacts_of(
    p: &Platform,
    account: &str,
    ids: impl Iterator<Item = &str>,
) -> Result<Vec<Value>, ApiError> {
    let found =
        futures::future::try_join_all(ids.map(|id| crate::contacts::get(p, account, id))).await?;
    Ok(found
        .into_iter()
        .flatten()
        .map(|(c, _)| serde_json::to_value(ContactView::from(&c)).expect("serialisable"))
        .collect())
}

/// A sequence member as answered: who, and where they are in it (the
/// record also keeps what only the domain reads).
fn sequence_member(record: &Value) -> Value {
    let mut shown = serde_json::Map::new();
    for field in [
        "contact_id",
        "email",
        "phone_number",
        "name",
        "status",
        "added_at",
        "stopped_at",
    ] {
        shown.insert(
            field.into(),
            record.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(shown)
}
