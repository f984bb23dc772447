//! The attempt log of each webhook: every attempt, what came back and
//! what happens next; kept `Settings::attempt_retention` (30 days).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Platform;
use crate::error::Error;
use crate::ids::{AttemptId, WebhookId};
use crate::keys;
use crate::ports::{Put, Query, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A 2xx came back.
    Succeeded,
    /// It failed; `next_attempt_at` says when the next goes (none for a test).
    Failed,
    /// Not attempted yet: waiting on the webhook's rate limit, on its
    /// account (suspended), or on its endpoint (failing: one call at a time).
    Pending,
    /// Failed with no attempt left, or the webhook was disabled: kept as a
    /// dead letter, to be redriven.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub id: AttemptId,
    pub webhook_id: WebhookId,
    pub event_id: String,
    /// The event's type.
    pub event: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: u32,
    pub status: Status,
    #[schema(required = true)]
    pub response_status: Option<u16>,
    pub duration_ms: u64,
    /// The first 16 KiB of the answer, when the webhook logs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Why it failed when no answer says it (refused, timed out, reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// Sent by the test button.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Writes an attempt into its webhook's log.
pub async fn record(p: &Platform, account: &str, a: &Attempt) -> Result<(), StoreError> {
    let expires = a.at
        + chrono::Duration::from_std(p.settings.attempt_retention)
            .unwrap_or(chrono::Duration::days(30));
    let body = serde_json::to_value(a).expect("serialisable");
    let put = Put::new(keys::attempt(account, &a.webhook_id, &a.id), body).expires(expires);
    match p.store.put(put.clone()).await {
        // A body too odd for the store (its size is bounded): kept without it.
        Err(StoreError::TooLarge(_)) => {
            let mut lean = a.clone();
            lean.response_body = Some("(not kept: the store refused it)".into());
            p.store
                .put(Put {
                    body: serde_json::to_value(&lean).expect("serialisable"),
                    ..put
                })
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}

/// The webhook's attempts, newest first, and the cursor of the rest.
pub async fn page(
    p: &Platform,
    account: &str,
    webhook: &WebhookId,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Attempt>, Option<String>), Error> {
    let mut query = Query::new(keys::attempts(account, webhook), "");
    query.limit = limit;
    query.cursor = cursor;
    query.reverse = true;
    let page = p.store.query(query).await?;
    Ok((
        crate::error::decoded(page.items, "decode attempt")?,
        page.next_cursor,
    ))
}

/// The most attempts one `stats` reads, and the longest it reads: a
/// webhook busier than this over the window gets the newest ones counted
/// and `complete: false`.
pub const STATS_MAX_READ: usize = 20_000;
pub const STATS_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// How much older than its `at` an attempt's id may be read as: its call's
/// length and another host's clock.
const MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// One hour of a webhook's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hour {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// Attempts that got a 2xx.
    pub succeeded: u64,
    /// Attempts that failed, and deliveries given up on (kept as dead letters).
    pub failed: u64,
    /// Calls made (deliveries given up on without one are not).
    pub calls: u64,
    /// Mean duration of the hour's calls, in milliseconds (0 when none).
    pub avg_ms: u64,
    /// The slowest of them.
    pub max_ms: u64,
}

/// A webhook's deliveries per hour over the last `hours`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub hours: Vec<Hour>,
    /// False when more attempts were made in the window than are read
    /// ([`STATS_MAX_READ`]): the oldest hours then count too few.
    pub complete: bool,
}

/// Counts the attempts of the last `hours` hours (test sends and attempts
/// still pending are left out: they are not deliveries), per hour.
pub async fn stats(
    p: &Platform,
    account: &str,
    webhook: &WebhookId,
    hours: u32,
) -> Result<Stats, Error> {
    use chrono::{DurationRound, TimeDelta};
    let hour = TimeDelta::hours(1);
    let now = p.clock.now();
    let first = now.duration_trunc(hour).unwrap_or(now) - hour * (hours as i32 - 1);
    // Each hour, and the total of its calls' durations.
    let mut buckets: Vec<(Hour, u64)> = (0..hours)
        .map(|i| {
            let h = Hour {
                hour: first + hour * i as i32,
                ..Hour::default()
            };
            (h, 0)
        })
        .collect();
    // The log is in the order of attempt ids, made when each attempt ended:
    // an attempt's `at` (when it began) may be older by its call's length,
    // or by another host's clock. Reading goes on past the window by a
    // margin for that, and counts by `at`.
    let stop_before = (first - MARGIN).timestamp_millis();
    let started = std::time::Instant::now();
    let (mut read, mut cursor, mut complete) = (0, None, true);
    'pages: loop {
        if started.elapsed() > STATS_BUDGET {
            complete = false;
            break;
        }
        let (attempts, next) = page(p, account, webhook, 500, cursor).await?;
        for a in attempts {
            let made_ms = a.id.timestamp_ms();
            if made_ms.is_some_and(|ms| (ms as i64) < stop_before) {
                break 'pages;
            }
            if read == STATS_MAX_READ || started.elapsed() > STATS_BUDGET {
                complete = false;
                break 'pages;
            }
            read += 1;
            if a.at < first || a.test {
                continue;
            }
            let slot = ((a.at - first).num_hours() as usize).min(buckets.len() - 1);
            let (bucket, total_ms) = &mut buckets[slot];
            match a.status {
                Status::Succeeded => bucket.succeeded += 1,
                Status::Failed | Status::Dead => bucket.failed += 1,
                Status::Pending => continue,
            }
            if a.duration_ms > 0 || a.response_status.is_some() {
                *total_ms += a.duration_ms;
                bucket.calls += 1;
            }
            bucket.max_ms = bucket.max_ms.max(a.duration_ms);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let hours = buckets
        .into_iter()
        .map(|(mut h, total_ms)| {
            h.avg_ms = total_ms.checked_div(h.calls).unwrap_or(0);
            h
        })
        .collect();
    Ok(Stats { hours, complete })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::TestClock;
    use chrono::TimeDelta;
    use std::sync::Arc;

    /// An attempt id made at `made` (as if its host's clock said so).
    fn id_at(made: DateTime<Utc>) -> AttemptId {
        let ulid = ulid::Ulid::from_parts(made.timestamp_millis() as u64, rand::random());
        AttemptId::parse(&format!("att_{}", ulid.to_string().to_lowercase())).unwrap()
    }

    fn attempt(id: AttemptId, at: DateTime<Utc>, status: Status, ms: u64) -> Attempt {
        let answered = !matches!(status, Status::Pending | Status::Dead);
        Attempt {
            id,
            webhook_id: WebhookId::parse("wh_01jd0000000000000000000000").unwrap(),
            event_id: "evt".into(),
            event: "delivered".into(),
            attempt: 1,
            status,
            response_status: answered.then_some(200),
            duration_ms: ms,
            response_body: None,
            error: None,
            next_attempt_at: None,
            at,
            test: false,
        }
    }

    #[tokio::test]
    async fn hours_count_by_when_attempts_began_whatever_their_ids_say() {
        let now: DateTime<Utc> = "2026-11-26T10:30:00Z".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = crate::adapters::embedded::platform(
            dir.path(),
            crate::config::Settings::default(),
            Arc::new(TestClock::at(now)),
        )
        .unwrap();
        let w = WebhookId::parse("wh_01jd0000000000000000000000").unwrap();
        let ago = |h: i64, m: i64| now - TimeDelta::hours(h) - TimeDelta::minutes(m);
        let mut test = attempt(id_at(ago(0, 1)), ago(0, 2), Status::Succeeded, 9);
        test.test = true;
        for a in [
            // Newest id first: begun 5 hours ago, its id made now (a long
            // call, or a host whose clock runs ahead).
            attempt(id_at(ago(0, 0)), ago(5, 0), Status::Succeeded, 30),
            test,
            attempt(id_at(ago(0, 5)), ago(0, 6), Status::Pending, 0),
            attempt(id_at(ago(0, 10)), ago(0, 11), Status::Failed, 10),
            attempt(id_at(ago(0, 20)), ago(0, 21), Status::Succeeded, 20),
            // Begun before the window, its id inside it: skipped, and the
            // attempts after it in the log are still read.
            attempt(id_at(ago(0, 30)), ago(23, 40), Status::Succeeded, 5),
            attempt(id_at(ago(0, 40)), ago(2, 0), Status::Dead, 0),
            attempt(id_at(ago(0, 41)), ago(2, 1), Status::Succeeded, 40),
            // Made 30 minutes before the window (its call began inside it,
            // by another host's clock): within the margin, counted.
            attempt(id_at(ago(24, 0)), ago(23, 10), Status::Failed, 50),
            // Made long before the window (and its margin): reading stops.
            attempt(id_at(ago(30, 0)), ago(1, 0), Status::Succeeded, 5),
        ] {
            record(&p, "acct", &a).await.unwrap();
        }
        let stats = stats(&p, "acct", &w, 24).await.unwrap();
        assert!(stats.complete);
        assert_eq!(stats.hours.len(), 24);
        assert_eq!(
            stats.hours[0].hour,
            "2026-11-25T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let this_hour = &stats.hours[23];
        assert_eq!((this_hour.succeeded, this_hour.failed), (1, 1));
        assert_eq!((this_hour.avg_ms, this_hour.max_ms), (15, 20));
        let five_ago = &stats.hours[18];
        assert_eq!((five_ago.succeeded, five_ago.avg_ms), (1, 30));
        // Given up on without a call: a failure, not a call of 0 ms.
        let two_ago = &stats.hours[21];
        assert_eq!((two_ago.succeeded, two_ago.failed), (1, 1));
        assert_eq!((two_ago.calls, two_ago.avg_ms, two_ago.max_ms), (1, 40, 40));
        let first_hour = &stats.hours[0];
        assert_eq!((first_hour.failed, first_hour.avg_ms), (1, 50));
        let counted: u64 = stats.hours.iter().map(|h| h.succeeded + h.failed).sum();
        assert_eq!(counted, 6);

        let one = super::stats(&p, "acct", &w, 1).await.unwrap();
        assert_eq!(one.hours.len(), 1);
        assert_eq!(
            one.hours[0].hour,
            "2026-11-26T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!((one.hours[0].succeeded, one.hours[0].failed), (1, 1));
    }
}
