use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::Platform;
use crate::http::ApiError;
use crate::http::extract::{Account, Json, PageParams, Query};

pub fn router() -> Router<Arc<Platform>> {
    Router::new()
        .route("/v1/lists", get(index).post(create))
        .route("/v1/lists/{id}", get(show).delete(remove))
        .route("/v1/lists/{id}/contacts", get(contacts))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewList {
    name: String,
}

async fn create(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Json(body): Json<NewList>,
) -> Result<impl IntoResponse, ApiError> {
    let list = super::create(&p, &account, &body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(list)))
}

async fn index(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Query(page): Query<PageParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (lists, next) = super::page(&p, &account, page.limit()?, page.cursor).await?;
    Ok(axum::Json(json!({"data": lists, "next_cursor": next})))
}

async fn show(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(super::get(&p, &account, &id).await?))
}

async fn remove(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    super::delete(&p, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn contacts(
    State(p): State<Arc<Platform>>,
    Account(account): Account,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<impl IntoResponse, ApiError> {
    let found = super::members(&p, &account, &id, page.limit()?, page.cursor).await?;
    let data: Vec<_> = found.items.into_iter().map(|i| i.body).collect();
    Ok(axum::Json(
        json!({"data": data, "next_cursor": found.next_cursor}),
    ))
}
