//! One attempt of a delivery (a message of the delivery queue), and what
//! follows it. Every attempt is logged; a failure sends the next attempt
//! as a new message after its step of the retry schedule (a wait longer
//! than the queue's 15-minute delay is parked in the store and released
//! when due), so that no message waits in flight; the last failure, a 410
//! or failing for longer than `Settings::disable_after` keeps the delivery
//! as a dead letter. Waits that are not the delivery's fault (the
//! webhook's rate limit, a suspended account, an endpoint that fails every
//! call) defer it without using an attempt.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::Rng;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::attempts::{self, Attempt, Status};
use super::request::{self, Answer, Unsendable};
use crate::Platform;
use crate::accounts::Status as AccountStatus;
use crate::error::Error;
use crate::ids::AttemptId;
use crate::messages::Delivery;
use crate::ports::queue::MAX_DELAY;
use crate::ports::{Cond, Key, Put, Query};
use crate::webhooks::{self, Disabled, Webhook};

/// How long a delivery waits when the transform threads are all busy.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// How long deliveries of a suspended account wait before they look again.
pub const SUSPENDED_PAUSE: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured; a longer one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Failures in a row (no answer, 5xx, 429) after which an endpoint gets
/// one call at a time, the others deferred while it stays down.
pub const BREAKER_FAILURES: u32 = 5;
/// The longest an endpoint is left alone between probes.
pub const BREAKER_MAX_OPEN: Duration = Duration::from_secs(600);

/// Keeps a delivery message as a dead letter (an unreadable one too).
pub async fn keep_dead_message(p: &Platform, body: &str, reason: &str) -> Result<(), Error> {
    match serde_json::from_str::<Delivery>(body) {
        Ok(d) => crate::dead_letters::keep_delivery(p, &d, reason).await?,
        Err(_) => crate::dead_letters::keep_unreadable(p, "delivery", body, reason).await?,
    }
    Ok(())
}

fn event_id(event: &Map<String, Value>) -> &str {
    event.get("id").and_then(Value::as_str).unwrap_or_default()
}

