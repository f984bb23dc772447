//! `/v1/webhooks`: create, list (with usage against the limit), get,
//! update, delete, activate, deactivate, rotate the secret.

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use super::answer;
use crate::Platform;
use crate::delivery::attempts::Attempt;
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, Json, PageParams, Path, Query};
use crate::http::views::Page;
use crate::ids::WebhookId;
use crate::webhooks::{
    self, Channel, ContentType, Disabled, Filters, Method, NewWebhook, PayloadSpec, Webhook,
    WebhookPatch,
};

type P = State<Arc<Platform>>;
type Answer = Result<Response, ApiError>;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(index, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(rotate_secret))
        .routes(routes!(test))
        .routes(routes!(attempts))
        .routes(routes!(stats))
}

/// The event names the account's triggers publish (`publish_event`), which
/// its webhooks may subscribe to beside the known types; read only when
/// `events` name another.
async fn publishable(
    p: &Platform,
    account: &str,
    events: Option<&[String]>,
) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    if !events.is_some_and(webhooks::names_custom) {
        return Ok(names);
    }
    let mut cursor = None;
    loop {
        let (page, next) = crate::triggers::page(p, account, 200, cursor).await?;
        for t in page {
            for a in t.actions {
                if let crate::triggers::Action::PublishEvent { event } = a
                    && !names.contains(&event)
                {
                    names.push(event);
                }
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(names),
        }
    }
}

/// A webhook id from the path; one that cannot be is not found.
pub(super) fn webhook_id(text: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(text).ok_or_else(|| ApiError::not_found("webhook"))
}

/// `none`, or `basic` with its username (the password is never answered).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthView<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
}

/// A channel as answered: no secret, password or token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelView<'a> {
    Web {
        url: &'a str,
        method: Method,
        content_type: ContentType,
        auth: AuthView<'a>,
        /// Whether requests are signed (the secret itself is never answered).
        signed: bool,
    },
    Pushover {
        user_key: &'a str,
        sound: &'a str,
    },
    Twilio {
        account_sid: &'a str,
        from: &'a str,
        to_field: &'a str,
    },
}

/// A webhook, as answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView<'a> {
    id: &'a WebhookId,
    name: &'a str,
    /// Where it goes: the URL, `pushover` or `twilio`.
    endpoint: &'a str,
    channel: ChannelView<'a>,
    events: &'a [String],
    #[schema(value_type = Object)]
    filters: &'a Filters,
    #[schema(required = true)]
    payload: Option<&'a PayloadSpec>,
    #[schema(required = true)]
    rate_limit: Option<u32>,
    log_response_body: bool,
    active: bool,
    /// `active`, `inactive`, or `disabled` (by a 410 or failing too long).
    status: &'static str,
    #[schema(required = true)]
    disabled: Option<&'a Disabled>,
    /// Since when every attempt failed; `null` after a success.
    #[schema(required = true)]
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The new secret, in the answer of a rotation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl<'a> From<&'a Webhook> for WebhookView<'a> {
    fn from(w: &'a Webhook) -> Self {
        let (endpoint, channel) = match &w.channel {
            Channel::Web {
                url,
                method,
                content_type,
                basic_auth,
            } => (
                url.as_str(),
                ChannelView::Web {
                    url,
                    method: *method,
                    content_type: *content_type,
                    auth: match basic_auth {
                        Some(a) => AuthView {
                            kind: "basic",
                            username: Some(&a.username),
                        },
                        None => AuthView {
                            kind: "none",
                            username: None,
                        },
                    },
                    signed: !w.secrets.is_empty(),
                },
            ),
            Channel::Pushover {
                user_key, sound, ..
            } => ("pushover", ChannelView::Pushover { user_key, sound }),
            Channel::Twilio {
                account_sid,
                from,
                to_field,
                ..
            } => (
                "twilio",
                ChannelView::Twilio {
                    account_sid,
                    from,
                    to_field,
                },
            ),
        };
        Self {
            id: &w.id,
            name: &w.name,
            endpoint,
            channel,
            events: &w.events,
            filters: &w.filters,
            payload: w.payload.as_ref(),
            rate_limit: w.rate_limit,
            log_response_body: w.log_response_body,
            active: w.active,
            status: w.status(),
            disabled: w.disabled.as_ref(),
            failing_since: None,
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret: None,
        }
    }
}

impl WebhookView<'_> {
    /// With its failing streak, if it has one.
    fn failing(mut self, health: Option<&webhooks::Health>) -> Self {
        self.failing_since = health.map(|h| h.failing_since);
        self
    }
}

