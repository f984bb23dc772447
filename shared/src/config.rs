//! Settings users give through flags and environment (CONTRACT.md, "Running it").

use std::time::Duration;

/// Parses `500ms`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a whole number and a unit, e.g. 500ms, 5s, 5m, 2h, 1d"))?;
    let secs = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("invalid duration {text:?}: too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => Err(format!(
            "invalid duration {text:?}: the unit must be one of ms, s, m, h, d"
        )),
    }
}

/// Writes a duration the way `parse_duration` reads it, in the largest exact unit.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms > 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The longest step of a retry schedule (a longer wait would be a dead
/// letter in all but name; and every later time must stay computable).
pub const MAX_RETRY_STEP: Duration = Duration::from_secs(30 * 86_400);

/// A comma list of durations of at most 30 days each, e.g.
/// `0s,5s,5m,30m,2h,5h,10h,10h`.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let steps = text
        .split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if steps.is_empty() {
        return Err("the retry schedule needs at least one duration".into());
    }
    if let Some(long) = steps.iter().find(|d| **d > MAX_RETRY_STEP) {
        return Err(format!(
            "each step of the retry schedule is at most 30d; {} is longer",
            format_duration(*long)
        ));
    }
    Ok(steps)
}

/// The longest a delivery may wait on its endpoint.
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(50);

pub const DEFAULT_RETRY_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

#[derive(Debug, Clone)]
pub struct Settings {
    /// Outbound calls may reach private and loopback addresses.
    pub allow_private_targets: bool,
    pub retry_schedule: Vec<Duration>,
    pub scheduler_tick: Duration,
    pub webhook_limit: u32,
    /// Defaults of every account's limits (`None`: no limit); an account's
    /// own, set by the operator, take their place.
    pub trigger_limit: Option<u64>,
    pub inbound_per_second: Option<u64>,
    pub inbound_per_month: Option<u64>,
    pub pushover_url: String,
    pub twilio_url: String,
    /// The base of URLs shown to users (trigger URLs), when the Host header
    /// is not it (behind a proxy or a custom domain).
    pub public_url: Option<String>,
    /// How long a request may take, reading its body included.
    pub request_timeout: Duration,
    /// How long a trigger's request log keeps a request, from its receipt.
    pub request_log_retention: Duration,
    /// One machine: time to send a request's headers.
    pub header_timeout: Duration,
    /// One machine: connections open at once (`None`: from the open-files limit).
    pub max_connections: Option<usize>,
    /// The longest an outbound call may take, connect to last byte.
    pub delivery_timeout: Duration,
    /// A webhook whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// How long a webhook's attempt log keeps an attempt.
    pub attempt_retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_schedule: parse_schedule(DEFAULT_RETRY_SCHEDULE)
                .expect("default schedule parses"),
            scheduler_tick: Duration::from_secs(60),
            webhook_limit: 100,
            trigger_limit: None,
            inbound_per_second: None,
            inbound_per_month: None,
            pushover_url: "https://api.pushover.net".into(),
            twilio_url: "https://api.twilio.com".into(),
            public_url: None,
            request_timeout: Duration::from_secs(30),
            request_log_retention: Duration::from_secs(30 * 24 * 3600),
            header_timeout: Duration::from_secs(10),
            max_connections: None,
            delivery_timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(5 * 86_400),
            attempt_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// A limit: a whole number, or `none` (or nothing) for no limit.
pub fn parse_limit(value: &str) -> Result<Option<u64>, String> {
    let v = value.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| format!("{v:?} is not a whole number or none"))
}

