//! Webhook campaigns (Mixpanel's webhook messages): who (`where`, over
//! profiles and their events), when (`schedule`), and where to (`url`,
//! receiving matched users in form-encoded batches of 50). Runs are in
//! `run`; a campaign is due when the `campaign_due` index says so.

pub mod audience;
pub mod run;
pub mod schedule;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::Platform;
use crate::error::{Error, Result};
use crate::ids::{CampaignId, RunId};
use crate::keys;
use crate::messages::ApplyMessage;
use crate::ports::store::Progress;
use crate::ports::{Cond, Put, Query, StoreError, Write};
pub use audience::{Audience, WhereError};
pub use schedule::Schedule;

/// Campaigns per account.
pub const MAX_CAMPAIGNS: usize = 100;
const MAX_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub url: String,
    #[serde(rename = "where")]
    pub criteria: String,
    pub schedule: Schedule,
    pub active: bool,
    /// One more each time `where` changes: a user sent for other criteria
    /// may be sent for these.
    #[serde(default)]
    pub generation: u32,
    /// When it is due next (active campaigns only).
    #[serde(default)]
    pub next_run_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_run_id: Option<RunId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid_field("invalid_campaign", field, message)
}

/// Compiles `where` on a transform thread; a 422 naming the column.
pub async fn compile(source: String) -> Result<Audience> {
    match crate::transforms::pool::run(move || Audience::compile(&source)).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(
            Error::invalid("invalid_where", format!("where: {e}")).with_details(
                serde_json::json!({"field": "where", "column": e.column, "message": e.message}),
            ),
        ),
        Err(crate::transforms::pool::Failed::Busy) => Err(Error::Busy(
            "every expression thread is busy; retry shortly".into(),
        )),
        Err(e) => Err(Error::invalid(
            "invalid_where",
            format!("where: cannot be compiled: {e}"),
        )),
    }
}

/// The compiled `where` of campaigns, kept per process.
#[derive(Default)]
struct Compiled(Mutex<HashMap<CompiledKey, (DateTime<Utc>, Audience)>>);

/// An account's campaign.
type CompiledKey = (String, CampaignId);

/// The campaign's audience, compiled once per edit.
pub async fn audience_of(p: &Platform, account: &str, c: &Campaign) -> Result<Audience> {
    let cache = p.kept.get::<Compiled>();
    let key = (account.to_string(), c.id.clone());
    if let Some((at, a)) = cache
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        && *at == c.updated_at
    {
        return Ok(a.clone());
    }
    let a = compile(c.criteria.clone()).await?;
    let mut map = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() > 10_000 {
        map.clear();
    }
    map.insert(key, (c.updated_at, a.clone()));
    Ok(a)
}

