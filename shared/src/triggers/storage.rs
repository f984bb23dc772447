//! Triggers in the store: create, read, update, delete, and the two copies
//! each has (the account's, and the one ingest finds by id).

use crate::Platform;
use crate::collections;
use crate::error::Error;
use crate::ids::TriggerId;
use crate::keys;
use crate::ports::store::{OPTIMISTIC_ATTEMPTS, contention_pause};
use crate::ports::{Cond, Put, StoreError, Write};

use super::*;

/// Creates a trigger; answers it and its API key when it requires one.
pub async fn create(
    platform: &Platform,
    account: &str,
    input: NewTrigger,
) -> Result<(Trigger, Option<String>), Error> {
    let name = collections::parse_name(&input.name)?;
    let identifier = parse_identifier(input.identifier.as_deref().unwrap_or("email"))?;
    let transform = input.transform.filter(|t| !t.trim().is_empty());
    if let Some(t) = &transform {
        compile(t).await?;
    }
    let actions = parse_actions(
        platform,
        account,
        input.actions.as_deref().unwrap_or_default(),
    )
    .await?;
    let require_api_key = input.require_api_key.unwrap_or(false);
    let api_key = require_api_key.then(|| crate::accounts::generate_key("hl_trigger"));
    let now = platform.clock.now();
    let trigger = Trigger {
        id: TriggerId::new(),
        account: account.to_string(),
        name,
        identifier,
        transform,
        actions,
        require_api_key,
        active: input.active.unwrap_or(true),
        api_key_sha256: api_key.as_deref().map(sha256_hex),
        created_at: now,
        updated_at: now,
    };
    save_new(platform, &trigger).await?;
    Ok((trigger, api_key))
}