/// How many webhooks the account has, against its limit (`null`: none).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookUsage {
    count: u64,
    #[schema(required = true)]
    limit: Option<u64>,
}

/// A page of webhooks, and the account's usage against its limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList<'a> {
    data: Vec<WebhookView<'a>>,
    #[schema(required = true)]
    next_cursor: Option<String>,
    usage: WebhookUsage,
}

/// Create a webhook
///
/// Past the account's limit, 403 `webhook_limit_reached`.
#[utoipa::path(post, operation_id = "create_webhook", path = "/v1/webhooks", tag = "webhook", request_body = NewWebhook,
    responses((status = 201, description = "made", body = WebhookView),
              (status = 403, description = "the account has as many webhooks as its limit (`webhook_limit_reached`)", body = ErrorBody),
              (status = 422, description = "a field is invalid: the message names it", body = ErrorBody)))]
async fn create(State(p): P, Account(a): Account, Json(input): Json<NewWebhook>) -> Answer {
    let publishable = publishable(&p, &a, Some(&input.events)).await?;
    let w = webhooks::create(&p, &a, input, &publishable).await?;
    Ok(answer(StatusCode::CREATED, &WebhookView::from(&w)))
}

/// List webhooks, with usage against the limit
#[utoipa::path(get, operation_id = "list_webhooks", path = "/v1/webhooks", tag = "webhook", params(PageParams),
    responses((status = 200, description = "a page of webhooks, oldest first", body = WebhookList)))]
async fn index(State(p): P, Account(a): Account, Query(q): Query<PageParams>) -> Answer {
    let (all, next_cursor) = webhooks::page(&p, &a, q.limit()?, q.cursor).await?;
    let ((count, _), limits) = tokio::try_join!(
        async {
            crate::accounts::usage::webhook_count(&p, &a)
                .await
                .map_err(crate::error::Error::from)
        },
        crate::accounts::usage::limits(&p, &a)
    )?;
    let health = webhooks::healths(&p, &a, crate::http::extract::MAX_PAGE.max(all.len())).await?;
    let list = WebhookList {
        data: all
            .iter()
            .map(|w| WebhookView::from(w).failing(health.get(w.id.as_str())))
            .collect(),
        next_cursor,
        usage: WebhookUsage {
            count,
            limit: limits.webhooks,
        },
    };
    Ok(answer(StatusCode::OK, &list))
}

/// Get a webhook
#[utoipa::path(get, operation_id = "get_webhook", path = "/v1/webhooks/{id}", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    responses((status = 200, description = "found", body = WebhookView),
              (status = 404, description = "no such webhook in this account", body = ErrorBody)))]
async fn show(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let id = webhook_id(&id)?;
    let (w, _) = webhooks::get(&p, &a, &id).await?;
    let health = webhooks::health(&p, &a, &id).await?;
    Ok(answer(
        StatusCode::OK,
        &WebhookView::from(&w).failing(health.as_ref()),
    ))
}

/// Change a webhook (absent fields are kept; an absent or blank secret too)
#[utoipa::path(patch, operation_id = "update_webhook", path = "/v1/webhooks/{id}", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    request_body = WebhookPatch,
    responses((status = 200, description = "changed", body = WebhookView),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody),
              (status = 422, description = "a field is invalid: the message names it", body = ErrorBody)))]
async fn update(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Json(input): Json<WebhookPatch>,
) -> Answer {
    let publishable = publishable(&p, &a, input.events.as_deref()).await?;
    let w = webhooks::update(&p, &a, &webhook_id(&id)?, input, &publishable).await?;
    let health = webhooks::health(&p, &a, &w.id).await?;
    Ok(answer(
        StatusCode::OK,
        &WebhookView::from(&w).failing(health.as_ref()),
    ))
}

async fn set_active(p: &Platform, a: &str, id: &str, active: bool) -> Answer {
    let input = WebhookPatch {
        active: Some(active),
        ..Default::default()
    };
    let w = webhooks::update(p, a, &webhook_id(id)?, input, &[]).await?;
    let health = webhooks::health(p, a, &w.id).await?;
    Ok(answer(
        StatusCode::OK,
        &WebhookView::from(&w).failing(health.as_ref()),
    ))
}

/// Activate a webhook (also one disabled by failures: it starts afresh)
#[utoipa::path(post, operation_id = "activate_webhook", path = "/v1/webhooks/{id}/activate", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    responses((status = 200, description = "active", body = WebhookView),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn activate(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    set_active(&p, &a, &id, true).await
}

