//! Webhooks in the store: create, read, update, delete, rotate the secret,
//! counted against the account's limit.

use chrono::Duration as TimeDelta;

use super::model::*;
use super::validation::*;
use crate::Platform;
use crate::collections;
use crate::error::Error;
use crate::ids::WebhookId;
use crate::keys;
use crate::patch::Patch;
use crate::ports::store::{OPTIMISTIC_ATTEMPTS, contention_pause};
use crate::ports::{Cond, Put, Query, StoreError, Write};

/// How long the old secret goes on signing after a rotation.
pub const ROTATION_OVERLAP: TimeDelta = TimeDelta::hours(24);

/// Whether `events` name one that is not a known type: those must be
/// published by a trigger of the account, which the caller finds
/// (`publishable` of `create` and `update`).
pub fn names_custom(events: &[String]) -> bool {
    events.iter().any(|e| !EVENT_TYPES.contains(&e.trim()))
}

/// Creates a webhook, within the account's limit. `publishable`: the event
/// names the account's triggers publish (needed when `names_custom`).
pub async fn create(
    p: &Platform,
    account: &str,
    input: NewWebhook,
    publishable: &[String],
) -> Result<Webhook, Error> {
    let name = collections::parse_name(&input.name)?;
    let channel = parse_channel(p, &input.channel, None)?;
    let secret = match &input.channel.secret {
        Patch::Value(s) => parse_secret(s)?,
        _ => None,
    };
    let now = p.clock.now();
    let webhook = Webhook {
        id: WebhookId::new(),
        account: account.to_string(),
        name,
        channel,
        events: parse_events(&input.events, publishable)?,
        filters: parse_filters(input.filters.as_ref())?,
        payload: parse_payload(input.payload).await?,
        rate_limit: parse_rate(input.rate_limit)?,
        log_response_body: input.log_response_body.unwrap_or(false),
        active: input.active.unwrap_or(true),
        secrets: secret
            .map(|value| Secret {
                value,
                expires_at: None,
            })
            .into_iter()
            .collect(),
        disabled: None,
        created_at: now,
        updated_at: now,
    };
    save_new(p, &webhook).await?;
    Ok(webhook)
}

fn body(w: &Webhook) -> serde_json::Value {
    serde_json::to_value(w).expect("serialisable")
}