fn event_type(event: &Map<String, Value>) -> &str {
    event
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Makes one attempt of `d` (or defers it), and settles what follows.
pub async fn deliver(p: &Platform, d: &Delivery) -> Result<(), Error> {
    let Some(w) = webhooks::find_for_delivery(p, &d.account, &d.webhook_id).await? else {
        tracing::info!("the webhook was deleted; its delivery is dropped");
        return Ok(());
    };
    match crate::accounts::usage::status(p, &d.account).await? {
        None | Some(AccountStatus::Deleting) => return Ok(()),
        Some(AccountStatus::Suspended) => {
            let waiting = Delivery {
                not_before: None,
                ..d.clone()
            };
            let pause = jitter(SUSPENDED_PAUSE);
            return defer(p, &waiting, &w, pause, "its account is suspended").await;
        }
        Some(AccountStatus::Active) => {}
    }
    let now = p.clock.now();
    if !w.active {
        let why = match &w.disabled {
            Some(Disabled { reason, .. }) => format!("the webhook is disabled ({reason})"),
            None => "the webhook is inactive".to_string(),
        };
        let attempt = attempt_of(d, &w, now, Status::Dead, None, Some(why.clone()));
        return give_up(p, d, attempt, &why).await;
    }
    if let Some(wait) = p.kept.get::<Breakers>().wait(&w.id, now) {
        // Checked before the rate limit, so that waiting on the endpoint
        // takes no slot; a slot held already is kept.
        let why = "its endpoint is failing; one call at a time";
        return defer(p, d, &w, wait, why).await;
    }
    if let Some(slot) = rate_slot(p, &w, d, now) {
        let wait = (slot - now).to_std().unwrap_or_default();
        if wait > WAIT_IN_PLACE {
            let held = Delivery {
                not_before: Some(slot),
                ..d.clone()
            };
            return defer(p, &held, &w, wait, "the webhook's rate limit").await;
        }
        tokio::time::sleep(wait).await;
    }
    let answer = match request::build(p, &w, &d.event, d.text.as_deref(), now).await {
        Ok(out) => request::send(p, out, w.log_response_body).await,
        Err(Unsendable::Never(why)) => {
            let attempt = attempt_of(d, &w, now, Status::Dead, None, Some(why.clone()));
            return give_up(p, d, attempt, &why).await;
        }
        // The transform threads are all busy: it waits a little, without
        // using an attempt (nor a receive of its message).
        Err(Unsendable::Busy(why)) => {
            tracing::debug!(reason = %why, "delivery waits for the transform threads");
            return schedule_at(p, d, BUSY_WAIT).await;
        }
    };
    settle(p, d, &w, now, answer).await
}

/// What follows an attempt that got `answer`.
async fn settle(
    p: &Platform,
    d: &Delivery,
    w: &Webhook,
    now: DateTime<Utc>,
    answer: Answer,
) -> Result<(), Error> {
    let breakers = p.kept.get::<Breakers>();
    if answer.succeeded() {
        breakers.success(&w.id);
        attempts::record(
            p,
            &d.account,
            &attempt_of(d, w, now, Status::Succeeded, Some(&answer), None),
        )
        .await?;
        healthy(p, w).await?;
        return Ok(());
    }
    if answer.status.is_none_or(|s| s >= 500 || s == 429) {
        breakers.failure(&w.id, now);
    } else {
        // It answers: whatever it said, it is up.
        breakers.success(&w.id);
    }
    let what = match (answer.status, &answer.error) {
        (Some(s), _) => format!("the endpoint answered {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".to_string(),
    };
    if answer.status == Some(410) {
        let why = "the endpoint answered 410 Gone";
        disable(p, w, why).await?;
        let attempt = attempt_of(d, w, now, Status::Dead, Some(&answer), None);
        return give_up(p, d, attempt, why).await;
    }
    let failing_since = failing(p, w, now).await?;
    let limit = p.settings.disable_after;
    if (now - failing_since).to_std().unwrap_or_default() >= limit {
        let why = format!(
            "every attempt failed for {} (the last: {what})",
            crate::config::format_duration(limit)
        );
        disable(p, w, &why).await?;
        let attempt = attempt_of(d, w, now, Status::Dead, Some(&answer), None);
        return give_up(p, d, attempt, &why).await;
    }
    let schedule = &p.settings.retry_schedule;
    let Some(step) = schedule.get(d.attempt as usize) else {
        let why = format!("{} attempts failed; the last: {what}", d.attempt);
        let attempt = attempt_of(d, w, now, Status::Dead, Some(&answer), None);
        return give_up(p, d, attempt, &why).await;
    };
    let mut wait = jitter(*step);
    if let Some(asked) = answer.retry_after {
        wait = wait.max(asked.min(MAX_RETRY_AFTER));
    }
    let next_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
    let mut attempt = attempt_of(d, w, now, Status::Failed, Some(&answer), None);
    attempt.next_attempt_at = Some(next_at);
    let next = Delivery {
        attempt: d.attempt + 1,
        pending_logged: false,
        not_before: None,
        ..d.clone()
    };
    // Logged first: were the log to fail after the next attempt is queued,
    // this message would come back and queue another, and the delivery
    // would go on twice.
    attempts::record(p, &d.account, &attempt).await?;
    schedule_at(p, &next, wait).await?;
    Ok(())
}

/// ±10 % of a step, so that a burst of failures does not come back as one.
fn jitter(step: Duration) -> Duration {
    if step.is_zero() {
        return step;
    }
    step.mul_f64(rand::rng().random_range(0.9..1.1))
}

fn attempt_of(
    d: &Delivery,
    w: &Webhook,
    now: DateTime<Utc>,
    status: Status,
    answer: Option<&Answer>,
    error: Option<String>,
) -> Attempt {
    Attempt {
        id: AttemptId::new(),
        webhook_id: w.id.clone(),
        event_id: event_id(&d.event).to_string(),
        event: event_type(&d.event).to_string(),
        attempt: d.attempt,
        status,
        response_status: answer.and_then(|a| a.status),
        duration_ms: answer.map_or(0, |a| a.duration.as_millis() as u64),
        response_body: answer.and_then(|a| a.body.clone()),
        error: error.or_else(|| answer.and_then(|a| a.error.clone())),
        next_attempt_at: None,
        at: now,
        test: false,
    }
}

/// Logs the attempt and keeps the delivery as a dead letter.
async fn give_up(p: &Platform, d: &Delivery, attempt: Attempt, why: &str) -> Result<(), Error> {
    attempts::record(p, &d.account, &attempt).await?;
    crate::dead_letters::keep_delivery(p, d, why).await?;
    tracing::warn!(reason = why, "delivery dead-lettered");
    Ok(())
}

/// Sends `d` again after `wait` without using an attempt, logging it
/// `pending` the first time.
async fn defer(
    p: &Platform,
    d: &Delivery,
    w: &Webhook,
    wait: Duration,
    why: &str,
) -> Result<(), Error> {
    let next = Delivery {
        pending_logged: true,
        ..d.clone()
    };
    if !d.pending_logged {
        let now = p.clock.now();
        let mut attempt = attempt_of(
            d,
            w,
            now,
            Status::Pending,
            None,
            Some(format!("waiting: {why}")),
        );
        attempt.next_attempt_at = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
        attempts::record(p, &d.account, &attempt).await?;
    }
    schedule_at(p, &next, wait).await?;
    Ok(())
}

/// Waits up to this long go on the queue as a delay; longer ones are parked.
const PARK_PAST: Duration = Duration::from_secs(MAX_DELAY.as_secs() - 60);

/// Queues `d` to be attempted after `wait`: on the queue, or parked in the
/// store until it is due within the queue's longest delay.
pub async fn schedule_at(p: &Platform, d: &Delivery, wait: Duration) -> Result<(), Error> {
    if wait <= PARK_PAST {
        p.delivery_queue.send(d.encode(), wait).await?;
        return Ok(());
    }
    ensure_cursor(p).await?;
    let due = p.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
    let sk = format!("{:013}#{}", due.timestamp_millis(), AttemptId::new());
    let put = Put::new(
        parked(due.timestamp() / 60, &sk),
        json!({"due": due, "delivery": d.encode()}),
    );
    p.store.put(put).await?;
    Ok(())
}

/// Whether this process made sure the release cursor exists.
#[derive(Default)]
struct CursorMade(std::sync::atomic::AtomicBool);

/// Writes the release cursor at the current minute unless one exists, so
/// that the first release starts no later than the first park.
async fn ensure_cursor(p: &Platform) -> Result<(), Error> {
    let made = p.kept.get::<CursorMade>();
    if made.0.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let minute = p.clock.now().timestamp() / 60;
    let put = Put::new(release_cursor(), json!({ "minute": minute })).when(Cond::Absent);
    match p.store.put(put).await {
        Ok(_) | Err(crate::ports::StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    made.0.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn parked_partition(minute: i64) -> String {
    format!("parked#{minute}")
}

fn parked(minute: i64, sk: &str) -> Key {
    Key::new(parked_partition(minute), sk)
}

fn release_cursor() -> Key {
    Key::new("parked", "cursor")
}

/// Minutes a release looks back before its cursor, for parkers whose clock
/// was behind the releaser's.
const RELEASE_OVERLAP: i64 = 5;

/// The minutes whose first page a release asks for at once, and that
/// page's length: small, as a few are held at once (an item may be large).
const RELEASE_AHEAD: usize = 4;
const FIRST_PAGE: usize = 10;

/// The first `limit` parked deliveries of `minute`.
async fn parked_page(p: &Platform, minute: i64, limit: usize) -> Result<crate::ports::Page, Error> {
    let mut query = Query::new(parked_partition(minute), "");
    query.limit = limit;
    Ok(p.store.query(query).await?)
}

/// Moves parked deliveries due within the queue's longest delay onto the
/// queue (with what is left of their wait); answers how many. Runs every
/// few seconds on one machine, every minute on AWS.
pub async fn release(p: &Platform, budget: Duration) -> Result<usize, Error> {
    let started = std::time::Instant::now();
    let now = p.clock.now();
    let now_minute = now.timestamp() / 60;
    let until = now_minute + (PARK_PAST.as_secs() as i64 / 60) - 1;
    // The cursor is never past the clock of the release that wrote it, so
    // a clock that went back (or another releaser's, behind) still finds
    // every minute parked after it.
    let from = match p.store.get(&release_cursor()).await? {
        Some(item) => {
            item.body["minute"]
                .as_i64()
                .unwrap_or(now_minute)
                .min(now_minute)
                - RELEASE_OVERLAP
        }
        // Nothing was ever parked (the first park writes the cursor), or
        // it was lost: from now on, it is kept.
        None => {
            let put =
                Put::new(release_cursor(), json!({ "minute": now_minute })).when(Cond::Absent);
            match p.store.put(put).await {
                Ok(_) | Err(crate::ports::StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            now_minute - RELEASE_OVERLAP
        }
    };
    let mut released = 0;
    // Most minutes hold nothing: their first pages are asked for a few at a
    // time, a round trip for several (in order, and a few pages held at most).
    let first_pages = futures::stream::iter(from..=until)
        .map(|minute| async move { (minute, parked_page(p, minute, FIRST_PAGE).await) })
        .buffered(RELEASE_AHEAD);
    futures::pin_mut!(first_pages);
    while let Some((minute, page)) = first_pages.next().await {
        let mut page = page?;
        loop {
            let mut due = Vec::with_capacity(page.items.len());
            for item in &page.items {
                let at: Option<DateTime<Utc>> = item
                    .body
                    .get("due")
                    .and_then(|d| serde_json::from_value(d.clone()).ok());
                match (at, item.body["delivery"].as_str()) {
                    (Some(at), Some(body)) => {
                        let wait = (at - now).to_std().unwrap_or_default().min(MAX_DELAY);
                        due.push((body.to_string(), wait));
                    }
                    // Not one this code parked: kept to look at, not retried.
                    _ => {
                        let text = item.body.to_string();
                        let why = "a parked delivery that cannot be read";
                        crate::dead_letters::keep_unreadable(p, "delivery", &text, why).await?;
                    }
                }
            }
            // Sent before they are deleted: a crash between sends one twice.
            for chunk in due.chunks(10) {
                p.delivery_queue.send_batch(chunk.to_vec()).await?;
            }
            futures::future::try_join_all(
                page.items
                    .iter()
                    .map(|item| p.store.delete(&item.key, Cond::Any)),
            )
            .await?;
            released += due.len();
            if page.next_cursor.is_none() || started.elapsed() > budget {
                break;
            }
            // What is left of the minute (what was read is deleted).
            page = parked_page(p, minute, 100).await?;
        }
        if started.elapsed() > budget {
            // This minute may hold more: the next release starts here.
            break;
        }
        if minute > from + RELEASE_OVERLAP && minute <= now_minute {
            p.store
                .put(Put::new(release_cursor(), json!({"minute": minute})))
                .await?;
        }
    }
    Ok(released)
}

/// Per-webhook rate limits of this process: the next free slot of each.
#[derive(Default)]
struct Slots(Mutex<HashMap<String, DateTime<Utc>>>);

/// Waits shorter than this are waited in place rather than queued: the
/// queue's delays have a grain of a second (SQS).
const WAIT_IN_PLACE: Duration = Duration::from_secs(1);

/// When the delivery may go under the webhook's rate limit: the slot it
/// holds (`not_before`, taken when it was deferred), or the next free one,
/// which it takes. `None`: now.
fn rate_slot(p: &Platform, w: &Webhook, d: &Delivery, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // A slot held is kept, however late the delivery comes back for it
    // (waits for other reasons drop it: a suspension).
    if let Some(held) = d.not_before {
        return (held > now).then_some(held);
    }
    let rate = w.rate_limit?;
    let interval = chrono::Duration::microseconds(1_000_000 / i64::from(rate.max(1)));
    let slots = p.kept.get::<Slots>();
    let mut all = slots.0.lock().unwrap_or_else(PoisonError::into_inner);
    if all.len() > 100_000 {
        all.retain(|_, at| *at > now);
    }
    let next = all.entry(w.id.to_string()).or_insert(now);
    let slot = (*next).max(now);
    *next = slot + interval;
    (slot > now).then_some(slot)
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<DateTime<Utc>>,
}

/// Endpoints that fail every call, in this process: past
/// `BREAKER_FAILURES` in a row, one call goes at a time (a probe) and the
/// others wait, so that a dead endpoint's backlog neither holds the
/// workers in timeouts nor uses up its deliveries' attempts.
#[derive(Default)]
struct Breakers(Mutex<HashMap<String, Breaker>>);

impl Breakers {
    fn wait(&self, id: &str, now: DateTime<Utc>) -> Option<Duration> {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let b = all.get_mut(id)?;
        let until = b.open_until?;
        if until > now {
            // Spread over the open window, so they do not all come back as one.
            let window = (until - now).to_std().unwrap_or_default();
            let wait = window + window.mul_f64(rand::rng().random_range(0.0..1.0));
            // Within the queue's delay: a backlog waiting on an endpoint is
            // never parked (the release would have to carry it all).
            return Some(wait.min(PARK_PAST));
        }
        // This one is the probe; the rest wait for what it finds.
        b.open_until = Some(now + chrono::Duration::seconds(5));
        None
    }

    fn failure(&self, id: &str, now: DateTime<Utc>) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() > 100_000 {
            all.clear();
        }
        let b = all.entry(id.to_string()).or_default();
        b.failures += 1;
        if b.failures >= BREAKER_FAILURES {
            let doublings = (b.failures - BREAKER_FAILURES).min(10);
            let open = Duration::from_secs(5 << doublings).min(BREAKER_MAX_OPEN);
            b.open_until = Some(now + chrono::Duration::from_std(open).unwrap_or_default());
        }
    }

    fn success(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// Webhooks this process ended the failing streak of, and when: another
/// process may have begun a streak since, so a success ends it again after
/// `HEALTHY_FOR`.
#[derive(Default)]
struct Healthy(Mutex<HashMap<String, std::time::Instant>>);

const HEALTHY_FOR: Duration = Duration::from_secs(60);

/// Ends the webhook's failing streak, if it had one (a success).
async fn healthy(p: &Platform, w: &Webhook) -> Result<(), Error> {
    let known = p.kept.get::<Healthy>();
    if known
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(w.id.as_str())
        .is_some_and(|at| at.elapsed() < HEALTHY_FOR)
    {
        return Ok(());
    }
    webhooks::set_health(p, &w.account, &w.id, None).await?;
    let mut all = known.0.lock().unwrap_or_else(PoisonError::into_inner);
    if all.len() > 100_000 {
        all.clear();
    }
    all.insert(w.id.to_string(), std::time::Instant::now());
    Ok(())
}

/// Records a failure; answers since when the webhook has been failing.
/// A streak whose last failure is older than the longest retry step (and
/// an hour) has ended: the endpoint had nothing to fail on meanwhile.
async fn failing(p: &Platform, w: &Webhook, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    p.kept
        .get::<Healthy>()
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(w.id.as_str());
    // The longest a failing endpoint may go unasked while its streak goes
    // on: the longest step with its jitter, or the longest Retry-After; a
    // breaker's wait; and an hour of lateness.
    let longest = p
        .settings
        .retry_schedule
        .iter()
        .max()
        .copied()
        .unwrap_or_default();
    let quiet = longest.mul_f64(1.1).max(MAX_RETRY_AFTER) + BREAKER_MAX_OPEN * 2;
    let gap = chrono::Duration::from_std(quiet + Duration::from_secs(3600)).unwrap_or_default();
    let current = webhooks::health(p, &w.account, &w.id).await?;
    let (since, write) = match &current {
        Some(h) if now - h.last_failure_at <= gap => {
            // Written again at most once a minute.
            (
                h.failing_since,
                now - h.last_failure_at > chrono::Duration::minutes(1),
            )
        }
        _ => (now, true),
    };
    if write {
        let h = webhooks::Health {
            failing_since: since,
            last_failure_at: now,
        };
        webhooks::set_health(p, &w.account, &w.id, Some(&h)).await?;
    }
    Ok(since)
}

/// Disables the webhook and publishes `webhook.disabled`. The event goes
/// first, named by the webhook's version: should the disabling fail (or
/// the process die) after it, the retry publishes it again under the same
/// id, which receivers drop by its `webhook-id`; none is lost.
async fn disable(p: &Platform, w: &Webhook, reason: &str) -> Result<(), Error> {
    let (current, version) = match webhooks::get(p, &w.account, &w.id).await {
        Ok(found) => found,
        Err(Error::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !current.active {
        return Ok(());
    }
    // Where it went, without the path: a chat service's webhook URL is a
    // secret of its own.
    let endpoint = match &current.channel {
        webhooks::Channel::Web { url, .. } => reqwest::Url::parse(url)
            .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()))
            .unwrap_or_default(),
        webhooks::Channel::Pushover { .. } => "pushover".into(),
        webhooks::Channel::Twilio { .. } => "twilio".into(),
    };
    let now = p.clock.now();
    let mut event = Map::new();
    event.insert(
        "id".into(),
        format!("evt_disabled_{}_{version}", w.id).into(),
    );
    event.insert("event".into(), webhooks::DISABLED_EVENT.into());
    event.insert(
        "timestamp".into(),
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into(),
    );
    event.insert("webhook_id".into(), w.id.to_string().into());
    event.insert("webhook_name".into(), current.name.clone().into());
    event.insert("endpoint".into(), endpoint.into());
    event.insert("reason".into(), reason.into());
    super::events::publish(p, &w.account, vec![event]).await?;
    let changed = change(p, w, |w| {
        if !w.active {
            return false;
        }
        w.active = false;
        w.disabled = Some(Disabled {
            at: now,
            reason: reason.to_string(),
        });
        w.updated_at = now;
        true
    })
    .await?;
    if changed.is_some() {
        tracing::warn!(reason, "webhook disabled");
    }
    Ok(())
}

/// Applies `edit` to the stored webhook under its version (again on a
/// conflict); answers the webhook written, or `None` when `edit` changed
/// nothing (or the webhook is gone).
async fn change(
    p: &Platform,
    w: &Webhook,
    edit: impl Fn(&mut Webhook) -> bool,
) -> Result<Option<Webhook>, Error> {
    for attempt in 0..crate::ports::store::OPTIMISTIC_ATTEMPTS {
        let (mut current, version) = match webhooks::get(p, &w.account, &w.id).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !edit(&mut current) {
            return Ok(None);
        }
        match webhooks::save(p, &current, Cond::Version(version)).await {
            Ok(()) => return Ok(Some(current)),
            Err(crate::ports::StoreError::Conflict) => {
                crate::ports::store::contention_pause(attempt).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(crate::ports::StoreError::Conflict.into())
}

/// Sends a sample of one of the webhook's events now, once (no retry),
/// and answers the attempt, logged as a test.
pub async fn test(
    p: &Platform,
    account: &str,
    w: &Webhook,
    kind: Option<&str>,
) -> Result<Attempt, Error> {
    let kind = match kind {
        Some(k) if w.events.iter().any(|e| e == k) => k.to_string(),
        Some(k) => {
            return Err(Error::invalid(
                "invalid_event",
                format!(
                    "event: the webhook is not subscribed to {k:?}: use one of {}",
                    w.events.join(", ")
                ),
            ));
        }
        None => w
            .events
            .first()
            .cloned()
            .unwrap_or_else(|| "delivered".into()),
    };
    let now = p.clock.now();
    let event = request::sample(&kind, now);
    let d = Delivery {
        account: account.to_string(),
        webhook_id: w.id.clone(),
        event,
        attempt: 1,
        first_queued_at: now,
        text: None,
        pending_logged: false,
        not_before: None,
    };
    let (status, answer, error) = match request::build(p, w, &d.event, None, now).await {
        Ok(out) => {
            let answer = request::send(p, out, true).await;
            let status = if answer.succeeded() {
                Status::Succeeded
            } else {
                Status::Failed
            };
            (status, Some(answer), None)
        }
        Err(Unsendable::Never(why) | Unsendable::Busy(why)) => (Status::Failed, None, Some(why)),
    };
    let mut attempt = attempt_of(&d, w, now, status, answer.as_ref(), error);
    attempt.test = true;
    if !w.log_response_body {
        // Shown to the caller, not kept.
        let shown = attempt.clone();
        attempt.response_body = None;
        attempts::record(p, account, &attempt).await?;
        return Ok(shown);
    }
    attempts::record(p, account, &attempt).await?;
    Ok(attempt)
}
