//! When a campaign runs: `asap` (every tick), `scheduled` (a time of day
//! on some weekdays, every N weeks, in an IANA time zone), `recurring`
//! (daily, weekly, monthly, or every tick, with limits per user). Times
//! are wall-clock times of the zone: 09:00 stays 09:00 across daylight
//! saving; a time the clocks skip runs as late as they skipped, and one
//! they pass twice runs the first time.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Daily,
    Weekly,
    Monthly,
    /// Every tick, as users come to match (within the limits).
    Asap,
}

/// How often one user may be sent by a recurring campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_user: Option<u32>,
    /// Seconds, answered as a duration (`1d`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text"
    )]
    pub min_interval: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    Asap,
    Scheduled {
        #[serde(with = "time_text")]
        at: NaiveTime,
        /// `mon`..`sun`.
        days: Vec<String>,
        every_weeks: u32,
        timezone: String,
        /// The week (Monday-based, in the zone) counted from: the one the
        /// schedule was set in.
        #[serde(default)]
        anchor_week: i64,
    },
    Recurring {
        every: Every,
        #[serde(with = "time_text")]
        at: NaiveTime,
        /// For `weekly`.
        days: Vec<String>,
        /// For `monthly` (past a month's end: its last day).
        day_of_month: u32,
        timezone: String,
        limit: Limit,
    },
}

mod time_text {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        if t.second() == 0 {
            s.serialize_str(&t.format("%H:%M").to_string())
        } else {
            s.serialize_str(&t.format("%H:%M:%S").to_string())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_time(&text).ok_or_else(|| serde::de::Error::custom("not a time of day"))
    }
}

mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(secs) => s.serialize_str(&crate::config::format_duration(
                std::time::Duration::from_secs(*secs),
            )),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            crate::config::parse_duration(&t)
                .map(|d| d.as_secs())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .ok()
}

fn invalid(at: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid_field("invalid_schedule", &format!("schedule.{at}"), message)
}

fn zone(text: &str) -> Option<Tz> {
    text.parse::<Tz>().ok()
}

/// Monday-based weeks since 0001-01-01 (a Monday).
fn week_of(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce() - 1).div_euclid(7)
}

fn day_name(date: NaiveDate) -> &'static str {
    DAYS[date.weekday().num_days_from_monday() as usize]
}