fn flag(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl Settings {
    /// The wait before a delivery's first attempt: the retry schedule's
    /// first step (`0s` by default), within the queue's longest delay.
    pub fn first_delay(&self) -> Duration {
        self.retry_schedule
            .first()
            .copied()
            .unwrap_or_default()
            .min(crate::ports::queue::MAX_DELAY)
    }

    /// Reads the `HOOKLINE_*` variables; a malformed one is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = Settings::default();
        if let Some(v) = get("HOOKLINE_ALLOW_PRIVATE_TARGETS") {
            s.allow_private_targets = flag(&v);
        }
        if let Some(v) = get("HOOKLINE_RETRY_SCHEDULE") {
            s.retry_schedule =
                parse_schedule(&v).map_err(|e| format!("HOOKLINE_RETRY_SCHEDULE: {e}"))?;
        }
        if let Some(v) = get("HOOKLINE_SCHEDULER_TICK") {
            s.scheduler_tick =
                parse_duration(&v).map_err(|e| format!("HOOKLINE_SCHEDULER_TICK: {e}"))?;
            if s.scheduler_tick.is_zero() {
                return Err("HOOKLINE_SCHEDULER_TICK: must be longer than 0s".into());
            }
        }
        if let Some(v) = get("HOOKLINE_WEBHOOK_LIMIT") {
            s.webhook_limit = v
                .trim()
                .parse()
                .map_err(|_| format!("HOOKLINE_WEBHOOK_LIMIT: {v:?} is not a whole number"))?;
        }
        for (name, into) in [
            ("HOOKLINE_TRIGGER_LIMIT", &mut s.trigger_limit),
            ("HOOKLINE_INBOUND_PER_SECOND", &mut s.inbound_per_second),
            ("HOOKLINE_INBOUND_PER_MONTH", &mut s.inbound_per_month),
        ] {
            if let Some(v) = get(name) {
                *into = parse_limit(&v).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        if let Some(v) = get("HOOKLINE_PUSHOVER_URL") {
            s.pushover_url = v;
        }
        if let Some(v) = get("HOOKLINE_TWILIO_URL") {
            s.twilio_url = v;
        }
        if let Some(v) = get("HOOKLINE_REQUEST_TIMEOUT") {
            s.request_timeout =
                parse_duration(&v).map_err(|e| format!("HOOKLINE_REQUEST_TIMEOUT: {e}"))?;
            if s.request_timeout.is_zero() {
                return Err("HOOKLINE_REQUEST_TIMEOUT: must be longer than 0s".into());
            }
        }
        if let Some(v) = get("HOOKLINE_REQUEST_LOG_RETENTION") {
            s.request_log_retention =
                parse_duration(&v).map_err(|e| format!("HOOKLINE_REQUEST_LOG_RETENTION: {e}"))?;
            if s.request_log_retention.is_zero() {
                return Err("HOOKLINE_REQUEST_LOG_RETENTION: must be longer than 0s".into());
            }
        }
        if let Some(v) = get("HOOKLINE_HEADER_TIMEOUT") {
            s.header_timeout =
                parse_duration(&v).map_err(|e| format!("HOOKLINE_HEADER_TIMEOUT: {e}"))?;
            if s.header_timeout.is_zero() {
                return Err("HOOKLINE_HEADER_TIMEOUT: must be longer than 0s".into());
            }
        }
        if let Some(v) = get("HOOKLINE_DELIVERY_TIMEOUT") {
            s.delivery_timeout =
                parse_duration(&v).map_err(|e| format!("HOOKLINE_DELIVERY_TIMEOUT: {e}"))?;
            // Below the time a worker holds a message (60 s), so that no
            // attempt outlives its message's visibility.
            if s.delivery_timeout.is_zero() || s.delivery_timeout > MAX_DELIVERY_TIMEOUT {
                return Err(format!(
                    "HOOKLINE_DELIVERY_TIMEOUT: from 1ms to {}",
                    format_duration(MAX_DELIVERY_TIMEOUT)
                ));
            }
        }
        for (name, into) in [
            ("HOOKLINE_DISABLE_AFTER", &mut s.disable_after),
            ("HOOKLINE_ATTEMPT_RETENTION", &mut s.attempt_retention),
        ] {
            if let Some(v) = get(name) {
                *into = parse_duration(&v).map_err(|e| format!("{name}: {e}"))?;
                if into.is_zero() {
                    return Err(format!("{name}: must be longer than 0s"));
                }
            }
        }
        if let Some(v) = get("HOOKLINE_MAX_CONNECTIONS") {
            let n = v.trim().parse().ok().filter(|n: &usize| *n > 0);
            s.max_connections = Some(n.ok_or_else(|| {
                format!("HOOKLINE_MAX_CONNECTIONS: {v:?} is not a number of connections, 1 or more")
            })?);
        }
        if let Some(v) = get("HOOKLINE_PUBLIC_URL").filter(|v| !v.trim().is_empty()) {
            let url = url::Url::parse(v.trim()).map_err(|e| format!("HOOKLINE_PUBLIC_URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err("HOOKLINE_PUBLIC_URL: must be an http or https URL".into());
            }
            s.public_url = Some(v.trim().trim_end_matches('/').to_string());
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "5", "s", "5x", "-5s", "1.5s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        for d in ["0ms", "500ms", "5s", "5m", "2h", "1d", "90s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn schedule_and_env() {
        assert_eq!(parse_schedule(DEFAULT_RETRY_SCHEDULE).unwrap().len(), 8);
        assert!(parse_schedule("5s,,5m").is_err());
        let s = Settings::from_lookup(|k| match k {
            "HOOKLINE_RETRY_SCHEDULE" => Some("1s,2s".into()),
            "HOOKLINE_ALLOW_PRIVATE_TARGETS" => Some("1".into()),
            "HOOKLINE_WEBHOOK_LIMIT" => Some("7".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            s.retry_schedule,
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert!(s.allow_private_targets);
        assert_eq!(s.webhook_limit, 7);
        let err =
            Settings::from_lookup(|k| (k == "HOOKLINE_SCHEDULER_TICK").then(|| "soon".into()))
                .unwrap_err();
        assert!(err.starts_with("HOOKLINE_SCHEDULER_TICK"), "{err}");
    }
}