/// Applies the fields of `raw` onto `c` (a new campaign's defaults, or
/// the one being changed).
async fn apply_fields(p: &Platform, c: &mut Campaign, raw: &Value, creating: bool) -> Result<()> {
    let Value::Object(f) = raw else {
        return Err(Error::bad_request(
            "invalid_body",
            "a campaign is a JSON object",
        ));
    };
    const FIELDS: [&str; 5] = ["name", "url", "where", "schedule", "active"];
    if let Some(k) = f.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(
            k,
            "is not a campaign field: name, url, where, schedule, active",
        ));
    }
    let now = p.clock.now();
    let text = |f: &Map<String, Value>, k: &str| -> Result<Option<String>> {
        match f.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(k, "must be a string")),
        }
    };
    if let Some(name) = text(f, "name")? {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(invalid(
                "name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        c.name = name;
    } else if creating {
        return Err(invalid("name", "is required"));
    }
    if let Some(url) = text(f, "url")? {
        c.url = crate::webhooks::parse_url_field(p, "invalid_campaign", "url", Some(&url))?;
    } else if creating {
        return Err(invalid(
            "url",
            "is required: where matched users are posted",
        ));
    }
    if let Some(criteria) = text(f, "where")? {
        compile(criteria.clone()).await?;
        if criteria != c.criteria {
            c.generation += u32::from(!creating);
            c.criteria = criteria;
        }
    }
    match f.get("schedule") {
        Some(raw) => c.schedule = Schedule::parse(raw, now)?,
        None if creating => return Err(invalid("schedule", "is required")),
        None => {}
    }
    match f.get("active") {
        Some(Value::Bool(b)) => c.active = *b,
        Some(_) => return Err(invalid("active", "must be true or false")),
        None => {}
    }
    c.updated_at = now;
    Ok(())
}

fn due_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The writes that keep `c` and the due index in step; `before`: its
/// stored state, if any.
fn save_writes(account: &str, c: &Campaign, before: Option<&Campaign>, cond: Cond) -> Vec<Write> {
    let body = serde_json::to_value(c).expect("campaigns serialise");
    let mut writes = vec![Write::Put(
        Put::new(keys::campaign(account, &c.id), body).when(cond),
    )];
    let old = before.and_then(|b| b.next_run_at);
    if old != c.next_run_at {
        if let Some(old) = old {
            writes.push(Write::Delete {
                key: keys::campaign_due(&due_text(old), account, &c.id),
                cond: Cond::Any,
            });
        }
        if let Some(new) = c.next_run_at {
            writes.push(Write::Put(Put::new(
                keys::campaign_due(&due_text(new), account, &c.id),
                serde_json::json!({"account": account, "campaign_id": c.id}),
            )));
        }
    }
    writes
}

/// When an active campaign is next due, from now.
fn next_due(c: &Campaign, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !c.active {
        return None;
    }
    if c.schedule.continuous() {
        return Some(now);
    }
    c.schedule.next_after(now)
}

pub async fn create(p: &Platform, account: &str, raw: &Value) -> Result<Campaign> {
    let now = p.clock.now();
    let mut c = Campaign {
        id: CampaignId::new(),
        name: String::new(),
        url: String::new(),
        criteria: "true".into(),
        schedule: Schedule::Asap,
        active: true,
        generation: 0,
        next_run_at: None,
        last_run_id: None,
        created_at: now,
        updated_at: now,
    };
    apply_fields(p, &mut c, raw, true).await?;
    let mut q = Query::new(keys::campaigns(account), "");
    q.limit = MAX_CAMPAIGNS;
    if p.store.query(q).await?.items.len() >= MAX_CAMPAIGNS {
        return Err(Error::Forbidden {
            code: "campaign_limit_reached",
            message: format!(
                "the account has {MAX_CAMPAIGNS} campaigns, its most: delete one first"
            ),
        });
    }
    c.next_run_at = next_due(&c, now);
    p.store
        .write_all(save_writes(account, &c, None, Cond::Absent))
        .await?;
    Ok(c)
}

pub async fn get(p: &Platform, account: &str, id: &CampaignId) -> Result<(Campaign, u64)> {
    let item = p
        .store
        .get(&keys::campaign(account, id))
        .await?
        .ok_or_else(|| Error::not_found("campaign"))?;
    let c = serde_json::from_value(item.body).map_err(|e| Error::internal("decode campaign", e))?;
    Ok((c, item.version))
}

pub async fn page(
    p: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Campaign>, Option<String>)> {
    let mut q = Query::new(keys::campaigns(account), "");
    q.limit = limit;
    q.cursor = cursor;
    let page = p.store.query(q).await?;
    Ok((
        crate::error::decoded(page.items, "decode campaign")?,
        page.next_cursor,
    ))
}

/// A change to a campaign.
enum Change<'a> {
    /// The fields of a `PATCH`.
    Fields(&'a Value),
    Active(bool),
}

/// Changes a campaign, again when another write came first; its due time
/// follows its schedule and whether it is active.
async fn modify(
    p: &Platform,
    account: &str,
    id: &CampaignId,
    change: Change<'_>,
) -> Result<Campaign> {
    let mut attempt = 0;
    loop {
        let (before, version) = get(p, account, id).await?;
        let mut c = before.clone();
        match change {
            Change::Fields(raw) => apply_fields(p, &mut c, raw, false).await?,
            Change::Active(active) if c.active != active => {
                c.active = active;
                c.updated_at = p.clock.now();
            }
            Change::Active(_) => {}
        }
        if c.schedule != before.schedule || c.active != before.active {
            c.next_run_at = next_due(&c, p.clock.now());
        }
        match p
            .store
            .write_all(save_writes(
                account,
                &c,
                Some(&before),
                Cond::Version(version),
            ))
            .await
        {
            Ok(()) => return Ok(c),
            Err(StoreError::Conflict) if attempt < 8 => {
                crate::ports::store::contention_pause(attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn update(p: &Platform, account: &str, id: &CampaignId, raw: &Value) -> Result<Campaign> {
    modify(p, account, id, Change::Fields(raw)).await
}

pub async fn set_active(
    p: &Platform,
    account: &str,
    id: &CampaignId,
    active: bool,
) -> Result<Campaign> {
    modify(p, account, id, Change::Active(active)).await
}

/// Removes the campaign and its place in the due index; its users, runs
/// and attempts are removed after the answer.
pub async fn delete(p: &Platform, account: &str, id: &CampaignId) -> Result<()> {
    let (c, version) = get(p, account, id).await?;
    let mut writes = vec![Write::Delete {
        key: keys::campaign(account, id),
        cond: Cond::Version(version),
    }];
    if let Some(at) = c.next_run_at {
        writes.push(Write::Delete {
            key: keys::campaign_due(&due_text(at), account, id),
            cond: Cond::Any,
        });
    }
    p.store.write_all(writes).await.map_err(|e| match e {
        StoreError::Conflict => Error::conflict(
            "campaign_changed",
            "the campaign changed while being deleted; retry",
        ),
        e => e.into(),
    })?;
    ApplyMessage::PurgeCampaign {
        account: account.to_string(),
        campaign_id: id.clone(),
    }
    .send(p)
    .await?;
    Ok(())
}

/// Removes what a deleted campaign left: its users, runs (and their
/// counters) and attempt log, for up to `budget`. A campaign that exists
/// again under the id is a conflict (never: ids are not reused).
pub async fn purge(
    p: &Platform,
    account: &str,
    id: &CampaignId,
    budget: std::time::Duration,
) -> Result<Progress, StoreError> {
    if p.store.get(&keys::campaign(account, id)).await?.is_some() {
        return Err(StoreError::Conflict);
    }
    crate::accounts::purge_campaign(p, account, id, budget).await
}
