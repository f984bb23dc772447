//! Triggers in the store: create, read, update, delete, and the two copies
//! each has (the account's, and the one ingest finds by id).

use crate::Platform;
use crate::collections;
use crate::error::Error;
use crate::ids::TriggerId;
use crate::keys;
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
    save(platform, &trigger, Cond::Absent).await?;
    Ok((trigger, api_key))
}

/// Writes both copies: the one ingest finds by id, and the account's.
pub(super) async fn save(platform: &Platform, t: &Trigger, cond: Cond) -> Result<(), StoreError> {
    let body = serde_json::to_value(t).expect("serialisable");
    let written = platform
        .store
        .write_all(vec![
            Write::Put(Put::new(keys::trigger(&t.id), body.clone()).when(cond)),
            Write::Put(Put::new(keys::account_trigger(&t.account, &t.id), body)),
        ])
        .await;
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
    let (t, version) = get(platform, account, id).await?;
    // Queued first, so that no deleted trigger keeps its log for want of a
    // message; the purge waits until the trigger is gone.
    let purge = crate::messages::ApplyMessage::PurgeTriggerLog {
        account: account.to_string(),
        trigger_id: t.id.clone(),
    };
    purge.send(platform).await?;
    platform
        .store
        .write_all(vec![
            Write::Delete {
                key: keys::trigger(&t.id),
                cond: Cond::Version(version),
            },
            Write::Delete {
                key: keys::account_trigger(account, &t.id),
                cond: Cond::Any,
            },
        ])
        .await?;
    platform.kept.get::<TriggerCache>().drop_entry(&t.id);
    Ok(())
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