/// Writes a new webhook and counts it, within the account's limit.
async fn save_new(p: &Platform, w: &Webhook) -> Result<(), Error> {
    let limit = crate::accounts::usage::limits(p, &w.account)
        .await?
        .webhooks;
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let (count, cond) = crate::accounts::usage::webhook_count(p, &w.account).await?;
        if let Some(max) = limit
            && count >= max
        {
            return Err(Error::Forbidden {
                code: "webhook_limit_reached",
                message: format!(
                    "this account has {count} webhooks, its limit ({max}): delete one, or contact the operator for more; existing webhooks go on working"
                ),
            });
        }
        let writes = vec![
            Write::Put(Put::new(keys::webhook(&w.account, &w.id), body(w)).when(Cond::Absent)),
            crate::accounts::usage::count_webhooks(&w.account, count + 1, cond),
        ];
        match p.store.write_all(writes).await {
            Ok(()) => {
                super::forget(p, &w.account);
                return Ok(());
            }
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Writes a webhook under `cond`.
pub async fn save(p: &Platform, w: &Webhook, cond: Cond) -> Result<(), StoreError> {
    let written = p
        .store
        .put(Put::new(keys::webhook(&w.account, &w.id), body(w)).when(cond))
        .await;
    super::forget(p, &w.account);
    written.map(|_| ())
}

/// The account's webhook and its version, or 404 (another account's too).
pub async fn get(p: &Platform, account: &str, id: &WebhookId) -> Result<(Webhook, u64), Error> {
    match p.store.get(&keys::webhook(account, id)).await? {
        Some(item) => {
            let w = serde_json::from_value(item.body)
                .map_err(|e| Error::internal("decode webhook", e))?;
            Ok((w, item.version))
        }
        None => Err(Error::not_found("webhook")),
    }
}

/// The account's webhooks, in id order (oldest first), and the cursor of the rest.
pub async fn page(
    p: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Webhook>, Option<String>), Error> {
    let mut query = Query::new(keys::webhooks(account), "");
    query.limit = limit;
    query.cursor = cursor;
    let page = p.store.query(query).await?;
    Ok((
        crate::error::decoded(page.items, "decode webhook")?,
        page.next_cursor,
    ))
}

/// Changes a webhook under its version, again when another change came
/// first (a delivery disabling it, say), so that neither is lost.
pub async fn update(
    p: &Platform,
    account: &str,
    id: &WebhookId,
    input: WebhookPatch,
    publishable: &[String],
) -> Result<Webhook, Error> {
    // What does not depend on the webhook as it is, checked once.
    let name = input
        .name
        .as_deref()
        .map(collections::parse_name)
        .transpose()?;
    let events = input
        .events
        .as_deref()
        .map(|e| parse_events(e, publishable))
        .transpose()?;
    let filters = match &input.filters {
        Some(_) => Some(parse_filters(input.filters.as_ref())?),
        None => None,
    };
    let payload = match input.payload {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Value(spec) => Some(parse_payload(Some(spec)).await?),
    };
    let rate_limit = match input.rate_limit {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Value(n) => Some(parse_rate(Some(n))?),
    };
    let secret = match input.channel.as_ref().map(|c| &c.secret) {
        // Absent or blank: the current secret stays (the seed's rule).
        None | Some(Patch::Absent) => None,
        Some(Patch::Value(s)) if s.trim().is_empty() => None,
        Some(Patch::Null) => Some(None),
        Some(Patch::Value(s)) => Some(parse_secret(s)?),
    };
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let (mut w, version) = get(p, account, id).await?;
        if let Some(name) = &name {
            w.name = name.clone();
        }
        if let Some(channel) = &input.channel {
            let same_type = matches!(
                (&w.channel, channel.kind.as_str()),
                (Channel::Web { .. }, "web")
                    | (Channel::Pushover { .. }, "pushover")
                    | (Channel::Twilio { .. }, "twilio")
            );
            w.channel = parse_channel(p, channel, same_type.then_some(&w.channel))?;
            if let Some(secret) = &secret {
                w.secrets = secret
                    .iter()
                    .map(|value| Secret {
                        value: value.clone(),
                        expires_at: None,
                    })
                    .collect();
            }
            if !matches!(w.channel, Channel::Web { .. }) {
                w.secrets.clear();
            }
        }
        if let Some(events) = &events {
            w.events = events.clone();
        }
        if let Some(filters) = &filters {
            w.filters = filters.clone();
        }
        if let Some(payload) = &payload {
            w.payload = payload.clone();
        }
        if let Some(rate) = rate_limit {
            w.rate_limit = rate;
        }
        if let Some(log) = input.log_response_body {
            w.log_response_body = log;
        }
        let reactivated = input.active == Some(true) && !w.active;
        if let Some(active) = input.active {
            w.active = active;
            if active {
                // Turned on by hand: it starts afresh.
                w.disabled = None;
            }
        }
        w.updated_at = p.clock.now();
        match save(p, &w, Cond::Version(version)).await {
            Ok(()) => {
                if reactivated {
                    set_health(p, account, id, None).await?;
                }
                return Ok(w);
            }
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// The webhook's failing streak, if it has one.
pub async fn health(p: &Platform, account: &str, id: &WebhookId) -> Result<Option<Health>, Error> {
    match p.store.get(&keys::webhook_health(account, id)).await? {
        Some(item) => Ok(serde_json::from_value(item.body).ok()),
        None => Ok(None),
    }
}

/// The failing streaks of the account's webhooks (at most `limit`).
pub async fn healths(
    p: &Platform,
    account: &str,
    limit: usize,
) -> Result<std::collections::HashMap<String, Health>, Error> {
    let mut query = Query::new(keys::webhook_healths(account), "");
    query.limit = limit;
    let page = p.store.query(query).await?;
    Ok(page
        .items
        .into_iter()
        .filter_map(|i| Some((i.key.sk, serde_json::from_value(i.body).ok()?)))
        .collect())
}

/// Writes the webhook's failing streak; `None` ends it.
pub async fn set_health(
    p: &Platform,
    account: &str,
    id: &WebhookId,
    health: Option<&Health>,
) -> Result<(), StoreError> {
    let key = keys::webhook_health(account, id);
    match health {
        Some(h) => p
            .store
            .put(Put::new(
                key,
                serde_json::to_value(h).expect("serialisable"),
            ))
            .await
            .map(drop),
        None => p.store.delete(&key, Cond::Any).await,
    }
}

/// A new secret, answered once; the old one signs beside it for
/// `ROTATION_OVERLAP`, so receivers can switch without missing a request.
pub async fn rotate_secret(
    p: &Platform,
    account: &str,
    id: &WebhookId,
) -> Result<(Webhook, String), Error> {
    let (mut w, version) = get(p, account, id).await?;
    if !matches!(w.channel, Channel::Web { .. }) {
        return Err(Error::invalid(
            "not_signed",
            "only web channels are signed: this webhook has no secret to rotate",
        ));
    }
    let now = p.clock.now();
    let secret = generate_secret();
    // Only the current secret overlaps; ones rotated out before stop now.
    let old = w
        .signing_secrets(now)
        .next()
        .map(str::to_string)
        .map(|value| Secret {
            value,
            expires_at: Some(now + ROTATION_OVERLAP),
        });
    w.secrets = std::iter::once(Secret {
        value: secret.clone(),
        expires_at: None,
    })
    .chain(old)
    .collect();
    w.updated_at = now;
    save(p, &w, Cond::Version(version)).await?;
    Ok((w, secret))
}

/// Deletes a webhook; its attempt log is removed in the background.
pub async fn delete(p: &Platform, account: &str, id: &WebhookId) -> Result<(), Error> {
    get(p, account, id).await?;
    crate::messages::ApplyMessage::PurgeWebhook {
        account: account.to_string(),
        webhook_id: id.clone(),
    }
    .send(p)
    .await?;
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let Some(item) = p.store.get(&keys::webhook(account, id)).await? else {
            return Err(Error::not_found("webhook"));
        };
        let (count, cond) = crate::accounts::usage::webhook_count(p, account).await?;
        let writes = vec![
            Write::Delete {
                key: keys::webhook(account, id),
                cond: Cond::Version(item.version),
            },
            crate::accounts::usage::count_webhooks(account, count.saturating_sub(1), cond),
        ];
        match p.store.write_all(writes).await {
            Ok(()) => {
                super::forget(p, account);
                return Ok(());
            }
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Removes a deleted webhook's attempt log. While the webhook exists (its
/// delete is in flight, or failed) this answers `Conflict`, to be retried.
pub async fn purge_attempts(
    p: &Platform,
    account: &str,
    id: &WebhookId,
    budget: std::time::Duration,
) -> Result<crate::ports::store::Progress, StoreError> {
    if p.store.get(&keys::webhook(account, id)).await?.is_some() {
        return Err(StoreError::Conflict);
    }
    crate::ports::store::clear_partition(&*p.store, &keys::attempts(account, id), budget).await
}