impl Schedule {
    /// Parses a schedule as sent; `now` anchors `every_weeks`.
    pub fn parse(raw: &Value, now: DateTime<Utc>) -> Result<Self, Error> {
        let Value::Object(f) = raw else {
            return Err(Error::invalid(
                "invalid_schedule",
                "schedule: must be an object with a type: asap, scheduled or recurring",
            )
            .with_details(serde_json::json!({ "field": "schedule" })));
        };
        let kind = match f.get("type") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(invalid("type", "is required: asap, scheduled or recurring")),
        };
        let allowed: &[&str] = match kind {
            "asap" => &["type"],
            "scheduled" => &["type", "at", "days", "every_weeks", "timezone"],
            "recurring" => &[
                "type",
                "every",
                "at",
                "days",
                "day_of_month",
                "timezone",
                "limit",
            ],
            other => {
                return Err(invalid(
                    "type",
                    format!("{other:?} is not asap, scheduled or recurring"),
                ));
            }
        };
        if let Some(k) = f.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(invalid(k, format!("is not a field of a {kind} schedule")));
        }
        let timezone = |f: &Map<String, Value>| -> Result<(String, Tz), Error> {
            match f.get("timezone") {
                None | Some(Value::Null) => Ok(("UTC".into(), Tz::UTC)),
                Some(Value::String(s)) => zone(s).map(|z| (s.clone(), z)).ok_or_else(|| {
                    invalid(
                        "timezone",
                        format!("{s:?} is not an IANA time zone (like America/Los_Angeles)"),
                    )
                }),
                Some(_) => Err(invalid("timezone", "must be a string")),
            }
        };
        let at = |f: &Map<String, Value>, default: Option<NaiveTime>| -> Result<NaiveTime, Error> {
            match (f.get("at"), default) {
                (Some(Value::String(s)), _) => parse_time(s)
                    .ok_or_else(|| invalid("at", format!("{s:?} is not a time of day like 09:00"))),
                (None | Some(Value::Null), Some(d)) => Ok(d),
                (None | Some(Value::Null), None) => {
                    Err(invalid("at", "is required: a time of day like 09:00"))
                }
                (Some(_), _) => Err(invalid("at", "must be a time of day like 09:00")),
            }
        };
        let days = |f: &Map<String, Value>, default: &[&str]| -> Result<Vec<String>, Error> {
            let list = match f.get("days") {
                None | Some(Value::Null) => {
                    return Ok(default.iter().map(|d| d.to_string()).collect());
                }
                Some(Value::Array(list)) if !list.is_empty() && list.len() <= 7 => list,
                Some(_) => return Err(invalid("days", "must be a list of 1 to 7 days: mon..sun")),
            };
            let mut out: Vec<String> = Vec::new();
            for d in list {
                let name = d.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
                let short = DAYS
                    .iter()
                    .zip(FULL_DAYS)
                    .find(|(short, full)| **short == name || *full == name)
                    .map(|(short, _)| *short)
                    .ok_or_else(|| invalid("days", format!("{d} is not a day: mon..sun")))?;
                if !out.iter().any(|o| o == short) {
                    out.push(short.to_string());
                }
            }
            Ok(out)
        };
        match kind {
            "asap" => Ok(Schedule::Asap),
            "scheduled" => {
                let (timezone, tz) = timezone(f)?;
                let every_weeks = match f.get("every_weeks") {
                    None | Some(Value::Null) => 1,
                    Some(v) => v.as_u64().filter(|n| (1..=52).contains(n)).ok_or_else(|| {
                        invalid("every_weeks", "must be a whole number from 1 to 52")
                    })? as u32,
                };
                Ok(Schedule::Scheduled {
                    at: at(f, None)?,
                    days: days(f, &DAYS)?,
                    every_weeks,
                    anchor_week: week_of(now.with_timezone(&tz).date_naive()),
                    timezone,
                })
            }
            _ => {
                let every = match f.get("every").and_then(Value::as_str) {
                    Some("daily") => Every::Daily,
                    Some("weekly") => Every::Weekly,
                    Some("monthly") => Every::Monthly,
                    Some("asap") => Every::Asap,
                    _ => {
                        return Err(invalid(
                            "every",
                            "is required: daily, weekly, monthly or asap",
                        ));
                    }
                };
                let (timezone, _) = timezone(f)?;
                let day_of_month = match f.get("day_of_month") {
                    None | Some(Value::Null) => 1,
                    Some(v) => v
                        .as_u64()
                        .filter(|n| (1..=31).contains(n))
                        .ok_or_else(|| invalid("day_of_month", "must be from 1 to 31"))?
                        as u32,
                };
                let limit = match f.get("limit") {
                    None | Some(Value::Null) => Limit::default(),
                    Some(Value::Object(l)) => {
                        if let Some(k) = l
                            .keys()
                            .find(|k| *k != "max_per_user" && *k != "min_interval")
                        {
                            return Err(invalid(
                                &format!("limit.{k}"),
                                "is not a limit: max_per_user, min_interval",
                            ));
                        }
                        let max_per_user = match l.get("max_per_user") {
                            None | Some(Value::Null) => None,
                            Some(v) => Some(
                                v.as_u64()
                                    .filter(|n| (1..=1_000_000).contains(n))
                                    .ok_or_else(|| {
                                        invalid(
                                            "limit.max_per_user",
                                            "must be a whole number from 1",
                                        )
                                    })? as u32,
                            ),
                        };
                        let min_interval = match l.get("min_interval") {
                            None | Some(Value::Null) => None,
                            Some(Value::String(s)) => Some(
                                crate::config::parse_duration(s)
                                    .map_err(|e| invalid("limit.min_interval", e))?
                                    .as_secs(),
                            ),
                            Some(_) => {
                                return Err(invalid(
                                    "limit.min_interval",
                                    "must be a duration like 1d or 12h",
                                ));
                            }
                        };
                        Limit {
                            max_per_user,
                            min_interval,
                        }
                    }
                    Some(_) => return Err(invalid("limit", "must be an object")),
                };
                if every == Every::Asap && limit.min_interval.is_none_or(|s| s == 0) {
                    return Err(invalid(
                        "limit.min_interval",
                        "is required for every: asap (how long before a user who still matches is sent again)",
                    ));
                }
                Ok(Schedule::Recurring {
                    every,
                    at: at(f, Some(NaiveTime::MIN))?,
                    days: days(f, &["mon"])?,
                    day_of_month,
                    timezone,
                    limit,
                })
            }
        }
    }

    /// Whether it runs at every tick.
    pub fn continuous(&self) -> bool {
        matches!(
            self,
            Schedule::Asap
                | Schedule::Recurring {
                    every: Every::Asap,
                    ..
                }
        )
    }

    /// Whether a user is sent at most once, ever (for these criteria).
    pub fn once_per_user(&self) -> bool {
        !matches!(self, Schedule::Recurring { .. })
    }

    pub fn limit(&self) -> Limit {
        match self {
            Schedule::Recurring { limit, .. } => *limit,
            _ => Limit::default(),
        }
    }

    /// The first run strictly after `after`: at once for a continuous
    /// schedule.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Asap
            | Schedule::Recurring {
                every: Every::Asap, ..
            } => Some(after + Duration::seconds(1)),
            Schedule::Scheduled {
                at,
                days,
                every_weeks,
                timezone,
                anchor_week,
            } => {
                let tz = zone(timezone)?;
                let weeks = i64::from(*every_weeks);
                next_at(tz, *at, after, 7 * weeks + 7, |date| {
                    days.iter().any(|d| d == day_name(date))
                        && (week_of(date) - anchor_week).rem_euclid(weeks) == 0
                })
            }
            Schedule::Recurring {
                every,
                at,
                days,
                day_of_month,
                timezone,
                ..
            } => {
                let tz = zone(timezone)?;
                match every {
                    Every::Daily => next_at(tz, *at, after, 2, |_| true),
                    Every::Weekly => next_at(tz, *at, after, 8, |date| {
                        days.iter().any(|d| d == day_name(date))
                    }),
                    Every::Monthly => next_at(tz, *at, after, 63, |date| {
                        date.day() == (*day_of_month).min(last_day(date))
                    }),
                    Every::Asap => unreachable!("continuous"),
                }
            }
        }
    }
}

