//! User profiles (Mixpanel's `$distinct_id` and `$properties`) and what
//! campaigns target by: each profile keeps, beside its properties, how
//! many times each event was tracked on each of the last 90 days. Raw
//! events are not kept, so matching an audience reads profiles and never
//! scans events.
//!
//! Profiles are spread over [`SEGMENTS`] partitions by a hash of their id,
//! so that a campaign's audience is read in that many parts at once.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

use crate::Platform;
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::store::MAX_WRITE_ALL;
use crate::ports::store::{check_item_size, contention_pause};
use crate::ports::{Cond, Put, Query, StoreError, Write};

/// Partitions of an account's profiles, read in parallel by a run.
pub const SEGMENTS: u32 = 16;
/// Profiles or events in one request.
pub const MAX_BATCH: usize = 1000;
/// The longest `$distinct_id`, and the longest event name, in bytes.
pub const MAX_ID: usize = 255;
/// A profile's properties, as JSON.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
/// How far back `did` and `count` see, in days.
pub const WINDOW_DAYS: i64 = 90;
/// Event names counted per profile; past it, the name tracked least
/// recently is forgotten.
pub const MAX_EVENT_NAMES: usize = 100;
/// How far in the future a tracked event may be dated (clock skew).
const FUTURE_SLACK_SECS: i64 = 3600;
/// Profiles written at once by one request.
const WRITERS: usize = 16;

/// Which partition a profile is in.
pub fn segment_of(distinct_id: &str) -> u32 {
    crc32fast::hash(distinct_id.as_bytes()) % SEGMENTS
}

/// Days since 1970-01-01, UTC.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// Per event name, `[day, count]` pairs, oldest day first.
pub type Activity = BTreeMap<String, Vec<(i64, u64)>>;

/// How many times `event` is in `activity` on the last `days` days (at
/// most [`WINDOW_DAYS`]), `today` (a [`day_of`]) included.
pub fn count_in(activity: &Activity, event: &str, days: i64, today: i64) -> u64 {
    let from = today - days.clamp(0, WINDOW_DAYS) + 1;
    activity.get(event).map_or(0, |list| {
        list.iter()
            .rev()
            .take_while(|(day, _)| *day >= from)
            .filter(|(day, _)| *day <= today)
            .map(|(_, n)| n)
            .sum()
    })
}

/// A profile as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub distinct_id: String,
    /// `None` until the profile itself is sent (events alone make none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
    /// Per event name, `[day, count]` pairs, oldest day first, within the
    /// last [`WINDOW_DAYS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub activity: Activity,
    pub updated_at: DateTime<Utc>,
}

impl Profile {
    /// How many times `event` was tracked on the last `days` days, today
    /// (`today`, a [`day_of`]) included.
    pub fn count(&self, event: &str, days: i64, today: i64) -> u64 {
        count_in(&self.activity, event, days, today)
    }

    /// Forgets days before the window and, past [`MAX_EVENT_NAMES`], the
    /// names tracked least recently.
    fn prune(&mut self, today: i64) {
        let oldest = today - WINDOW_DAYS + 1;
        self.activity.retain(|_, days| {
            days.retain(|(day, _)| *day >= oldest);
            !days.is_empty()
        });
        while self.activity.len() > MAX_EVENT_NAMES {
            let stalest = self
                .activity
                .iter()
                .min_by_key(|(_, days)| days.last().map(|(d, _)| *d))
                .map(|(name, _)| name.clone())
                .expect("more than none");
            self.activity.remove(&stalest);
        }
    }

    fn record(&mut self, event: &str, day: i64, n: u64) {
        let days = self.activity.entry(event.to_string()).or_default();
        match days.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => days[i].1 += n,
            Err(i) => days.insert(i, (day, n)),
        }
    }
}

/// Properties to set on a profile (`null` removes one).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileUpdate {
    pub distinct_id: String,
    pub properties: Map<String, Value>,
}

/// One tracked event, as counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub distinct_id: String,
    pub event: String,
    pub time: DateTime<Utc>,
    /// Mixpanel's `$insert_id`: an event sent again with the same one (a
    /// retried call) is counted once.
    pub insert_id: Option<String>,
}

fn invalid(code: &'static str, at: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid(code, format!("{at}: {message}"))
}

