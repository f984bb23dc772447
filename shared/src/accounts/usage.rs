//! What an account uses against its limits, counted where it happens:
//! requests to its trigger URLs (a second and a month), and its triggers.
//!
//! Inbound counting stays off the store on the ingest path of one machine:
//! the account is read at most once a second per process, the requests of
//! a second are counted in memory (one process is all there is), and the
//! month's count is added to the store once a second, in the background.
//! Where processes share the store (Lambda), each takes the second's
//! allowance from a counter in the store in slices of a tenth of the limit:
//! one atomic add per slice, so at most 10 or so a second per instance, and
//! the month's count, as here, once a second per instance.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Account, Effective, Status};
use crate::Platform;
use crate::error::Error;
use crate::keys;
use crate::ports::{Cond, Put, Query, StoreError, Write};

/// How long an account read for ingest is trusted (an operator's change
/// reaches Lambda instances within this; one machine forgets at once).
const ACCOUNT_TTL: Duration = Duration::from_secs(1);
/// How often a process adds its count of the month's requests to the store.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Accounts remembered at most; past it, the memory starts again.
const MAX_REMEMBERED: usize = 100_000;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An account as read (`None`: there is none), and when.
type Read = (Instant, Option<Arc<Account>>);

/// Accounts as ingest sees them, read at most once a second per process.
#[derive(Default)]
pub struct Accounts(Mutex<HashMap<String, Read>>);

impl Accounts {
    /// Drops what is remembered of the account (it just changed).
    pub fn forget(&self, id: &str) {
        locked(&self.0).remove(id);
    }

    /// Remembers the account as read (or written) at `at`.
    pub(super) fn remember(&self, account: Account, at: Instant) {
        let mut all = locked(&self.0);
        if all.len() >= MAX_REMEMBERED {
            all.clear();
        }
        all.insert(account.id.clone(), (at, Some(Arc::new(account))));
    }

    pub(super) async fn get(
        &self,
        p: &Platform,
        id: &str,
    ) -> Result<Option<Arc<Account>>, StoreError> {
        if let Some((at, account)) = locked(&self.0).get(id)
            && at.elapsed() < ACCOUNT_TTL
        {
            return Ok(account.clone());
        }
        let account = super::find(p, id).await?.map(|(a, _)| Arc::new(a));
        let mut all = locked(&self.0);
        if all.len() >= MAX_REMEMBERED {
            all.clear();
        }
        all.insert(id.to_string(), (Instant::now(), account.clone()));
        Ok(account)
    }
}

/// One account's inbound counts in this process.
#[derive(Default)]
struct Meter {
    /// The second being counted (Unix time), what this process may take of
    /// it, and what it took.
    second: i64,
    granted: u64,
    used: u64,
    /// The next slice to take from a shared store (doubling from 1 with
    /// use, so that an instance with one request takes one), and whether
    /// the store said the second is used up (then refused without asking).
    slice: u64,
    exhausted: bool,
    /// The month being counted (`YYYY-MM`), its total in the store as last
    /// read, and what this process counted since.
    month: String,
    stored: Option<u64>,
    pending: u64,
    flushed_at: Option<Instant>,
    flushing: bool,
}

#[derive(Default)]
struct Meters(Mutex<HashMap<String, Meter>>);

/// The account's meter, made on its first request (the account's id is
/// copied then only: this runs on every request to a trigger URL).
fn meter<'a>(all: &'a mut HashMap<String, Meter>, account: &str) -> &'a mut Meter {
    if !all.contains_key(account) {
        all.insert(account.to_string(), Meter::default());
    }
    all.get_mut(account).expect("just made")
}

fn month_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

/// Seconds from `t` to the start of the next month (UTC).
fn until_next_month(t: DateTime<Utc>) -> u64 {
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let next = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .expect("the first of a month");
    (next - t).num_seconds().max(1) as u64
}

/// Whether `account` is being deleted (read through the one-second cache):
/// work for it is then dropped, not done into what is being removed.
pub async fn deleting(p: &Platform, account: &str) -> Result<bool, StoreError> {
    let found = p.kept.get::<Accounts>().get(p, account).await?;
    Ok(found.is_some_and(|a| a.status == Status::Deleting))
}

/// The limits in force for `account` (as ingest sees it).
pub async fn limits(p: &Platform, account: &str) -> Result<Effective, Error> {
    let found = p.kept.get::<Accounts>().get(p, account).await?;
    let set = found.map(|a| a.limits.clone()).unwrap_or_default();
    Ok(set.effective(&p.settings))
}

