//! Running campaigns. A tick (every minute) starts the campaigns that are
//! due; a run holds the campaign's lease, so overlapping ticks never run
//! one campaign twice at once. A run is work on the campaign queue: one
//! message per page of each profile segment (matching, then sending the
//! next page as a message of its own, so no invocation holds a whole
//! audience, and the segments go in parallel), and one per batch of at
//! most 50 users to post.
//!
//! Each user a run picks is claimed first (a conditional write of their
//! record in the campaign): no user is in two batches, whichever runs
//! overlap or are retried. A 200 marks the batch's users sent; any other
//! answer, or none, releases them for the next run.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Campaign, audience_of, get};
use crate::Platform;
use crate::error::{Error, Result};
use crate::ids::{AttemptId, CampaignId, RunId};
use crate::keys;
use crate::messages::CampaignMessage;
use crate::ports::{Cond, Item, Key, Put, Query, StoreError, Write};
use crate::profiles::{self, Profile, SEGMENTS};

/// Profiles matched per message.
pub const PAGE: usize = 500;
/// Matching one message's page may take this long; the rest of the page
/// is the next message's.
const MATCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// A post marked on its users longer ago than this was cut off with its
/// worker (posts end within the delivery timeout, at most 50 s).
const POSTING_STALE: Duration = Duration::seconds(120);
/// Users per post, as Mixpanel sends them.
pub const BATCH: usize = 50;
/// Profiles a test send posts.
pub const TEST_USERS: usize = 5;
/// How long a run's lease lasts unless its work renews it.
const LEASE_SECS: i64 = 600;
/// How long a claim holds a user for its batch: past it (a batch lost with
/// its worker), the user may be picked again.
const CLAIM_SECS: i64 = 3600;
/// Runs (and their counters) are kept this long.
const RUN_DAYS: i64 = 90;
/// A tick starts campaigns for this long at most (well within the
/// function's 60 s, so that no start is cut off between its record and
/// its messages); the rest are due at the next.
const TICK_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);
/// Campaigns started by one tick (and ten times as many looked at); the
/// rest are due at the next.
const MAX_PER_TICK: usize = 1000;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its schedule.
    Schedule,
    /// `POST /v1/campaigns/{id}/run`.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub campaign_id: CampaignId,
    pub trigger: Trigger,
    pub generation: u32,
    pub started_at: DateTime<Utc>,
}

/// A user's record in a campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Claim {
    /// The campaign's `generation` it was written under: a record of
    /// other criteria counts as none.
    #[serde(default)]
    generation: u32,
    #[serde(default)]
    sent: u32,
    #[serde(default)]
    last_sent_at: Option<DateTime<Utc>>,
    /// The run whose batch holds the user, and until when.
    #[serde(default)]
    pending_run: Option<RunId>,
    #[serde(default)]
    pending_until: Option<DateTime<Utc>>,
    /// The last run that picked the user.
    #[serde(default)]
    last_run: Option<RunId>,
    /// Since when its batch is being posted: a post older than
    /// [`POSTING_STALE`] was cut off with its worker, and is taken over.
    #[serde(default)]
    posting_since: Option<DateTime<Utc>>,
}

/// A run's counters.
pub const COUNTERS: [&str; 7] = [
    "matched", "queued", "sent", "failed", "skipped", "dropped", "errors",
];

/// What a tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Campaigns whose time had come.
    pub due: usize,
    /// Runs started.
    pub started: usize,
    /// Due but not started: a run of theirs still going, their account
    /// suspended, or a conflict with an edit (due again next tick).
    pub waiting: usize,
}

fn run_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::days(RUN_DAYS)
}

async fn count(p: &Platform, account: &str, run: &RunId, what: &str, n: usize) -> Result<()> {
    if n > 0 {
        p.store
            .add(
                &keys::run_counter(account, run, what),
                n as i64,
                Some(run_expiry(p.clock.now())),
            )
            .await?;
    }
    Ok(())
}