/// One object, or a list of up to [`MAX_BATCH`]; `name` is what an item
/// is called in errors.
fn items<'a>(body: &'a Value, code: &'static str, name: &str) -> Result<Vec<(String, &'a Value)>> {
    match body {
        Value::Array(list) => {
            if list.is_empty() || list.len() > MAX_BATCH {
                return Err(invalid(
                    code,
                    name,
                    format!("send 1 to {MAX_BATCH} at once, not {}", list.len()),
                ));
            }
            Ok(list
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{name}[{i}]"), v))
                .collect())
        }
        Value::Object(_) => Ok(vec![(name.to_string(), body)]),
        _ => Err(Error::bad_request(
            code,
            format!("the body is one {name} (an object) or a list of them"),
        )),
    }
}

fn distinct_id(v: Option<&Value>, code: &'static str, at: &str) -> Result<String> {
    let id = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        None | Some(Value::Null) => return Err(invalid(code, at, "is required")),
        Some(_) => return Err(invalid(code, at, "must be a string (or a whole number)")),
    };
    if id.is_empty() || id.len() > MAX_ID {
        return Err(invalid(code, at, format!("must be 1 to {MAX_ID} bytes")));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid(code, at, "must not hold control characters"));
    }
    Ok(id)
}

/// `POST /v1/profiles`'s body: `{"$distinct_id", "$properties"}` (or
/// Mixpanel's `$set`), one or a list.
pub fn parse_profiles(body: &Value) -> Result<Vec<ProfileUpdate>> {
    const CODE: &str = "invalid_profile";
    items(body, CODE, "profile")?
        .into_iter()
        .map(|(at, v)| {
            let Value::Object(fields) = v else {
                return Err(invalid(CODE, &at, "a profile is a JSON object"));
            };
            let mut properties = None;
            for (k, v) in fields {
                match k.as_str() {
                    "$distinct_id" => {}
                    "$properties" | "$set" => {
                        if properties.is_some() {
                            return Err(invalid(CODE, &at, "send $properties or $set, not both"));
                        }
                        let Value::Object(map) = v else {
                            return Err(invalid(CODE, &format!("{at}.{k}"), "must be an object"));
                        };
                        properties = Some(map.clone());
                    }
                    // Mixpanel's own ($token, $ip, $time...): meaningless here.
                    k if k.starts_with('$') => {}
                    k => {
                        return Err(invalid(
                            CODE,
                            &format!("{at}.{k}"),
                            "is not a profile field: put properties in $properties",
                        ));
                    }
                }
            }
            let id = distinct_id(
                fields.get("$distinct_id"),
                CODE,
                &format!("{at}.$distinct_id"),
            )?;
            let properties = properties.unwrap_or_default();
            let at = format!("{at}.$properties");
            let len = serde_json::to_vec(&properties).map_or(usize::MAX, |b| b.len());
            if len > MAX_PROPERTIES_BYTES {
                return Err(invalid(
                    CODE,
                    &at,
                    format!("{len} bytes of JSON; at most {MAX_PROPERTIES_BYTES}"),
                ));
            }
            crate::ports::store::check_shape(&Value::Object(properties.clone()))
                .map_err(|e| invalid(CODE, &at, e))?;
            Ok(ProfileUpdate {
                distinct_id: id,
                properties,
            })
        })
        .collect()
}

