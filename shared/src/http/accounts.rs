//! `/v1/operator/accounts` (the operator's: accounts, their limits and
//! usage, suspend and resume), and an account's own `/v1/keys` and
//! `/v1/usage`.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use super::answer;
use super::views::Page;
use crate::Platform;
use crate::accounts::usage::Usage;
use crate::accounts::{self, Account, AccountPatch, Effective, KeyRecord, Limits, Status};
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account as Caller, Json, Operator, PageParams, Path, Query};
use crate::ids::KeyId;

type P = State<Arc<Platform>>;
type Answer = Result<Response, ApiError>;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account, delete_account))
        .routes(routes!(suspend_account))
        .routes(routes!(make_account_key))
        .routes(routes!(resume_account))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(usage))
}

/// An account as the operator sees it.
#[derive(Serialize, ToSchema)]
struct AccountView {
    id: String,
    name: String,
    status: Status,
    created_at: chrono::DateTime<chrono::Utc>,
    /// The limits in force (`null`: none).
    limits: Effective,
    usage: Usage,
    /// Its first admin key: in the answer that made the account only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    admin_key: Option<String>,
}

async fn view(
    p: &Platform,
    a: &Account,
    admin_key: Option<String>,
) -> Result<AccountView, ApiError> {
    Ok(AccountView {
        id: a.id.clone(),
        name: a.name.clone(),
        status: a.status,
        created_at: a.created_at,
        limits: a.limits.effective(&p.settings),
        usage: accounts::usage::usage(p, a).await?,
        admin_key,
    })
}

fn account_id(text: &str) -> Result<&str, ApiError> {
    accounts::parse_id(text)
        .ok_or_else(|| ApiError::not_found_message(&format!("account {text} not found")))
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    #[schema(value_type = crate::collections::Name)]
    name: String,
    /// Each left out is the global default; `null` is none.
    #[serde(default, deserialize_with = "accounts::limits_object")]
    #[schema(value_type = Option<crate::accounts::LimitsInput>)]
    limits: Limits,
}

/// Create an account
///
/// Answers it with its first admin key, shown this once.
#[utoipa::path(post, path = "/v1/operator/accounts", tag = "operator", operation_id = "create_account",
    security(("operatorKey" = [])), request_body = NewAccount,
    responses((status = 201, description = "made, with admin_key", body = AccountView),
              (status = 422, description = "the name or a limit is invalid", body = ErrorBody)))]
async fn create_account(State(p): P, _: Operator, Json(body): Json<NewAccount>) -> Answer {
    let (account, key) = accounts::create(&p, &body.name, body.limits).await?;
    Ok(answer(
        StatusCode::CREATED,
        &view(&p, &account, Some(key)).await?,
    ))
}

/// List accounts, with their usage
#[utoipa::path(get, path = "/v1/operator/accounts", tag = "operator", operation_id = "list_accounts",
    security(("operatorKey" = [])), params(PageParams),
    responses((status = 200, description = "a page of accounts, in id order", body = Page<AccountView>)))]
async fn list_accounts(State(p): P, _: Operator, Query(q): Query<PageParams>) -> Answer {
    let (all, next) = accounts::page(&p, q.limit()?, q.cursor).await?;
    let views = futures::future::try_join_all(all.iter().map(|a| view(&p, a, None))).await?;
    Ok(answer(StatusCode::OK, &Page::new(views, next)))
}

/// Get an account, with its usage
#[utoipa::path(get, path = "/v1/operator/accounts/{id}", tag = "operator", operation_id = "get_account",
    security(("operatorKey" = [])), params(("id" = String, Path, description = "`acct_default` or `acct_...`")),
    responses((status = 200, description = "found", body = AccountView),
              (status = 404, description = "no such account", body = ErrorBody)))]
async fn get_account(State(p): P, _: Operator, Path(id): Path<String>) -> Answer {
    let (account, _) = accounts::get(&p, account_id(&id)?).await?;
    Ok(answer(StatusCode::OK, &view(&p, &account, None).await?))
}

/// Change an account's name or limits
#[utoipa::path(patch, path = "/v1/operator/accounts/{id}", tag = "operator", operation_id = "update_account",
    security(("operatorKey" = [])), params(("id" = String, Path)), request_body = AccountPatch,
    responses((status = 200, description = "changed", body = AccountView),
              (status = 404, description = "no such account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody),
              (status = 422, description = "the name or a limit is invalid", body = ErrorBody)))]
async fn update_account(
    State(p): P,
    _: Operator,
    Path(id): Path<String>,
    Json(body): Json<AccountPatch>,
) -> Answer {
    let account = accounts::update(&p, account_id(&id)?, body, None).await?;
    Ok(answer(StatusCode::OK, &view(&p, &account, None).await?))
}

