//! Removing a deleted account's data, page by page, each message of the
//! apply queue within a time budget (the rest queued again). What hangs
//! from an item goes before it (a list's members, a trigger's request log
//! and the copy ingest finds, a key's lookup), so that a purge cut short
//! leaves nothing that cannot be found again; the account goes last.
//! Triggers go first: once a trigger is gone, a request of it still queued
//! is dropped rather than applied into the account being removed (as is
//! one applied while the account is marked deleted).

use std::time::{Duration, Instant};

use super::Status;
use crate::Platform;
use crate::collections::Kind;
use crate::keys;
use crate::ports::store::{Progress, clear_partition, delete_items, first_page};
use crate::ports::{Cond, StoreError, Write};

/// Partitions of an account that hold plain items, nothing hanging from them.
fn plain_partitions(account: &str) -> Vec<String> {
    let mut partitions = vec![
        keys::contacts(account),
        keys::contact_by(account, crate::contacts::Identifier::Email, "").pk,
        keys::contact_by(account, crate::contacts::Identifier::PhoneNumber, "").pk,
        keys::event(account, "").pk,
        keys::message(account, "").pk,
        keys::dead_letters(account),
        keys::webhook_healths(account),
        keys::usage(account, "").pk,
    ];
    partitions.extend((0..crate::profiles::SEGMENTS).map(|s| keys::profiles(account, s)));
    partitions
        .extend((0..crate::profiles::SEGMENTS).map(|s| keys::insert_id(account, s, "", "").pk));
    partitions
}

/// Removes what hangs from a campaign (not the campaign): its runs and
/// their counters, its users' records, its attempt log and its lease.
pub async fn purge_campaign(
    p: &Platform,
    account: &str,
    id: &str,
    budget: Duration,
) -> Result<Progress, StoreError> {
    let store = &*p.store;
    let start = Instant::now();
    while let Some(runs) = first_page(store, &keys::campaign_runs(account, id)).await? {
        for run in &runs {
            // Its counters expire with it; its markers go now.
            let left = budget.saturating_sub(start.elapsed());
            for pk in [
                keys::run_done(account, &run.key.sk),
                keys::run_ready(account, &run.key.sk),
            ] {
                if clear_partition(store, &pk, left).await? == Progress::More {
                    return Ok(Progress::More);
                }
            }
        }
        delete_items(store, runs).await?;
        if start.elapsed() >= budget {
            return Ok(Progress::More);
        }
    }
    for pk in [
        keys::campaign_users(account, id),
        keys::campaign_attempts(account, id),
    ] {
        let left = budget.saturating_sub(start.elapsed());
        if clear_partition(store, &pk, left).await? == Progress::More {
            return Ok(Progress::More);
        }
    }
    store
        .delete(&keys::campaign_lease(account, id), Cond::Any)
        .await?;
    Ok(Progress::Done)
}

/// Removes what `account` held, if it is being deleted; `More` when the
/// budget ran out first. An account not marked deleted is a `Conflict`
/// (its delete is in flight): retried.
pub async fn purge(p: &Platform, account: &str, budget: Duration) -> Result<Progress, StoreError> {
    let Some((found, version)) = super::find(p, account).await? else {
        return Ok(Progress::Done);
    };
    if found.status != Status::Deleting {
        return Err(StoreError::Conflict);
    }
    let start = Instant::now();
    let spent = || start.elapsed() >= budget;
    let left = || budget.saturating_sub(start.elapsed());
    // Triggers: each one's log, then the copy ingest finds and the listed one
    // (a copy ingest still holds in its cache leads nowhere: the account is
    // gone for ingest from the moment it was deleted).
    while let Some(items) = first_page(&*p.store, &keys::account_triggers(account)).await? {
        for item in items {
            let id = item.key.sk.clone();
            let log = keys::trigger_requests(account, &id);
            if clear_partition(&*p.store, &log, left()).await? == Progress::More {
                return Ok(Progress::More);
            }
            p.store
                .write_all(vec![
                    Write::Delete {
                        key: keys::trigger(&id),
                        cond: Cond::Any,
                    },
                    Write::Delete {
                        key: item.key,
                        cond: Cond::Any,
                    },
                ])
                .await?;
        }
        if spent() {
            return Ok(Progress::More);
        }
    }
    // Webhooks: each one's attempt log, then it.
    while let Some(items) = first_page(&*p.store, &keys::webhooks(account)).await? {
        for item in items {
            let log = keys::attempts(account, &item.key.sk);
            if clear_partition(&*p.store, &log, left()).await? == Progress::More {
                return Ok(Progress::More);
            }
            delete_items(&*p.store, vec![item]).await?;
        }
        if spent() {
            return Ok(Progress::More);
        }
    }
    // Campaigns: each one's runs, users and attempts, its place in the due
    // index, then it.
    while let Some(items) = first_page(&*p.store, &keys::campaigns(account)).await? {
        for item in items {
            if purge_campaign(p, account, &item.key.sk, left()).await? == Progress::More {
                return Ok(Progress::More);
            }
            let mut writes = vec![Write::Delete {
                key: item.key.clone(),
                cond: Cond::Any,
            }];
            if let Some(at) = item.body["next_run_at"].as_str() {
                let at = chrono::DateTime::parse_from_rfc3339(at)
                    .map(|t| {
                        t.to_utc()
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                    .unwrap_or_default();
                writes.push(Write::Delete {
                    key: keys::campaign_due(&at, account, &item.key.sk),
                    cond: Cond::Any,
                });
            }
            p.store.write_all(writes).await?;
        }
        if spent() {
            return Ok(Progress::More);
        }
    }
    // Lists and sequences: each one's members, then it.
    for kind in [Kind::List, Kind::Sequence] {
        while let Some(items) = first_page(&*p.store, &keys::collections(kind, account)).await? {
            for item in items {
                let members = keys::members(kind, account, &item.key.sk);
                if clear_partition(&*p.store, &members, left()).await? == Progress::More {
                    return Ok(Progress::More);
                }
                delete_items(&*p.store, vec![item]).await?;
            }
            if spent() {
                return Ok(Progress::More);
            }
        }
    }
    // Admin keys: each one's lookup, then its listing.
    while let Some(items) = first_page(&*p.store, &keys::account_keys(account)).await? {
        let mut writes = Vec::with_capacity(items.len() * 2);
        for item in items {
            if let Some(lookup) = item.body["lookup"].as_str() {
                writes.push(Write::Delete {
                    key: keys::admin_key(lookup),
                    cond: Cond::Any,
                });
            }
            writes.push(Write::Delete {
                key: item.key,
                cond: Cond::Any,
            });
        }
        p.store.write_all(writes).await?;
    }
    for pk in plain_partitions(account) {
        if clear_partition(&*p.store, &pk, left()).await? == Progress::More {
            return Ok(Progress::More);
        }
    }
    p.store
        .delete(&keys::account(account), Cond::Version(version))
        .await?;
    p.kept.get::<super::usage::Accounts>().forget(account);
    Ok(Progress::Done)
}