/// The account's status as this process last read it (at most a second
/// ago); `None` when there is no such account.
pub async fn status(p: &Platform, account: &str) -> Result<Option<Status>, StoreError> {
    let found = p.kept.get::<Accounts>().get(p, account).await?;
    Ok(found.map(|a| a.status))
}

/// Lets one request to a trigger URL of `account` in, or says why not:
/// the account is gone (404, as the trigger), suspended (403), past its
/// requests a second (429, retry in a second) or a month (429, retry next
/// month). Counted before any work is done on the request.
pub async fn admit_inbound(p: &Arc<Platform>, account: &str) -> Result<(), Error> {
    let found = p.kept.get::<Accounts>().get(p, account).await?;
    let Some(found) = found.filter(|a| a.status != Status::Deleting) else {
        return Err(Error::NotFound("no active trigger has this URL".into()));
    };
    if found.status == Status::Suspended {
        return Err(Error::Forbidden {
            code: "account_suspended",
            message: "this account is suspended: its trigger URLs take no requests until the operator resumes it".into(),
        });
    }
    let limits = found.limits.effective(&p.settings);
    let now = p.clock.now();
    if let Some(limit) = limits.inbound_per_second {
        per_second(p, account, limit, now.timestamp()).await?;
    }
    per_month(p, account, limits.inbound_per_month, now).await
}

async fn per_second(p: &Platform, account: &str, limit: u64, second: i64) -> Result<(), Error> {
    let meters = p.kept.get::<Meters>();
    let refused = || Error::Limited {
        code: "rate_limited",
        message: format!(
            "this account takes at most {limit} requests a second at its trigger URLs: retry in a second"
        ),
        retry_after: 1,
    };
    let slice = {
        let mut all = locked(&meters.0);
        let m = meter(&mut all, account);
        if m.second != second {
            (m.second, m.granted, m.used, m.slice, m.exhausted) = (second, 0, 0, 1, false);
        }
        if m.used < m.granted {
            m.used += 1;
            return Ok(());
        }
        if !p.store.shared() {
            // One process: the whole second is ours.
            if m.granted == 0 && limit > 0 {
                m.granted = limit;
                m.used = 1;
                return Ok(());
            }
            return Err(refused());
        }
        if m.exhausted || limit == 0 {
            return Err(refused());
        }
        let slice = m.slice.min((limit / 10).max(1));
        m.slice = slice * 2;
        slice
    };
    // Shared: a slice of the second's allowance, from the store.
    let expires = p.clock.now() + chrono::TimeDelta::seconds(120);
    let total = p
        .store
        .add(
            &keys::usage(account, &format!("second#{second}")),
            slice as i64,
            Some(expires),
        )
        .await? as u64;
    let got = limit.saturating_sub(total.saturating_sub(slice)).min(slice);
    let mut all = locked(&meters.0);
    let m = meter(&mut all, account);
    if m.second == second {
        m.granted += got;
        m.exhausted |= got < slice;
        if m.used < m.granted {
            m.used += 1;
            return Ok(());
        }
    }
    Err(refused())
}

async fn per_month(
    p: &Arc<Platform>,
    account: &str,
    quota: Option<u64>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let meters = p.kept.get::<Meters>();
    let month = month_of(now);
    // The month's total as stored, read once a month per process when a
    // quota needs it.
    let known = {
        let mut all = locked(&meters.0);
        let m = meter(&mut all, account);
        if m.month != month {
            (m.month, m.stored, m.pending, m.flushed_at) = (month.clone(), None, 0, None);
        }
        m.stored
    };
    if quota.is_some() && known.is_none() {
        let stored = stored_count(p, account, &month).await?;
        let mut all = locked(&meters.0);
        let m = meter(&mut all, account);
        if m.month == month && m.stored.is_none() {
            m.stored = Some(stored);
        }
    }
    let flush = {
        let mut all = locked(&meters.0);
        let m = meter(&mut all, account);
        if let Some(quota) = quota
            && m.stored.unwrap_or(0) + m.pending >= quota
        {
            return Err(Error::Limited {
                code: "quota_exceeded",
                message: format!(
                    "this account has taken its {quota} requests of the month at its trigger URLs; the count starts again next month (UTC), or the operator can raise it"
                ),
                retry_after: until_next_month(now),
            });
        }
        m.pending += 1;
        let due = m.flushed_at.is_none_or(|t| t.elapsed() >= FLUSH_EVERY);
        let flush = due && !m.flushing;
        if flush {
            m.flushing = true;
        }
        flush
    };
    if flush {
        let p = p.clone();
        let account = account.to_string();
        tokio::spawn(async move { flush_month(&p, &account, &month).await });
    }
    Ok(())
}