/// Starts every campaign due at `now` (the campaigns function and the
/// timer of `hookline serve` call this).
pub async fn tick(p: &Platform, now: DateTime<Utc>) -> Result<TickReport> {
    let began = std::time::Instant::now();
    let mut report = TickReport::default();
    let cutoff = super::due_text(now);
    let mut cursor = None;
    'pages: loop {
        let mut q = Query::new(keys::CAMPAIGNS_DUE, "");
        q.limit = 100;
        q.cursor = cursor;
        let page = p.store.query(q).await?;
        for item in page.items {
            if item.key.sk.as_str() > cutoff.as_str() && !item.key.sk.starts_with(&cutoff) {
                break 'pages;
            }
            if report.started >= MAX_PER_TICK
                || report.due >= 10 * MAX_PER_TICK
                || began.elapsed() > TICK_BUDGET
            {
                break 'pages;
            }
            report.due += 1;
            match start_due(p, &item).await {
                Ok(true) => report.started += 1,
                Ok(false) => report.waiting += 1,
                Err(e) => {
                    tracing::warn!(error = %e, entry = %item.key.sk, "a due campaign could not start; next tick");
                    report.waiting += 1;
                }
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(report)
}

/// Starts the campaign of a due entry, or drops an entry that no longer
/// stands for its campaign.
async fn start_due(p: &Platform, item: &Item) -> Result<bool> {
    let account = item.body["account"].as_str().unwrap_or_default();
    let id = item.body["campaign_id"]
        .as_str()
        .and_then(CampaignId::parse);
    let stale = || p.store.delete(&item.key, Cond::Any);
    let Some(id) = id else {
        stale().await?;
        return Ok(false);
    };
    let (c, version) = match get(p, account, &id).await {
        Ok(found) => found,
        Err(Error::NotFound(_)) => {
            stale().await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let entry = c
        .next_run_at
        .map(|at| keys::campaign_due(&super::due_text(at), account, &id));
    if !c.active || entry.as_ref() != Some(&item.key) {
        stale().await?;
        return Ok(false);
    }
    if crate::accounts::usage::status(p, account).await? != Some(crate::accounts::Status::Active) {
        return Ok(false);
    }
    Ok(start(p, account, c, version, Trigger::Schedule)
        .await?
        .is_some())
}

/// Runs the campaign now (`POST /v1/campaigns/{id}/run`); 409 while a run
/// of it is going.
pub async fn run_now(p: &Platform, account: &str, id: &CampaignId) -> Result<Run> {
    let (c, version) = get(p, account, id).await?;
    start(p, account, c, version, Trigger::Manual)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "campaign_running",
                "a run of this campaign is still going: see its runs, and try again once it ends",
            )
        })
}

/// Takes the lease and starts a run: its record, the campaign's next due
/// time (a scheduled run), and one message per segment. `None` when
/// another run holds the lease.
async fn start(
    p: &Platform,
    account: &str,
    mut c: Campaign,
    version: u64,
    trigger: Trigger,
) -> Result<Option<Run>> {
    let now = p.clock.now();
    let run = Run {
        id: RunId::new(),
        campaign_id: c.id.clone(),
        trigger,
        generation: c.generation,
        started_at: now,
    };
    let lease = keys::campaign_lease(account, &c.id);
    let held = Put::new(lease.clone(), serde_json::json!({"run_id": run.id}))
        .when(Cond::Absent)
        .expires(now + Duration::seconds(LEASE_SECS));
    match p.store.put(held).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let before = c.clone();
    c.last_run_id = Some(run.id.clone());
    if trigger == Trigger::Schedule {
        c.next_run_at = c
            .schedule
            .next_after(now.max(before.next_run_at.unwrap_or(now)));
    }
    let mut writes = super::save_writes(account, &c, Some(&before), Cond::Version(version));
    writes.push(Write::Put(
        Put::new(
            keys::campaign_run(account, &c.id, &run.id),
            serde_json::to_value(&run).expect("runs serialise"),
        )
        .expires(run_expiry(now)),
    ));
    if let Err(e) = p.store.write_all(writes).await {
        // Edited meanwhile: due again at the next tick, as edited.
        p.store.delete(&lease, Cond::Any).await?;
        return match e {
            StoreError::Conflict if trigger == Trigger::Schedule => Ok(None),
            StoreError::Conflict => Err(Error::conflict(
                "campaign_changed",
                "the campaign changed while its run started; retry",
            )),
            e => Err(e.into()),
        };
    }
    let messages = (0..SEGMENTS)
        .map(|segment| {
            let m = CampaignMessage::Segment {
                account: account.to_string(),
                campaign_id: c.id.clone(),
                run_id: run.id.clone(),
                segment,
                after: None,
                carry: Vec::new(),
            };
            (m.encode(), std::time::Duration::ZERO)
        })
        .collect::<Vec<_>>();
    for chunk in messages.chunks(10) {
        p.campaign_queue.send_batch(chunk.to_vec()).await?;
    }
    tracing::info!(account, campaign = %c.id, run = %run.id, ?trigger, "campaign run started");
    Ok(Some(run))
}

/// The run's lease renewed, while it is the run's; `false` when another
/// run holds it (this one was overtaken after its lease lapsed).
async fn renew(p: &Platform, account: &str, campaign: &CampaignId, run: &RunId) -> Result<bool> {
    let key = keys::campaign_lease(account, campaign);
    let now = p.clock.now();
    match p.store.get(&key).await? {
        Some(item) if item.body["run_id"].as_str() == Some(run.as_str()) => {
            let put = Put::new(key, item.body)
                .when(Cond::Version(item.version))
                .expires(now + Duration::seconds(LEASE_SECS));
            match p.store.put(put).await {
                Ok(_) | Err(StoreError::Conflict) => Ok(true),
                Err(e) => Err(e.into()),
            }
        }
        Some(_) => Ok(false),
        // Lapsed with no other run: take it back.
        None => {
            let put = Put::new(key, serde_json::json!({"run_id": run}))
                .when(Cond::Absent)
                .expires(now + Duration::seconds(LEASE_SECS));
            match p.store.put(put).await {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Whether a user matching now may be picked by this run.
fn eligible(c: &Campaign, claim: &Claim, run: &RunId, now: DateTime<Utc>) -> bool {
    if claim.generation != c.generation {
        return true;
    }
    if claim.pending_until.is_some_and(|t| t > now) || claim.last_run.as_ref() == Some(run) {
        return false;
    }
    if c.schedule.once_per_user() {
        return claim.sent == 0;
    }
    let limit = c.schedule.limit();
    if limit.max_per_user.is_some_and(|max| claim.sent >= max) {
        return false;
    }
    match (limit.min_interval, claim.last_sent_at) {
        (Some(secs), Some(last)) => now >= last + Duration::seconds(secs as i64),
        _ => true,
    }
}

fn claim_of(item: Option<&Item>) -> (Claim, Cond) {
    match item {
        Some(i) => (
            serde_json::from_value(i.body.clone()).unwrap_or_default(),
            Cond::Version(i.version),
        ),
        None => (Claim::default(), Cond::Absent),
    }
}

/// Writes the puts (at most a transaction's worth) in one transaction;
/// when one fails its condition (another writer touched it), each on its
/// own. Answers which were written.
async fn put_all_or_each(p: &Platform, puts: Vec<Put>) -> Result<Vec<bool>> {
    let writes = puts.iter().cloned().map(Write::Put).collect();
    match p.store.write_all(writes).await {
        Ok(()) => Ok(vec![true; puts.len()]),
        Err(StoreError::Conflict) => {
            let mut written = Vec::with_capacity(puts.len());
            for put in puts {
                match p.store.put(put).await {
                    Ok(_) => written.push(true),
                    Err(StoreError::Conflict) => written.push(false),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(written)
        }
        Err(e) => Err(e.into()),
    }
}

/// Claims the users for the run; answers those it got.
async fn claim(
    p: &Platform,
    account: &str,
    c: &Campaign,
    run: &RunId,
    users: Vec<String>,
) -> Result<(Vec<String>, usize)> {
    let now = p.clock.now();
    let mut wanted = Vec::new();
    let mut skipped = 0;
    let found = futures::future::try_join_all(
        users
            .iter()
            .map(|u| async move { p.store.get(&keys::campaign_user(account, &c.id, u)).await }),
    )
    .await?;
    for (user, item) in users.into_iter().zip(found) {
        let (mut claim, cond) = claim_of(item.as_ref());
        if !eligible(c, &claim, run, now) {
            skipped += 1;
            continue;
        }
        if claim.generation != c.generation {
            claim = Claim {
                generation: c.generation,
                ..Claim::default()
            };
        }
        claim.pending_run = Some(run.clone());
        claim.pending_until = Some(now + Duration::seconds(CLAIM_SECS));
        claim.posting_since = None;
        claim.last_run = Some(run.clone());
        let put = Put::new(
            keys::campaign_user(account, &c.id, &user),
            serde_json::to_value(&claim).expect("claims serialise"),
        )
        .when(cond);
        wanted.push((user, put));
    }
    let mut got = Vec::new();
    for chunk in wanted.chunks(crate::ports::store::MAX_WRITE_ALL) {
        let puts = chunk.iter().map(|(_, put)| put.clone()).collect();
        for ((user, _), written) in chunk.iter().zip(put_all_or_each(p, puts).await?) {
            if written {
                got.push(user.clone());
            } else {
                skipped += 1;
            }
        }
    }
    Ok((got, skipped))
}

/// One page of one segment: matched, claimed, batched; then the next page
/// queued, or the segment counted done.
pub async fn segment(
    p: &Platform,
    account: &str,
    campaign: &CampaignId,
    run: &RunId,
    segment: u32,
    after: Option<String>,
    carry: Vec<String>,
) -> Result<()> {
    let c = match get(p, account, campaign).await {
        Ok((c, _)) => c,
        // Deleted: nothing more to do for it.
        Err(Error::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !renew(p, account, campaign, run).await? {
        // Its lease lapsed (a long backlog) and a newer run took it: this
        // one matches no more, and posts what it holds.
        tracing::warn!(account, %campaign, %run, "a newer run holds the campaign: this one ends");
        return end_segment(p, account, campaign, run, segment, carry).await;
    }
    let audience = audience_of(p, account, &c).await?;
    let page_key = page_key(segment, after.as_deref());
    let (page, mut next) = profiles::page(p, account, segment, PAGE, after).await?;
    let now = p.clock.now();
    // From now, not from when a transform thread is free: waiting counts.
    let deadline = std::time::Instant::now() + MATCH_BUDGET;
    let judged = crate::transforms::pool::run(move || {
        let mut page = page;
        audience.judge(&mut page, now, Some(deadline))
    })
    .await
    .map_err(|e| Error::Busy(format!("matching: {e}")))?;
    let crate::campaigns::audience::Judged {
        matched,
        errors,
        first_error,
        stopped_at,
    } = judged;
    // Out of time within the page (a costly `where`): the next message
    // goes on from the last profile matched.
    if let Some(last) = stopped_at {
        next = Some(crate::ports::store::cursor::encode(
            &keys::profiles(account, segment),
            &last,
        ));
    }
    if let Some(e) = first_error {
        tracing::debug!(account, %campaign, %run, error = %e, "profiles not matched for an error");
    }
    let n_matched = matched.len();
    let (claimed, skipped) = claim(p, account, &c, run, matched).await?;
    let n_claimed = claimed.len();
    let mut ready = carry;
    ready.extend(claimed);
    let full = ready.len() / BATCH * BATCH;
    let rest = ready.split_off(full);
    send_batches(p, account, campaign, run, &ready).await?;
    // The page is done once: a copy of its message (received again after
    // its worker stopped) neither counts it again nor goes on twice.
    if !first_time(p, account, run, &page_key).await? {
        return Ok(());
    }
    count(p, account, run, "matched", n_matched).await?;
    count(p, account, run, "queued", n_claimed).await?;
    count(p, account, run, "skipped", skipped).await?;
    count(p, account, run, "errors", errors).await?;
    let Some(after) = next else {
        return end_segment(p, account, campaign, run, segment, rest).await;
    };
    let m = CampaignMessage::Segment {
        account: account.to_string(),
        campaign_id: campaign.clone(),
        run_id: run.clone(),
        segment,
        after: Some(after),
        carry: rest,
    };
    if let Err(e) = p
        .campaign_queue
        .send(m.encode(), std::time::Duration::ZERO)
        .await
    {
        // Not gone on: the page may be done again.
        p.store
            .delete(&Key::new(keys::run_done(account, run), page_key), Cond::Any)
            .await?;
        return Err(e.into());
    }
    Ok(())
}

/// The marker of a page of a segment: the cursor it starts from, digested.
fn page_key(segment: u32, after: Option<&str>) -> String {
    use sha2::Digest;
    let from = after.map_or_else(
        || "start".to_string(),
        |a| {
            sha2::Sha256::digest(a.as_bytes())[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        },
    );
    format!("page#{segment:02}#{from}")
}

/// Whether this is the first time `what` is marked done in the run.
async fn first_time(p: &Platform, account: &str, run: &RunId, what: &str) -> Result<bool> {
    let marker = Put::new(Key::new(keys::run_done(account, run), what), Value::Null)
        .when(Cond::Absent)
        .expires(run_expiry(p.clock.now()));
    match p.store.put(marker).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The end of a segment: its last users (fewer than 50) wait for the other
/// segments' (batches of 50 across segments), written before the segment
/// is marked done, so that whichever segment sees every one done finds
/// them all and batches them.
async fn end_segment(
    p: &Platform,
    account: &str,
    campaign: &CampaignId,
    run: &RunId,
    segment: u32,
    rest: Vec<String>,
) -> Result<()> {
    let expires = run_expiry(p.clock.now());
    for chunk in rest.chunks(crate::ports::store::MAX_WRITE_ALL) {
        let writes = chunk
            .iter()
            .map(|u| {
                Write::Put(
                    Put::new(
                        Key::new(keys::run_ready(account, run), u.clone()),
                        Value::Null,
                    )
                    .expires(expires),
                )
            })
            .collect();
        p.store.write_all(writes).await?;
    }
    first_time(p, account, run, &format!("seg#{segment:02}")).await?;
    if segments_done(p, account, run).await? < SEGMENTS as usize {
        return Ok(());
    }
    // Every segment that sees all done batches what is left (at most one
    // finds any: the batched are removed; a user in two batch messages is
    // posted by one of them).
    flush(p, account, campaign, run).await?;
    let lease = keys::campaign_lease(account, campaign);
    if let Some(item) = p.store.get(&lease).await?
        && item.body["run_id"].as_str() == Some(run.as_str())
    {
        match p.store.delete(&lease, Cond::Version(item.version)).await {
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(account, %campaign, %run, "campaign run matched every segment");
    Ok(())
}

/// How many of the run's segments are matched to the end.
async fn segments_done(p: &Platform, account: &str, run: &RunId) -> Result<usize> {
    let mut q = Query::new(keys::run_done(account, run), "seg#");
    q.limit = SEGMENTS as usize + 1;
    Ok(p.store.query(q).await?.items.len())
}

/// Queues a batch message per 50 users.
async fn send_batches(
    p: &Platform,
    account: &str,
    campaign: &CampaignId,
    run: &RunId,
    users: &[String],
) -> Result<()> {
    let messages: Vec<_> = users
        .chunks(BATCH)
        .map(|users| {
            let m = CampaignMessage::Batch {
                account: account.to_string(),
                campaign_id: campaign.clone(),
                run_id: run.clone(),
                users: users.to_vec(),
            };
            (m.encode(), std::time::Duration::ZERO)
        })
        .collect();
    for chunk in messages.chunks(10) {
        p.campaign_queue.send_batch(chunk.to_vec()).await?;
    }
    Ok(())
}

/// Batches the segments' remainders (each fewer than 50) once every
/// segment is matched.
async fn flush(p: &Platform, account: &str, campaign: &CampaignId, run: &RunId) -> Result<()> {
    let pk = keys::run_ready(account, run);
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let mut q = Query::new(pk.clone(), "");
        q.cursor = cursor;
        q.limit = 100;
        let page = p.store.query(q).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let users: Vec<String> = items.iter().map(|i| i.key.sk.clone()).collect();
    send_batches(p, account, campaign, run, &users).await?;
    for chunk in items.chunks(crate::ports::store::MAX_WRITE_ALL) {
        crate::ports::store::delete_items(&*p.store, chunk.to_vec()).await?;
    }
    Ok(())
}

/// A post to a campaign's URL, as its attempt log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchAttempt {
    pub id: AttemptId,
    #[schema(required = true)]
    pub run_id: Option<RunId>,
    pub users: usize,
    /// Whether the users were marked sent (a 200 came back).
    pub succeeded: bool,
    #[schema(required = true)]
    pub response_status: Option<u16>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Posts `users` (a JSON list of profiles) to the campaign's URL.
async fn post(
    p: &Platform,
    account: &str,
    c: &Campaign,
    run: Option<&RunId>,
    users: &[&Profile],
    test: bool,
) -> Result<BatchAttempt> {
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            serde_json::json!({
                "$distinct_id": u.distinct_id,
                "$properties": u.properties.clone().unwrap_or_default(),
            })
        })
        .collect();
    let json = serde_json::to_string(&list).expect("profiles serialise");
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("users", &json)
        .finish();
    let url = reqwest::Url::parse(&c.url).map_err(|e| Error::internal("campaign url", e))?;
    let mut headers = vec![("user-agent", "Hookline-Campaigns/1".to_string())];
    if test {
        headers.push(("x-hookline-test", "true".to_string()));
    }
    let out = crate::delivery::request::Outbound {
        method: reqwest::Method::POST,
        url,
        headers,
        body: Some(("application/x-www-form-urlencoded", body.into_bytes())),
        basic_auth: None,
    };
    let answer = crate::delivery::request::send(p, out, false).await;
    let attempt = BatchAttempt {
        id: AttemptId::new(),
        run_id: run.cloned(),
        users: users.len(),
        succeeded: answer.status == Some(200),
        response_status: answer.status,
        duration_ms: answer.duration.as_millis() as u64,
        error: answer.error,
        at: p.clock.now(),
        test,
    };
    let expires =
        attempt.at + Duration::from_std(p.settings.attempt_retention).unwrap_or(Duration::days(30));
    p.store
        .put(
            Put::new(
                keys::campaign_attempt(account, &c.id, &attempt.id),
                serde_json::to_value(&attempt).expect("attempts serialise"),
            )
            .expires(expires),
        )
        .await?;
    Ok(attempt)
}

/// Posts a batch of users the run claimed; a 200 marks them sent, anything
/// else releases them for the next run.
pub async fn batch(
    p: &Platform,
    account: &str,
    campaign: &CampaignId,
    run: &RunId,
    users: &[String],
) -> Result<()> {
    let c = match get(p, account, campaign).await {
        Ok((c, _)) => c,
        Err(Error::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let now = p.clock.now();
    // Only the users still held for this run (a batch received again after
    // it was answered holds none).
    let claims = futures::future::try_join_all(users.iter().map(|u| async move {
        p.store
            .get(&keys::campaign_user(account, campaign, u))
            .await
    }))
    .await?;
    let mut held: Vec<(&String, Item)> = Vec::new();
    let mut lost = 0;
    let mut in_flight = 0;
    for (user, item) in users.iter().zip(claims) {
        let claim: Option<Claim> = item
            .as_ref()
            .and_then(|i| serde_json::from_value(i.body.clone()).ok());
        let ours = claim
            .as_ref()
            .is_some_and(|c| c.pending_run.as_ref() == Some(run));
        let live = claim
            .as_ref()
            .is_some_and(|c| c.pending_until.is_some_and(|t| t > now));
        match (claim, item) {
            (Some(c), Some(item))
                if ours && live && c.posting_since.is_none_or(|t| now - t > POSTING_STALE) =>
            {
                held.push((user, item))
            }
            // Being posted by a copy of this message right now: this one
            // comes back later, to find them answered (or the post cut off).
            (Some(_), _) if ours && live => in_flight += 1,
            // Answered already (this message, received again).
            (Some(c), _) if c.pending_run.is_none() && c.last_run.as_ref() == Some(run) => {}
            // Its hold lapsed, or a newer run took the user: not this
            // run's to send any more.
            _ => lost += 1,
        }
    }
    if in_flight > 0 {
        return Err(Error::Busy(format!(
            "{in_flight} users of this batch are being posted by another worker"
        )));
    }
    // Counted once per batch, however often its message is received.
    if lost > 0 && first_time(p, account, run, &format!("batch#{}", users[0])).await? {
        count(p, account, run, "dropped", lost).await?;
    }
    // Taken for this post first: a copy of the message received at the
    // same time (or again after a crash mid-post) finds them taken.
    let mut marked = Vec::with_capacity(held.len());
    for (user, mut item) in held {
        let mut claim: Claim = serde_json::from_value(item.body.clone()).unwrap_or_default();
        claim.posting_since = Some(now);
        item.body = serde_json::to_value(&claim).expect("claims serialise");
        marked.push((user, item));
    }
    let puts = marked
        .iter()
        .map(|(_, item)| {
            Put::new(item.key.clone(), item.body.clone()).when(Cond::Version(item.version))
        })
        .collect();
    let written = put_all_or_each(p, puts).await?;
    // Those taken, with their versions read back for the writes after the
    // post (a copy of this message may have taken the others first).
    let mine: Vec<_> = marked
        .into_iter()
        .zip(written)
        .filter_map(|(m, written)| written.then_some(m))
        .collect();
    let now_held =
        futures::future::try_join_all(mine.iter().map(|(_, item)| p.store.get(&item.key))).await?;
    let taken: Vec<_> = mine
        .into_iter()
        .zip(now_held)
        .filter_map(|((user, _), item)| Some((user, item?)))
        .collect();
    let held = taken;
    if held.is_empty() {
        return Ok(());
    }
    let found =
        futures::future::try_join_all(held.iter().map(|(u, _)| profiles::get(p, account, u)))
            .await?;
    let sendable: Vec<Profile> = found
        .into_iter()
        .flatten()
        .filter(|p| p.properties.is_some())
        .collect();
    let attempt = if sendable.is_empty() {
        None
    } else {
        Some(
            post(
                p,
                account,
                &c,
                Some(run),
                &sendable.iter().collect::<Vec<_>>(),
                false,
            )
            .await?,
        )
    };
    let sent = attempt.as_ref().is_some_and(|a| a.succeeded);
    let sent_ids: std::collections::HashSet<&str> = if sent {
        sendable.iter().map(|p| p.distinct_id.as_str()).collect()
    } else {
        Default::default()
    };
    let now = p.clock.now();
    let mut puts = Vec::new();
    for (user, item) in &held {
        let mut claim: Claim = serde_json::from_value(item.body.clone()).unwrap_or_default();
        claim.pending_run = None;
        claim.pending_until = None;
        claim.posting_since = None;
        if sent_ids.contains(user.as_str()) {
            claim.sent += 1;
            claim.last_sent_at = Some(now);
        }
        puts.push(
            Put::new(
                item.key.clone(),
                serde_json::to_value(&claim).expect("claims serialise"),
            )
            .when(Cond::Version(item.version)),
        );
    }
    // One written meanwhile by another writer keeps what that one wrote.
    put_all_or_each(p, puts).await?;
    let n = sendable.len();
    if sent {
        count(p, account, run, "sent", n).await?;
    } else {
        count(p, account, run, "failed", n).await?;
    }
    // Held users whose profile is gone were not sent: not failed either.
    count(p, account, run, "dropped", held.len() - n).await?;
    Ok(())
}

/// What a test send did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    /// Profiles posted (at most 5, picked at random).
    pub users: usize,
    pub attempt: Option<BatchAttempt>,
}

/// Posts up to five random profiles with `X-Hookline-Test: true`; marks
/// nobody.
pub async fn test(p: &Platform, account: &str, id: &CampaignId) -> Result<TestOutcome> {
    use rand::seq::SliceRandom;
    let (c, _) = get(p, account, id).await?;
    let mut segments: Vec<u32> = (0..SEGMENTS).collect();
    segments.shuffle(&mut rand::rng());
    let mut pool: Vec<Profile> = Vec::new();
    for s in segments {
        let (page, _) = profiles::page(p, account, s, 100, None).await?;
        pool.extend(page.into_iter().filter(|p| p.properties.is_some()));
        if pool.len() >= 4 * TEST_USERS {
            break;
        }
    }
    pool.shuffle(&mut rand::rng());
    pool.truncate(TEST_USERS);
    if pool.is_empty() {
        return Ok(TestOutcome {
            users: 0,
            attempt: None,
        });
    }
    let attempt = post(p, account, &c, None, &pool.iter().collect::<Vec<_>>(), true).await?;
    Ok(TestOutcome {
        users: pool.len(),
        attempt: Some(attempt),
    })
}

/// A run with its counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub id: RunId,
    pub campaign_id: CampaignId,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    /// `matching` (segments left), `sending` (batches unanswered) or `done`.
    pub status: &'static str,
    /// Profiles that met `where`.
    pub matched: u64,
    /// Users put in batches.
    pub queued: u64,
    /// Users posted and answered 200.
    pub sent: u64,
    /// Users whose batch failed: picked again by the next run.
    pub failed: u64,
    /// Users queued whose batch has no answer yet.
    pub pending: u64,
    /// Matched but not picked: sent before, or held by their limits.
    pub skipped: u64,
    /// Profiles the expression failed on (a missing property, say).
    pub errors: u64,
}

/// The campaign's runs, newest first.
pub async fn runs(
    p: &Platform,
    account: &str,
    id: &CampaignId,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<RunView>, Option<String>)> {
    let mut q = Query::new(keys::campaign_runs(account, id), "");
    q.limit = limit;
    q.cursor = cursor;
    q.reverse = true;
    let page = p.store.query(q).await?;
    let runs: Vec<Run> = crate::error::decoded(page.items, "decode run")?;
    let views = futures::future::try_join_all(runs.into_iter().map(|r| async move {
        let started = r.started_at;
        // Counters are read by adding nothing (they are not items to query).
        let values = futures::future::try_join_all(
            COUNTERS
                .iter()
                .map(|name| keys::run_counter(account, &r.id, name))
                .map(|key| async move { p.store.add(&key, 0, Some(run_expiry(started))).await }),
        )
        .await?;
        let get = |name: &str| {
            COUNTERS
                .iter()
                .position(|c| *c == name)
                .map_or(0, |i| values[i].max(0) as u64)
        };
        let (queued, sent, failed) = (get("queued"), get("sent"), get("failed"));
        let pending = queued.saturating_sub(sent + failed + get("dropped"));
        let status = if segments_done(p, account, &r.id).await? < SEGMENTS as usize {
            "matching"
        } else if pending > 0 {
            "sending"
        } else {
            "done"
        };
        Ok::<_, Error>(RunView {
            id: r.id,
            campaign_id: r.campaign_id,
            trigger: r.trigger,
            started_at: r.started_at,
            status,
            matched: get("matched"),
            queued,
            sent,
            failed,
            pending,
            skipped: get("skipped"),
            errors: get("errors"),
        })
    }))
    .await?;
    Ok((views, page.next_cursor))
}

/// The campaign's posts, newest first.
pub async fn attempts(
    p: &Platform,
    account: &str,
    id: &CampaignId,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<BatchAttempt>, Option<String>)> {
    let mut q = Query::new(keys::campaign_attempts(account, id), "");
    q.limit = limit;
    q.cursor = cursor;
    q.reverse = true;
    let page = p.store.query(q).await?;
    Ok((
        crate::error::decoded(page.items, "decode campaign attempt")?,
        page.next_cursor,
    ))
}