/// Deactivate a webhook (events are no longer sent to it)
#[utoipa::path(post, operation_id = "deactivate_webhook", path = "/v1/webhooks/{id}/deactivate", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    responses((status = 200, description = "inactive", body = WebhookView),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn deactivate(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    set_active(&p, &a, &id, false).await
}

/// Delete a webhook
///
/// Its attempt log is removed in the background.
#[utoipa::path(delete, operation_id = "delete_webhook", path = "/v1/webhooks/{id}", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    responses((status = 204, description = "deleted"),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody)))]
async fn remove(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete(&p, &a, &webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a new signing secret
///
/// The new secret is in this answer only (`secret`). The old one goes on
/// signing beside it (two signatures) for 24 hours.
#[utoipa::path(post, operation_id = "rotate_webhook_secret", path = "/v1/webhooks/{id}/rotate-secret", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    responses((status = 200, description = "the webhook, with secret", body = WebhookView),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 409, description = "changed by another request meanwhile: retry", body = ErrorBody),
              (status = 422, description = "the webhook's channel is not signed (`not_signed`)", body = ErrorBody)))]
async fn rotate_secret(State(p): P, Account(a): Account, Path(id): Path<String>) -> Answer {
    let (w, secret) = webhooks::rotate_secret(&p, &a, &webhook_id(&id)?).await?;
    let mut view = WebhookView::from(&w);
    view.secret = Some(secret);
    Ok(answer(StatusCode::OK, &view))
}

/// Which event the test sends a sample of.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// One of the webhook's events; its first when absent.
    event: Option<String>,
}

/// Send a sample payload now
///
/// One of its events (its first, or `event`) with sample fields, sent at
/// once and not retried; answers the attempt, which is logged as a test.
#[utoipa::path(post, operation_id = "test_webhook", path = "/v1/webhooks/{id}/test", tag = "webhook", params(("id" = inline(WebhookId), Path)),
    request_body(content = Option<TestRequest>, description = "optional"),
    responses((status = 200, description = "the attempt: succeeded or failed, with the answer", body = Attempt),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 422, description = "the webhook is not subscribed to that event", body = ErrorBody)))]
async fn test(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let (w, _) = webhooks::get(&p, &a, &webhook_id(&id)?).await?;
    let event = crate::http::extract::optional_json::<TestRequest>(&body)?.and_then(|b| b.event);
    let attempt = crate::delivery::attempt::test(&p, &a, &w, event.as_deref()).await?;
    Ok(answer(StatusCode::OK, &attempt))
}

/// The webhook's attempts, newest first
#[utoipa::path(get, operation_id = "list_webhook_attempts", path = "/v1/webhooks/{id}/attempts", tag = "webhook",
    params(("id" = inline(WebhookId), Path), PageParams),
    responses((status = 200, description = "a page of attempts", body = Page<Attempt>),
              (status = 404, description = "no such webhook in this account", body = ErrorBody)))]
async fn attempts(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> Answer {
    let id = webhook_id(&id)?;
    webhooks::get(&p, &a, &id).await?;
    let (data, next) = crate::delivery::attempts::page(&p, &a, &id, q.limit()?, q.cursor).await?;
    Ok(answer(StatusCode::OK, &Page::new(data, next)))
}

/// `?hours=` of the stats route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatsParams {
    /// How many hours back, the current one included: 1 to 168, 24 when absent.
    #[param(minimum = 1, maximum = 168, default = 24)]
    hours: Option<u32>,
}

/// The webhook's deliveries, failures and latency per hour
///
/// Over the last 24 hours (or `hours`), oldest first; test sends are left out.
#[utoipa::path(get, operation_id = "webhook_stats", path = "/v1/webhooks/{id}/stats", tag = "webhook",
    params(("id" = inline(WebhookId), Path), StatsParams),
    responses((status = 200, description = "one entry per hour", body = crate::delivery::attempts::Stats),
              (status = 404, description = "no such webhook in this account", body = ErrorBody),
              (status = 422, description = "hours out of range", body = ErrorBody)))]
async fn stats(
    State(p): P,
    Account(a): Account,
    Path(id): Path<String>,
    Query(q): Query<StatsParams>,
) -> Answer {
    let id = webhook_id(&id)?;
    let hours = q.hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(ApiError::invalid(
            "invalid_hours",
            format!("hours {hours} is out of range: use 1 to 168"),
        ));
    }
    webhooks::get(&p, &a, &id).await?;
    let stats = crate::delivery::attempts::stats(&p, &a, &id, hours).await?;
    Ok(answer(StatusCode::OK, &stats))
}