/// Writes a new trigger and counts it, within the account's limit.
async fn save_new(platform: &Platform, t: &Trigger) -> Result<(), Error> {
    let limit = crate::accounts::usage::limits(platform, &t.account)
        .await?
        .triggers;
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let (count, cond) = crate::accounts::usage::trigger_count(platform, &t.account).await?;
        if let Some(max) = limit
            && count >= max
        {
            return Err(Error::Forbidden {
                code: "trigger_limit_reached",
                message: format!(
                    "this account has {count} triggers, its limit: delete one, or ask the operator for more"
                ),
            });
        }
        let mut writes = copies(t, Cond::Absent);
        writes.push(crate::accounts::usage::count_triggers(
            &t.account,
            count + 1,
            cond,
        ));
        match platform.store.write_all(writes).await {
            Ok(()) => return Ok(()),
            // Another trigger counted meanwhile.
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// The two copies of a trigger: the one ingest finds by id (under `cond`),
/// and the account's.
fn copies(t: &Trigger, cond: Cond) -> Vec<Write> {
    let body = serde_json::to_value(t).expect("serialisable");
    vec![
        Write::Put(Put::new(keys::trigger(&t.id), body.clone()).when(cond)),
        Write::Put(Put::new(keys::account_trigger(&t.account, &t.id), body)),
    ]
}

/// Writes both copies: the one ingest finds by id, and the account's.
pub(super) async fn save(platform: &Platform, t: &Trigger, cond: Cond) -> Result<(), StoreError> {
    let written = platform.store.write_all(copies(t, cond)).await;
    // After the write, so that ingest cannot cache the old trigger meanwhile.
    platform.kept.get::<TriggerCache>().drop_entry(&t.id);
    written
}

/// The trigger with this id in any account, as ingest sees it, and its version.
pub async fn find(
    platform: &Platform,
    id: &TriggerId,
) -> Result<Option<(Trigger, u64)>, StoreError> {
    let Some(item) = platform.store.get(&keys::trigger(id)).await? else {
        return Ok(None);
    };
    let version = item.version;
    serde_json::from_value(item.body)
        .map(|t| Some((t, version)))
        .map_err(|e| StoreError::Backend(format!("corrupt trigger: {e}")))
}

/// The account's triggers, in id order, and the cursor of the rest.
pub async fn page(
    platform: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Trigger>, Option<String>), Error> {
    let mut query = crate::ports::Query::new(keys::account_triggers(account), "");
    query.limit = limit;
    query.cursor = cursor;
    let page = platform.store.query(query).await?;
    let all = crate::error::decoded(page.items, "decode trigger")?;
    Ok((all, page.next_cursor))
}

/// The account's trigger, or 404 (another account's answers 404 too).
pub async fn get(
    platform: &Platform,
    account: &str,
    id: &TriggerId,
) -> Result<(Trigger, u64), Error> {
    match find(platform, id).await? {
        Some((t, v)) if t.account == account => Ok((t, v)),
        _ => Err(Error::not_found("trigger")),
    }
}

/// Changes a trigger under its version, so concurrent edits are not lost.
pub async fn update(
    platform: &Platform,
    account: &str,
    id: &TriggerId,
    input: TriggerPatch,
) -> Result<Trigger, Error> {
    let (mut t, version) = get(platform, account, id).await?;
    if let Some(name) = &input.name {
        t.name = collections::parse_name(name)?;
    }
    if let Some(identifier) = &input.identifier {
        t.identifier = parse_identifier(identifier)?;
    }
    if !input.transform.is_absent() {
        let transform = input.transform.apply(None).filter(|s| !s.trim().is_empty());
        if let Some(s) = &transform {
            compile(s).await?;
        }
        t.transform = transform;
    }
    if let Some(raw) = &input.actions {
        t.actions = parse_actions(platform, account, raw).await?;
    }
    if let Some(active) = input.active {
        t.active = active;
    }
    if let Some(require) = input.require_api_key {
        if require && t.api_key_sha256.is_none() {
            return Err(Error::invalid(
                "api_key_needed",
                "this trigger has no API key: POST /v1/triggers/{id}/rotate-key makes one and requires it",
            ));
        }
        t.require_api_key = require;
    }
    t.updated_at = platform.clock.now();
    save(platform, &t, Cond::Version(version)).await?;
    Ok(t)
}

/// A new API key, required from now on; the old one stops working.
pub async fn rotate_key(
    platform: &Platform,
    account: &str,
    id: &TriggerId,
) -> Result<(Trigger, String), Error> {
    let (mut t, version) = get(platform, account, id).await?;
    let key = crate::accounts::generate_key("hl_trigger");
    t.api_key_sha256 = Some(sha256_hex(&key));
    t.require_api_key = true;
    t.updated_at = platform.clock.now();
    save(platform, &t, Cond::Version(version)).await?;
    Ok((t, key))
}

pub async fn delete(platform: &Platform, account: &str, id: &TriggerId) -> Result<(), Error> {
    let (t, _) = get(platform, account, id).await?;
    // Queued first, so that no deleted trigger keeps its log for want of a
    // message; the purge waits until the trigger is gone.
    let purge = crate::messages::ApplyMessage::PurgeTriggerLog {
        account: account.to_string(),
        trigger_id: t.id.clone(),
    };
    purge.send(platform).await?;
    // Under the trigger's version and the count's: retried when either
    // changed meanwhile.
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let Some((_, version)) = find(platform, id)
            .await?
            .filter(|(t, _)| t.account == account)
        else {
            return Err(Error::not_found("trigger"));
        };
        let (count, cond) = crate::accounts::usage::trigger_count(platform, account).await?;
        let writes = vec![
            Write::Delete {
                key: keys::trigger(id),
                cond: Cond::Version(version),
            },
            Write::Delete {
                key: keys::account_trigger(account, id),
                cond: Cond::Any,
            },
            // Counted as the triggers are found: one fewer than before.
            crate::accounts::usage::count_triggers(account, count.saturating_sub(1), cond),
        ];
        match platform.store.write_all(writes).await {
            Ok(()) => {
                platform.kept.get::<TriggerCache>().drop_entry(id);
                return Ok(());
            }
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Removes a deleted trigger's request log. While the trigger exists (its
/// delete is in flight, or failed) this answers `Conflict`, to be retried.
pub async fn purge_log(
    platform: &Platform,
    account: &str,
    trigger_id: &TriggerId,
    budget: std::time::Duration,
) -> Result<crate::ports::store::Progress, StoreError> {
    if platform
        .store
        .get(&keys::trigger(trigger_id))
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict);
    }
    crate::ports::store::clear_partition(
        &*platform.store,
        &keys::trigger_requests(account, trigger_id),
        budget,
    )
    .await
}