fn last_day(date: NaiveDate) -> u32 {
    let (y, m) = (date.year(), date.month());
    let first_next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    first_next
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// The first instant after `after` that is `at` on a day `day_ok` takes,
/// looking `horizon` days ahead.
fn next_at(
    tz: Tz,
    at: NaiveTime,
    after: DateTime<Utc>,
    horizon: i64,
    day_ok: impl Fn(NaiveDate) -> bool,
) -> Option<DateTime<Utc>> {
    let start = after.with_timezone(&tz).date_naive();
    (0..=horizon)
        .filter_map(|d| start.checked_add_signed(Duration::days(d)))
        .filter(|date| day_ok(*date))
        .map(|date| instant(tz, date.and_time(at)))
        .find(|t| *t > after)
}

/// The instant a wall-clock time of the zone names: the first of two when
/// the clocks pass it twice; when they skip it, as long after the skip as
/// it was after the skip's start (02:30 on a night that jumps from 02:00
/// to 03:00 is 03:30).
fn instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    let before = tz
        .from_local_datetime(&(local - Duration::hours(6)))
        .earliest()
        .map(|t| chrono::Offset::fix(t.offset()).local_minus_utc())
        .unwrap_or(0);
    Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(before))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn parse(v: Value, now: &str) -> Schedule {
        Schedule::parse(&v, utc(now)).unwrap()
    }

    #[test]
    fn weekly_at_nine_in_los_angeles_across_daylight_saving() {
        // 2026-03-08: clocks in Los Angeles go from 02:00 PST to 03:00 PDT.
        let s = parse(
            json!({"type": "scheduled", "at": "09:00", "days": ["wed"], "timezone": "America/Los_Angeles"}),
            "2026-03-01T00:00:00Z",
        );
        // Wednesday 2026-03-04 09:00 PST is 17:00 UTC.
        let first = s.next_after(utc("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-03-04T17:00:00Z"));
        // A week later it is daylight time: 09:00 PDT is 16:00 UTC.
        let second = s.next_after(first).unwrap();
        assert_eq!(second, utc("2026-03-11T16:00:00Z"));
        // Just before the time, the same day; just after, next week.
        assert_eq!(s.next_after(utc("2026-03-11T15:59:59Z")).unwrap(), second);
        assert_eq!(s.next_after(second).unwrap(), utc("2026-03-18T16:00:00Z"));
    }

    #[test]
    fn every_other_week_counts_from_the_week_it_was_set() {
        // Set on Thursday 2026-01-08 (its week starts Monday 01-05).
        let s = parse(
            json!({"type": "scheduled", "at": "10:30", "days": ["mon", "fri"], "every_weeks": 2}),
            "2026-01-08T12:00:00Z",
        );
        let mut t = utc("2026-01-08T12:00:00Z");
        let mut seen = Vec::new();
        for _ in 0..4 {
            t = s.next_after(t).unwrap();
            seen.push(t);
        }
        assert_eq!(
            seen,
            vec![
                utc("2026-01-09T10:30:00Z"),
                utc("2026-01-19T10:30:00Z"),
                utc("2026-01-23T10:30:00Z"),
                utc("2026-02-02T10:30:00Z"),
            ]
        );
    }

    #[test]
    fn a_skipped_time_runs_late_and_a_doubled_one_runs_once() {
        let s = parse(
            json!({"type": "recurring", "every": "daily", "at": "02:30", "timezone": "America/New_York"}),
            "2026-03-01T00:00:00Z",
        );
        // 2026-03-08 02:30 does not exist in New York: 03:30 EDT = 07:30 UTC.
        assert_eq!(
            s.next_after(utc("2026-03-08T05:00:00Z")).unwrap(),
            utc("2026-03-08T07:30:00Z")
        );
        let s = parse(
            json!({"type": "recurring", "every": "daily", "at": "01:30", "timezone": "America/New_York"}),
            "2026-10-01T00:00:00Z",
        );
        // 2026-11-01 01:30 happens twice; the first is 05:30 UTC (EDT).
        let first = s.next_after(utc("2026-11-01T04:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        assert_eq!(s.next_after(first).unwrap(), utc("2026-11-02T06:30:00Z"));
    }

    #[test]
    fn monthly_on_the_31st_runs_on_short_months_last_day() {
        let s = parse(
            json!({"type": "recurring", "every": "monthly", "day_of_month": 31, "at": "08:00"}),
            "2026-01-01T00:00:00Z",
        );
        let t = s.next_after(utc("2026-02-01T00:00:00Z")).unwrap();
        assert_eq!(t, utc("2026-02-28T08:00:00Z"));
        assert_eq!(s.next_after(t).unwrap(), utc("2026-03-31T08:00:00Z"));
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let now = utc("2026-01-01T00:00:00Z");
        for (raw, field) in [
            (json!({"type": "weekly"}), "schedule.type"),
            (json!({"type": "scheduled"}), "schedule.at"),
            (json!({"type": "scheduled", "at": "25:00"}), "schedule.at"),
            (
                json!({"type": "scheduled", "at": "09:00", "days": ["funday"]}),
                "schedule.days",
            ),
            (
                json!({"type": "scheduled", "at": "09:00", "timezone": "Mars/Base"}),
                "schedule.timezone",
            ),
            (
                json!({"type": "scheduled", "at": "09:00", "every_weeks": 0}),
                "schedule.every_weeks",
            ),
            (
                json!({"type": "scheduled", "at": "09:00", "every": "daily"}),
                "schedule.every",
            ),
            (
                json!({"type": "recurring", "every": "hourly"}),
                "schedule.every",
            ),
            (
                json!({"type": "recurring", "every": "asap"}),
                "schedule.limit.min_interval",
            ),
            (
                json!({"type": "recurring", "every": "daily", "limit": {"max_per_user": 0}}),
                "schedule.limit.max_per_user",
            ),
            (
                json!({"type": "recurring", "every": "daily", "limit": {"min_interval": "soon"}}),
                "schedule.limit.min_interval",
            ),
        ] {
            let e = Schedule::parse(&raw, now).unwrap_err().to_string();
            assert!(e.starts_with(field), "{raw}: {e}");
        }
        let s = Schedule::parse(
            &json!({"type": "scheduled", "at": "9:05", "days": ["Wednesday", "WED"]}),
            now,
        )
        .unwrap();
        let Schedule::Scheduled { days, .. } = &s else {
            panic!()
        };
        assert_eq!(days, &["wed"]);
        // What is answered reads back as the same schedule.
        let again: Schedule = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
}