/// Adds this process's count of the month to the store, now and then
/// again each second while requests keep coming.
async fn flush_month(p: &Platform, account: &str, month: &str) {
    let meters = p.kept.get::<Meters>();
    loop {
        let n = {
            let mut all = locked(&meters.0);
            let m = meter(&mut all, account);
            if m.month != month || m.pending == 0 {
                m.flushing = false;
                return;
            }
            m.pending
        };
        let key = keys::usage(account, &format!("inbound#{month}"));
        let expires = p.clock.now() + MONTHS_KEPT;
        match p.store.add(&key, n as i64, Some(expires)).await {
            Ok(total) => {
                let mut all = locked(&meters.0);
                let m = meter(&mut all, account);
                if m.month == month {
                    m.pending -= n;
                    m.stored = Some(total as u64);
                    m.flushed_at = Some(Instant::now());
                }
            }
            Err(error) => {
                tracing::warn!(%error, account, "the month's request count could not be added; will retry");
            }
        }
        tokio::time::sleep(FLUSH_EVERY).await;
    }
}

/// How long a month's count is kept: a year of months to look back on.
const MONTHS_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(400);

/// The month's count as stored (a counter is read by adding nothing; one
/// made so expires as counted ones do).
async fn stored_count(p: &Platform, account: &str, month: &str) -> Result<u64, StoreError> {
    let key = keys::usage(account, &format!("inbound#{month}"));
    let expires = p.clock.now() + MONTHS_KEPT;
    Ok(p.store.add(&key, 0, Some(expires)).await?.max(0) as u64)
}

/// The account's triggers, counted (the counter kept beside them, or for an
/// account from before it, counted once) and the condition to write the
/// counter under.
pub async fn trigger_count(p: &Platform, account: &str) -> Result<(u64, Cond), StoreError> {
    count(p, account, "triggers", keys::account_triggers(account)).await
}

/// The write that sets the account's trigger count to `n`, under `cond`.
pub fn count_triggers(account: &str, n: u64, cond: Cond) -> Write {
    count_write(account, "triggers", n, cond)
}

/// The account's webhooks, counted as triggers are.
pub async fn webhook_count(p: &Platform, account: &str) -> Result<(u64, Cond), StoreError> {
    count(p, account, "webhooks", keys::webhooks(account)).await
}

/// The write that sets the account's webhook count to `n`, under `cond`.
pub fn count_webhooks(account: &str, n: u64, cond: Cond) -> Write {
    count_write(account, "webhooks", n, cond)
}

/// A resource's count: its counter item, or (none written yet) the items
/// of its partition, counted once; and the condition to write it under.
async fn count(
    p: &Platform,
    account: &str,
    what: &str,
    partition: String,
) -> Result<(u64, Cond), StoreError> {
    if let Some(item) = p.store.get(&keys::usage(account, what)).await? {
        let n = item.body["count"].as_u64().unwrap_or(0);
        return Ok((n, Cond::Version(item.version)));
    }
    let mut n = 0;
    let mut cursor = None;
    loop {
        let mut query = Query::new(partition.clone(), "");
        query.limit = 1000;
        query.cursor = cursor;
        let page = p.store.query(query).await?;
        n += page.items.len() as u64;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok((n, Cond::Absent)),
        }
    }
}

fn count_write(account: &str, what: &str, n: u64, cond: Cond) -> Write {
    Write::Put(
        Put::new(
            keys::usage(account, what),
            serde_json::json!({ "count": n }),
        )
        .when(cond),
    )
}

/// What an account uses, against its limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// The calendar month (UTC) of `inbound_this_month`: `YYYY-MM`.
    pub month: String,
    /// Requests taken at its trigger URLs this month (within a second).
    pub inbound_this_month: u64,
    pub triggers: u64,
    pub webhooks: u64,
    pub limits: Effective,
}

