//! `/v1/campaigns`: webhook campaigns (Mixpanel's webhook messages), their
//! runs, test sends and attempt log.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

use super::answer;
use crate::Platform;
use crate::campaigns::run::{BatchAttempt, RunView, TestOutcome};
use crate::campaigns::{self, Campaign, Schedule};
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, Json, PageParams, Path, Query};
use crate::http::views::Page;
use crate::ids::{CampaignId, RunId};

type P = State<Arc<Platform>>;
type Answer = Result<Response, ApiError>;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(index, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(run_now))
        .routes(routes!(test))
        .routes(routes!(runs))
        .routes(routes!(attempts))
}

fn campaign_id(text: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(text).ok_or_else(|| ApiError::not_found("campaign"))
}

/// A campaign as sent.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)]
struct CampaignInput {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Where matched users are posted (https; http where private targets
    /// are allowed).
    #[schema(min_length = 1, max_length = 2048)]
    url: String,
    /// CEL over `user`, `now`, `did(event, days)`, `count(event, days)`,
    /// `time(value)`; `true` (every profile) when absent.
    #[serde(rename = "where")]
    #[schema(min_length = 1, max_length = 4096)]
    criteria: Option<String>,
    /// `{"type": "asap"}`; `{"type": "scheduled", "at": "09:00", "days":
    /// ["wed"], "every_weeks": 1, "timezone": "America/Los_Angeles"}`;
    /// `{"type": "recurring", "every": "daily|weekly|monthly|asap", "at",
    /// "days", "day_of_month", "timezone", "limit": {"max_per_user",
    /// "min_interval"}}`.
    #[schema(value_type = Object)]
    schedule: Value,
    /// `true` when absent.
    active: Option<bool>,
}

/// Fields to change; absent ones are kept.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)]
struct CampaignPatch {
    name: Option<String>,
    url: Option<String>,
    #[serde(rename = "where")]
    criteria: Option<String>,
    #[schema(value_type = Object)]
    schedule: Option<Value>,
    active: Option<bool>,
}

/// A campaign, as answered.
#[derive(Serialize, ToSchema)]
#[schema(as = Campaign)]
struct CampaignView<'a> {
    id: &'a CampaignId,
    name: &'a str,
    url: &'a str,
    #[serde(rename = "where")]
    criteria: &'a str,
    #[schema(value_type = Object)]
    schedule: &'a Schedule,
    active: bool,
    /// When it runs next (active campaigns).
    #[schema(required = true)]
    next_run_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    last_run_id: Option<&'a RunId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<'a> From<&'a Campaign> for CampaignView<'a> {
    fn from(c: &'a Campaign) -> Self {
        Self {
            id: &c.id,
            name: &c.name,
            url: &c.url,
            criteria: &c.criteria,
            schedule: &c.schedule,
            active: c.active,
            next_run_at: c.next_run_at,
            last_run_id: c.last_run_id.as_ref(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Create a campaign
#[utoipa::path(post, operation_id = "create_campaign", path = "/v1/campaigns", tag = "campaign",
    request_body = CampaignInput,
    responses((status = 201, description = "made", body = CampaignView),
              (status = 403, description = "the account has 100 campaigns (`campaign_limit_reached`)", body = ErrorBody),
              (status = 422, description = "a field is invalid: the message names it; `where` with its column (`invalid_where`)", body = ErrorBody)))]
async fn create(State(p): P, Account(a): Account, Json(body): Json<Value>) -> Answer {
    let c = campaigns::create(&p, &a, &body).await?;
    Ok(answer(StatusCode::CREATED, &CampaignView::from(&c)))
}

/// List campaigns, oldest first
#[utoipa::path(get, operation_id = "list_campaigns", path = "/v1/campaigns", tag = "campaign", params(PageParams),
    responses((status = 200, description = "a page of campaigns", body = Page<CampaignView>)))]
async fn index(State(p): P, Account(a): Account, Query(q): Query<PageParams>) -> Answer {
    let (all, next) = campaigns::page(&p, &a, q.limit()?, q.cursor).await?;
    let data: Vec<_> = all.iter().map(CampaignView::from).collect();
    Ok(answer(StatusCode::OK, &Page::new(data, next)))
}

/// Get a campaign
#[utoipa::path(get, operation_id = "get_campaign", path = "/v1/campaigns/{id}", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    responses((status = 200, description = "found", body = CampaignView),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn show(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let (c, _) = campaigns::get(&p, &a, &campaign_id(&id)?).await?;
    Ok(answer(StatusCode::OK, &CampaignView::from(&c)))
}