/// `POST /v1/track`'s body: `{"event", "properties": {"distinct_id",
/// "time"}}`, one or a list. `time` is Unix seconds (or milliseconds), now
/// when absent. Other properties are accepted and not kept.
pub fn parse_track(body: &Value, now: DateTime<Utc>) -> Result<Vec<Tracked>> {
    const CODE: &str = "invalid_event";
    items(body, CODE, "event")?
        .into_iter()
        .map(|(at, v)| {
            let Value::Object(fields) = v else {
                return Err(invalid(CODE, &at, "an event is a JSON object"));
            };
            let event = match fields.get("event") {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID => s.clone(),
                Some(Value::String(_)) => {
                    return Err(invalid(
                        CODE,
                        &format!("{at}.event"),
                        format!("must be 1 to {MAX_ID} bytes"),
                    ));
                }
                None | Some(Value::Null) => {
                    return Err(invalid(CODE, &format!("{at}.event"), "is required"));
                }
                Some(_) => return Err(invalid(CODE, &format!("{at}.event"), "must be a string")),
            };
            let properties = match fields.get("properties") {
                Some(Value::Object(p)) => p,
                None => {
                    return Err(invalid(
                        CODE,
                        &format!("{at}.properties"),
                        "is required (it carries distinct_id)",
                    ));
                }
                Some(_) => {
                    return Err(invalid(
                        CODE,
                        &format!("{at}.properties"),
                        "must be an object",
                    ));
                }
            };
            let id = distinct_id(
                properties.get("distinct_id"),
                CODE,
                &format!("{at}.properties.distinct_id"),
            )?;
            let time = match properties.get("time") {
                None | Some(Value::Null) => now,
                Some(Value::Number(n)) => {
                    let at = format!("{at}.properties.time");
                    let secs = match (n.as_i64(), n.as_f64()) {
                        (Some(i), _) => i,
                        (None, Some(f)) if f.is_finite() => f as i64,
                        _ => return Err(invalid(CODE, &at, "is not a time")),
                    };
                    // Mixpanel takes milliseconds too: no event is from 1970's 1e11 s.
                    let secs = if secs.abs() >= 100_000_000_000 {
                        secs / 1000
                    } else {
                        secs
                    };
                    let time = DateTime::from_timestamp(secs, 0)
                        .ok_or_else(|| invalid(CODE, &at, "is not a time"))?;
                    if time.timestamp() > now.timestamp() + FUTURE_SLACK_SECS {
                        return Err(invalid(CODE, &at, "is in the future"));
                    }
                    time
                }
                Some(_) => {
                    return Err(invalid(
                        CODE,
                        &format!("{at}.properties.time"),
                        "must be Unix seconds (a number)",
                    ));
                }
            };
            let insert_id = match properties.get("$insert_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID => Some(s.clone()),
                Some(_) => {
                    return Err(invalid(
                        CODE,
                        &format!("{at}.properties.$insert_id"),
                        format!("must be a string of 1 to {MAX_ID} bytes"),
                    ));
                }
            };
            Ok(Tracked {
                distinct_id: id,
                event,
                time,
                insert_id,
            })
        })
        .collect()
}