pub async fn usage(p: &Platform, account: &Account) -> Result<Usage, Error> {
    let month = month_of(p.clock.now());
    let (stored, (triggers, _), (webhooks, _)) = tokio::try_join!(
        stored_count(p, &account.id, &month),
        trigger_count(p, &account.id),
        webhook_count(p, &account.id)
    )?;
    let pending = {
        let meters = p.kept.get::<Meters>();
        let all = locked(&meters.0);
        all.get(&account.id)
            .filter(|m| m.month == month)
            .map_or(0, |m| m.pending)
    };
    Ok(Usage {
        month,
        inbound_this_month: stored + pending,
        triggers,
        webhooks,
        limits: account.limits.effective(&p.settings),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::TestClock;

    async fn platform(
        settings: crate::config::Settings,
    ) -> (Arc<Platform>, TestClock, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at("2026-11-30T23:59:50Z".parse().unwrap());
        let p = crate::adapters::embedded::platform(dir.path(), settings, Arc::new(clock.clone()))
            .unwrap();
        super::super::ensure_default(&p, None).await.unwrap();
        (p, clock, dir)
    }

    fn code(r: Result<(), Error>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    /// The global defaults hold until the operator sets an account's own;
    /// a second's requests past its limit are refused until the next
    /// second, and a month's until the next month, which starts at zero.
    #[tokio::test]
    async fn requests_are_limited_a_second_and_a_month() {
        let settings = crate::config::Settings {
            inbound_per_second: Some(3),
            inbound_per_month: Some(5),
            ..Default::default()
        };
        let (p, clock, _dir) = platform(settings).await;
        let a = super::super::DEFAULT_ACCOUNT;
        for _ in 0..3 {
            assert_eq!(code(admit_inbound(&p, a).await), "ok");
        }
        let e = admit_inbound(&p, a).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Limited {
                    code: "rate_limited",
                    retry_after: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        clock.advance(Duration::from_secs(1));
        for _ in 0..2 {
            assert_eq!(code(admit_inbound(&p, a).await), "ok");
        }
        let e = admit_inbound(&p, a).await.unwrap_err();
        // 23:59:51 on the last day of November: the month ends in 9 s.
        assert!(
            matches!(
                e,
                Error::Limited {
                    code: "quota_exceeded",
                    retry_after: 9,
                    ..
                }
            ),
            "{e:?}"
        );
        // The count reaches the store within a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(stored_count(&p, a, "2026-11").await.unwrap(), 5);
        let (account, _) = super::super::get(&p, a).await.unwrap();
        assert_eq!(usage(&p, &account).await.unwrap().inbound_this_month, 5);
        // The operator raises the month's quota, for this account alone: at once.
        let patch = super::super::AccountPatch {
            limits: Some(super::super::LimitsPatch {
                set: super::super::Limits {
                    inbound_per_month: crate::patch::Patch::Null,
                    ..Default::default()
                },
                reset: Vec::new(),
            }),
            ..Default::default()
        };
        super::super::update(&p, a, patch, None).await.unwrap();
        clock.advance(Duration::from_secs(1));
        assert_eq!(code(admit_inbound(&p, a).await), "ok");
        // A new month counts from nothing.
        clock.set("2026-12-01T00:00:00Z".parse().unwrap());
        assert_eq!(code(admit_inbound(&p, a).await), "ok");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (account, _) = super::super::get(&p, a).await.unwrap();
        let now = usage(&p, &account).await.unwrap();
        assert_eq!((now.month.as_str(), now.inbound_this_month), ("2026-12", 1));
    }

    #[tokio::test]
    async fn a_suspended_account_takes_no_requests_until_resumed() {
        let (p, _clock, _dir) = platform(Default::default()).await;
        let a = super::super::DEFAULT_ACCOUNT;
        assert_eq!(code(admit_inbound(&p, a).await), "ok");
        let none = super::super::AccountPatch::default;
        super::super::update(&p, a, none(), Some(Status::Suspended))
            .await
            .unwrap();
        assert_eq!(code(admit_inbound(&p, a).await), "account_suspended");
        super::super::update(&p, a, none(), Some(Status::Active))
            .await
            .unwrap();
        assert_eq!(code(admit_inbound(&p, a).await), "ok");
        // An account that does not exist (deleted) has no trigger URLs.
        assert_eq!(
            code(admit_inbound(&p, "acct_01jf6z0c1qz8m3v2w4x5y6z7a8").await),
            "not_found"
        );
    }
}