/// Change a campaign
///
/// A new `where` is new criteria: users sent under the old may be sent
/// again.
#[utoipa::path(patch, operation_id = "update_campaign", path = "/v1/campaigns/{id}", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    request_body = CampaignPatch,
    responses((status = 200, description = "changed", body = CampaignView),
              (status = 404, description = "no such campaign in this account", body = ErrorBody),
              (status = 422, description = "a field is invalid: the message names it", body = ErrorBody)))]
async fn update(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Answer {
    let c = campaigns::update(&p, &a, &campaign_id(&id)?, &body).await?;
    Ok(answer(StatusCode::OK, &CampaignView::from(&c)))
}

/// Activate a campaign (it runs on its schedule)
#[utoipa::path(post, operation_id = "activate_campaign", path = "/v1/campaigns/{id}/activate", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    responses((status = 200, description = "active", body = CampaignView),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn activate(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let c = campaigns::set_active(&p, &a, &campaign_id(&id)?, true).await?;
    Ok(answer(StatusCode::OK, &CampaignView::from(&c)))
}

/// Deactivate a campaign (it no longer runs on its schedule)
#[utoipa::path(post, operation_id = "deactivate_campaign", path = "/v1/campaigns/{id}/deactivate", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    responses((status = 200, description = "inactive", body = CampaignView),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn deactivate(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let c = campaigns::set_active(&p, &a, &campaign_id(&id)?, false).await?;
    Ok(answer(StatusCode::OK, &CampaignView::from(&c)))
}

/// Delete a campaign
///
/// Its runs, users' records and attempt log are removed in the background.
#[utoipa::path(delete, operation_id = "delete_campaign", path = "/v1/campaigns/{id}", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    responses((status = 204, description = "deleted"),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    campaigns::delete(&p, &a, &campaign_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A run as started.
#[derive(Serialize, ToSchema)]
struct Started {
    id: RunId,
    campaign_id: CampaignId,
    started_at: DateTime<Utc>,
}

/// Run a campaign now
///
/// Matches its audience and posts who is not yet sent, as a scheduled run
/// would; its schedule is unchanged. 409 while a run of it is going.
#[utoipa::path(post, operation_id = "run_campaign", path = "/v1/campaigns/{id}/run", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    responses((status = 202, description = "started: follow it in its runs", body = Started),
              (status = 404, description = "no such campaign in this account", body = ErrorBody),
              (status = 409, description = "a run of it is going (`campaign_running`)", body = ErrorBody)))]
async fn run_now(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let run = campaigns::run::run_now(&p, &a, &campaign_id(&id)?).await?;
    Ok(answer(
        StatusCode::ACCEPTED,
        &Started {
            id: run.id,
            campaign_id: run.campaign_id,
            started_at: run.started_at,
        },
    ))
}

/// Send 5 random profiles now
///
/// Posted with `X-Hookline-Test: true`; nobody is marked sent.
#[utoipa::path(post, operation_id = "test_campaign", path = "/v1/campaigns/{id}/test", tag = "campaign", params(("id" = inline(CampaignId), Path)),
    responses((status = 200, description = "what was posted and what came back", body = TestOutcome),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn test(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let outcome = campaigns::run::test(&p, &a, &campaign_id(&id)?).await?;
    Ok(answer(StatusCode::OK, &outcome))
}

/// The campaign's runs, newest first: matched, sent, failed, pending
#[utoipa::path(get, operation_id = "list_campaign_runs", path = "/v1/campaigns/{id}/runs", tag = "campaign",
    params(("id" = inline(CampaignId), Path), PageParams),
    responses((status = 200, description = "a page of runs", body = Page<RunView>),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn runs(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Answer {
    let id = campaign_id(&id)?;
    campaigns::get(&p, &a, &id).await?;
    let (data, next) = campaigns::run::runs(&p, &a, &id, q.limit()?, q.cursor).await?;
    Ok(answer(StatusCode::OK, &Page::new(data, next)))
}

/// The campaign's posts, newest first
#[utoipa::path(get, operation_id = "list_campaign_attempts", path = "/v1/campaigns/{id}/attempts", tag = "campaign",
    params(("id" = inline(CampaignId), Path), PageParams),
    responses((status = 200, description = "a page of attempts", body = Page<BatchAttempt>),
              (status = 404, description = "no such campaign in this account", body = ErrorBody)))]
async fn attempts(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Answer {
    let id = campaign_id(&id)?;
    campaigns::get(&p, &a, &id).await?;
    let (data, next) = campaigns::run::attempts(&p, &a, &id, q.limit()?, q.cursor).await?;
    Ok(answer(StatusCode::OK, &Page::new(data, next)))
}