/// Delete an account
///
/// At once its keys open nothing and its trigger URLs answer 404 (within a
/// second on AWS); what it held is removed in the background, page by page.
/// The default account cannot be deleted (suspend it instead).
#[utoipa::path(delete, path = "/v1/operator/accounts/{id}", tag = "operator", operation_id = "delete_account",
    security(("operatorKey" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted; its data goes in the background"),
              (status = 404, description = "no such account", body = ErrorBody),
              (status = 409, description = "the default account (`default_account`), or changed meanwhile: retry", body = ErrorBody)))]
async fn delete_account(
    State(p): P,
    _: Operator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    accounts::delete(&p, account_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(p: &Platform, id: &str, status: Status) -> Answer {
    let account =
        accounts::update(p, account_id(id)?, AccountPatch::default(), Some(status)).await?;
    Ok(answer(StatusCode::OK, &view(p, &account, None).await?))
}

/// Suspend an account
///
/// Its trigger URLs answer 403 `account_suspended` (within a second on
/// AWS); its admin routes still answer; nothing it holds is lost.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/suspend", tag = "operator", operation_id = "suspend_account",
    security(("operatorKey" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "suspended", body = AccountView),
              (status = 404, description = "no such account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn suspend_account(State(p): P, _: Operator, Path(id): Path<String>) -> Answer {
    set_status(&p, &id, Status::Suspended).await
}

/// Resume a suspended account
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/resume", tag = "operator", operation_id = "resume_account",
    security(("operatorKey" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "active", body = AccountView),
              (status = 404, description = "no such account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn resume_account(State(p): P, _: Operator, Path(id): Path<String>) -> Answer {
    set_status(&p, &id, Status::Active).await
}

/// A new admin key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// What it is for: "CI", "Zapier"...
    #[schema(value_type = crate::collections::Name)]
    name: String,
}

/// An admin key just made: the key itself, this once.
#[derive(Serialize, ToSchema)]
struct NewKeyView {
    #[serde(flatten)]
    record: KeyRecord,
    key: String,
}

/// Make an admin key of this account
///
/// The key is in this answer only: it is kept hashed.
#[utoipa::path(post, path = "/v1/keys", tag = "key", operation_id = "create_key", request_body = NewKey,
    responses((status = 201, description = "made, with the key", body = NewKeyView),
              (status = 403, description = "the account holds 50 keys (`key_limit_reached`)", body = ErrorBody)))]
async fn create_key(State(p): P, Caller(a): Caller, Json(body): Json<NewKey>) -> Answer {
    let (record, key) = accounts::create_key(&p, &a, &body.name).await?;
    Ok(answer(StatusCode::CREATED, &NewKeyView { record, key }))
}

/// Make an admin key of an account
///
/// For an operator to give an account a way back in (its keys lost, say);
/// the key is in this answer only.
#[utoipa::path(post, path = "/v1/operator/accounts/{id}/keys", tag = "operator", operation_id = "make_account_key",
    security(("operatorKey" = [])), params(("id" = String, Path)), request_body = NewKey,
    responses((status = 201, description = "made, with the key", body = NewKeyView),
              (status = 403, description = "the account holds 50 keys (`key_limit_reached`)", body = ErrorBody),
              (status = 404, description = "no such account", body = ErrorBody)))]
async fn make_account_key(
    State(p): P,
    _: Operator,
    Path(id): Path<String>,
    Json(body): Json<NewKey>,
) -> Answer {
    let (account, _) = accounts::get(&p, account_id(&id)?).await?;
    let (record, key) = accounts::create_key(&p, &account.id, &body.name).await?;
    Ok(answer(StatusCode::CREATED, &NewKeyView { record, key }))
}

/// This account's admin keys (never the keys themselves)
#[utoipa::path(get, path = "/v1/keys", tag = "key", operation_id = "list_keys", params(PageParams),
    responses((status = 200, description = "a page of keys, oldest first", body = Page<KeyRecord>)))]
async fn list_keys(State(p): P, Caller(a): Caller, Query(q): Query<PageParams>) -> Answer {
    let (keys, next) = accounts::list_keys(&p, &a, q.limit()?, q.cursor).await?;
    Ok(answer(StatusCode::OK, &Page::new(keys, next)))
}

/// Revoke an admin key, at once
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "key", operation_id = "revoke_key",
    params(("id" = inline(KeyId), Path)),
    responses((status = 204, description = "revoked"),
              (status = 404, description = "no such key in this account", body = ErrorBody),
              (status = 409, description = "the account's only key (`last_key`): make another first", body = ErrorBody)))]
async fn revoke_key(
    State(p): P,
    Caller(a): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = KeyId::parse(&id)
        .ok_or_else(|| ApiError::not_found_message(&format!("admin key {id} not found")))?;
    accounts::revoke_key(&p, &a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This account's usage, against its limits
#[utoipa::path(get, path = "/v1/usage", tag = "key", operation_id = "get_usage",
    responses((status = 200, description = "counts and limits", body = Usage)))]
async fn usage(State(p): P, Caller(a): Caller) -> Answer {
    let (account, _) = accounts::get(&p, &a).await?;
    Ok(answer(
        StatusCode::OK,
        &accounts::usage::usage(&p, &account).await?,
    ))
}