/// Reads, changes and writes one profile, again when another write came
/// first. `change` answers whether there is anything to write, and what
/// else to write with it, all or nothing: when one of those fails its
/// condition, the profile is not written and `Conflict` is answered.
async fn modify(
    p: &Platform,
    account: &str,
    distinct_id: &str,
    change: impl Fn(&mut Profile) -> Option<Vec<Write>>,
) -> Result<()> {
    let key = keys::profile(account, segment_of(distinct_id), distinct_id);
    let mut attempt = 0;
    loop {
        let (mut profile, cond) = match p.store.get(&key).await? {
            Some(item) => (
                serde_json::from_value::<Profile>(item.body)
                    .map_err(|e| Error::internal("decode profile", e))?,
                Cond::Version(item.version),
            ),
            None => (
                Profile {
                    distinct_id: distinct_id.to_string(),
                    ..Profile::default()
                },
                Cond::Absent,
            ),
        };
        let Some(mut writes) = change(&mut profile) else {
            return Ok(());
        };
        let alone = writes.is_empty();
        profile.updated_at = p.clock.now();
        let len = profile
            .properties
            .as_ref()
            .map_or(0, |m| serde_json::to_vec(m).map_or(usize::MAX, |b| b.len()));
        if len > MAX_PROPERTIES_BYTES {
            return Err(Error::invalid(
                "profile_too_large",
                format!(
                    "profile {distinct_id:?} would hold {len} bytes of properties; at most {MAX_PROPERTIES_BYTES}: remove some (set them to null)"
                ),
            ));
        }
        let body = serde_json::to_value(&profile).expect("profiles serialise");
        check_item_size(&body).map_err(|e| {
            Error::invalid(
                "profile_too_large",
                format!("profile {distinct_id:?} would be too large to keep: {e}"),
            )
        })?;
        let put = Put::new(key.clone(), body).when(cond);
        let written = if alone {
            p.store.put(put).await.map(drop)
        } else {
            writes.push(Write::Put(put));
            p.store.write_all(writes).await
        };
        match written {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) if attempt < 8 && alone => {
                contention_pause(attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets the properties of each profile (creating it), `null` removing one;
/// answers how many profiles were written.
pub async fn upsert(p: &Platform, account: &str, updates: Vec<ProfileUpdate>) -> Result<usize> {
    // One write per profile, its updates in the order sent.
    let mut merged: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for u in updates {
        match at.get(&u.distinct_id) {
            Some(&i) => merged[i].1.extend(u.properties),
            None => {
                at.insert(u.distinct_id.clone(), merged.len());
                merged.push((u.distinct_id, u.properties));
            }
        }
    }
    let n = merged.len();
    let results: Vec<Result<()>> = futures::stream::iter(merged)
        .map(|(id, set)| async move {
            modify(p, account, &id, |profile| {
                let properties = profile.properties.get_or_insert_with(Map::new);
                for (k, v) in &set {
                    if v.is_null() {
                        properties.remove(k);
                    } else {
                        properties.insert(k.clone(), v.clone());
                    }
                }
                Some(Vec::new())
            })
            .await
        })
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(n)
}

/// What `track` counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrackOutcome {
    /// Events counted.
    pub recorded: usize,
    /// Events older than the 90 days targeting sees: accepted, not counted.
    pub ignored: usize,
    /// Events whose `$insert_id` was counted before: not counted again.
    pub duplicates: usize,
}

/// Counts each event on its profile's day; an event whose `$insert_id`
/// was counted before (within 90 days) is counted once.
pub async fn track(p: &Platform, account: &str, events: Vec<Tracked>) -> Result<TrackOutcome> {
    let now = p.clock.now();
    let today = day_of(now);
    let mut ignored = 0;
    let mut per_profile: Vec<(String, Vec<Tracked>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for e in events {
        if day_of(e.time) <= today - WINDOW_DAYS {
            ignored += 1;
            continue;
        }
        let i = *at.entry(e.distinct_id.clone()).or_insert_with(|| {
            per_profile.push((e.distinct_id.clone(), Vec::new()));
            per_profile.len() - 1
        });
        // The same $insert_id twice in one call: once.
        let events = &mut per_profile[i].1;
        if e.insert_id.is_some() && events.iter().any(|o| o.insert_id == e.insert_id) {
            continue;
        }
        events.push(e);
    }
    let sent: usize = per_profile.iter().map(|(_, e)| e.len()).sum();
    let results: Vec<Result<usize>> = futures::stream::iter(per_profile)
        .map(|(id, events)| async move {
            let mut duplicates = 0;
            // A transaction holds 100 writes: the profile and 99 markers.
            for chunk in events.chunks(MAX_WRITE_ALL - 1) {
                duplicates += track_one(p, account, &id, chunk, today).await?;
            }
            Ok(duplicates)
        })
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    let duplicates: usize = results.into_iter().sum::<Result<usize>>()?;
    Ok(TrackOutcome {
        recorded: sent - duplicates,
        ignored,
        duplicates,
    })
}

/// Counts `events` on one profile, with a marker for each `$insert_id`
/// written in the same transaction; answers how many were counted before.
async fn track_one(
    p: &Platform,
    account: &str,
    distinct_id: &str,
    events: &[Tracked],
    today: i64,
) -> Result<usize> {
    let segment = segment_of(distinct_id);
    let marker = |insert_id: &str| keys::insert_id(account, segment, distinct_id, insert_id);
    for attempt in 0..8 {
        let seen = futures::future::try_join_all(events.iter().map(|e| async {
            match &e.insert_id {
                Some(i) => p.store.get(&marker(i)).await.map(|m| m.is_some()),
                None => Ok(false),
            }
        }))
        .await?;
        let fresh: Vec<&Tracked> = events
            .iter()
            .zip(&seen)
            .filter(|(_, seen)| !**seen)
            .map(|(e, _)| e)
            .collect();
        let duplicates = events.len() - fresh.len();
        if fresh.is_empty() {
            return Ok(duplicates);
        }
        let written = modify(p, account, distinct_id, |profile| {
            for e in &fresh {
                profile.record(&e.event, day_of(e.time), 1);
            }
            profile.prune(today);
            Some(
                fresh
                    .iter()
                    .filter_map(|e| {
                        let id = e.insert_id.as_deref()?;
                        Some(Write::Put(
                            Put::new(marker(id), Value::Null)
                                .when(Cond::Absent)
                                .expires(e.time + chrono::Duration::days(WINDOW_DAYS)),
                        ))
                    })
                    .collect(),
            )
        })
        .await;
        match written {
            Ok(()) => return Ok(duplicates),
            // A marker or the profile written meanwhile: read again.
            Err(Error::Store(StoreError::Conflict)) => contention_pause(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Store(StoreError::Conflict))
}

pub async fn get(p: &Platform, account: &str, distinct_id: &str) -> Result<Option<Profile>> {
    let key = keys::profile(account, segment_of(distinct_id), distinct_id);
    match p.store.get(&key).await? {
        Some(item) => Ok(Some(
            serde_json::from_value(item.body).map_err(|e| Error::internal("decode profile", e))?,
        )),
        None => Ok(None),
    }
}

/// Removes a profile; answers whether there was one.
pub async fn delete(p: &Platform, account: &str, distinct_id: &str) -> Result<bool> {
    let key = keys::profile(account, segment_of(distinct_id), distinct_id);
    if p.store.get(&key).await?.is_none() {
        return Ok(false);
    }
    p.store.delete(&key, Cond::Any).await?;
    Ok(true)
}

/// Up to `limit` profiles of one segment, in id order, from `cursor` on.
pub async fn page(
    p: &Platform,
    account: &str,
    segment: u32,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Profile>, Option<String>)> {
    let mut query = Query::new(keys::profiles(account, segment), "");
    query.limit = limit;
    query.cursor = cursor;
    let page = p.store.query(query).await?;
    Ok((
        crate::error::decoded(page.items, "decode profile")?,
        page.next_cursor,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(activity: &[(&str, i64, u64)]) -> Profile {
        let mut p = Profile::default();
        for (e, d, n) in activity {
            p.record(e, *d, *n);
        }
        p
    }

    #[test]
    fn counts_only_the_last_days_asked() {
        let p = profile(&[("login", 100, 2), ("login", 95, 1), ("login", 80, 5)]);
        assert_eq!(p.count("login", 1, 100), 2);
        assert_eq!(p.count("login", 6, 100), 3);
        assert_eq!(p.count("login", 5, 100), 2);
        assert_eq!(p.count("login", 90, 100), 8);
        assert_eq!(p.count("signup", 90, 100), 0);
        // Never more than the window, whatever is asked: at day 170 the
        // window starts at day 81, past day 80's five.
        assert_eq!(p.count("login", 1000, 170), 3);
    }

    #[test]
    fn pruning_forgets_old_days_and_the_stalest_names() {
        let mut p = profile(&[("a", 10, 1), ("a", 100, 1)]);
        p.prune(100);
        assert_eq!(p.activity["a"], vec![(100, 1)]);
        for i in 0..(MAX_EVENT_NAMES as i64 + 5) {
            p.record(&format!("e{i}"), 50 + i, 1);
        }
        p.prune(100 + 30);
        assert_eq!(p.activity.len(), MAX_EVENT_NAMES);
        assert!(p.activity.contains_key("a"), "tracked at day 100, recent");
        assert!(!p.activity.contains_key("e0"));
    }

    #[test]
    fn parses_one_or_many_and_names_what_is_wrong() {
        let one = serde_json::json!({"$distinct_id": "u1", "$properties": {"plan": "pro"}});
        assert_eq!(parse_profiles(&one).unwrap()[0].distinct_id, "u1");
        let many = serde_json::json!([{"$distinct_id": 7, "$set": {}}, {"$distinct_id": "b"}]);
        let parsed = parse_profiles(&many).unwrap();
        assert_eq!(parsed[0].distinct_id, "7");
        assert_eq!(parsed.len(), 2);
        let bad = serde_json::json!([{"$distinct_id": "a"}, {"$properties": {}}]);
        let e = parse_profiles(&bad).unwrap_err().to_string();
        assert!(e.contains("profile[1].$distinct_id: is required"), "{e}");
        let e = parse_profiles(&serde_json::json!({"$distinct_id": "a", "plan": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile.plan"), "{e}");
        let big = "x".repeat(MAX_PROPERTIES_BYTES);
        let e =
            parse_profiles(&serde_json::json!({"$distinct_id": "a", "$properties": {"b": big}}))
                .unwrap_err()
                .to_string();
        assert!(e.contains("$properties"), "{e}");
    }

    #[test]
    fn tracked_times_are_seconds_or_milliseconds_and_not_future() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let body = serde_json::json!([
            {"event": "login", "properties": {"distinct_id": "u", "time": 1_699_990_000}},
            {"event": "login", "properties": {"distinct_id": "u", "time": 1_699_990_000_000u64}},
            {"event": "login", "properties": {"distinct_id": "u"}},
        ]);
        let t = parse_track(&body, now).unwrap();
        assert_eq!(t[0].time.timestamp(), 1_699_990_000);
        assert_eq!(t[1].time.timestamp(), 1_699_990_000);
        assert_eq!(t[2].time, now);
        let e = parse_track(
            &serde_json::json!({"event": "x", "properties": {"distinct_id": "u", "time": 1_800_000_000}}),
            now,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("event.properties.time: is in the future"), "{e}");
        let e = parse_track(&serde_json::json!({"event": "x"}), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("event.properties"), "{e}");
    }
}
