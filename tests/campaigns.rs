//! Webhook campaigns end to end: the real `hookline` binary, profiles and
//! events sent over HTTP, matched users received by a local receiver as
//! Mixpanel's form-encoded batches of 50.

mod support;

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::Admin;
use support::receiver::{Received, Receiver, Reply};

/// A server allowed to call loopback (the receiver), ticking every second.
fn start() -> Admin {
    Admin::start_with(&[
        ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "1"),
        ("HOOKLINE_SCHEDULER_TICK", "1s"),
    ])
}

/// Profiles `prefix0..prefixN` with these properties.
async fn profiles(admin: &Admin, prefix: &str, n: usize, properties: Value) {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"$distinct_id": format!("{prefix}{i}"), "$properties": properties}))
        .collect();
    for chunk in list.chunks(1000) {
        let (status, body) = admin.post("/v1/profiles", json!(chunk)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["updated"], chunk.len());
    }
}

/// A campaign that runs only when asked (inactive, on a weekly schedule).
async fn manual(admin: &Admin, url: &str, criteria: &str) -> String {
    admin
        .create(
            "/v1/campaigns",
            json!({"name": "test", "url": url, "where": criteria, "active": false,
                   "schedule": {"type": "scheduled", "at": "03:00", "days": ["sun"]}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn campaign(admin: &Admin, url: &str, criteria: &str, schedule: Value) -> String {
    admin
        .create(
            "/v1/campaigns",
            json!({"name": "test", "url": url, "where": criteria, "schedule": schedule}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The users a post carried, checking it is Mixpanel's form.
fn users(r: &Received) -> Vec<(String, Value)> {
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded"),
        "a form post"
    );
    let form = r.form();
    assert_eq!(form.len(), 1, "one parameter, users: {form:?}");
    let list: Vec<Value> = serde_json::from_str(&form["users"]).unwrap();
    assert!(list.len() <= 50, "at most 50 a post");
    list.into_iter()
        .map(|u| {
            (
                u["$distinct_id"].as_str().unwrap().to_string(),
                u["$properties"].clone(),
            )
        })
        .collect()
}

async fn run(admin: &Admin, id: &str) -> String {
    let (status, body) = admin
        .post(&format!("/v1/campaigns/{id}/run"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// The run once it is done (30 s at most).
async fn finished(admin: &Admin, campaign: &str, run: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = admin.get(&format!("/v1/campaigns/{campaign}/runs")).await;
        let found = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == run)
            .cloned();
        if let Some(r) = &found
            && r["status"] == "done"
        {
            return r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {run} never finished: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_hundred_and_twenty_users_arrive_as_50_50_and_20() {
    let admin = start();
    let receiver = Receiver::start().await;
    profiles(
        &admin,
        "in",
        120,
        json!({"plan": "pro", "$city": "Los Angeles"}),
    )
    .await;
    profiles(&admin, "out", 30, json!({"plan": "free"})).await;
    let id = manual(&admin, &receiver.url("/mp"), "user.plan == 'pro'").await;
    let r = run(&admin, &id).await;
    let done = finished(&admin, &id, &r).await;
    assert_eq!(done["matched"], 120, "{done}");
    assert_eq!(done["sent"], 120, "{done}");
    assert_eq!(done["pending"], 0, "{done}");
    let posts = receiver.received_at("/mp");
    let mut sizes: Vec<usize> = posts.iter().map(|p| users(p).len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![20, 50, 50]);
    let all: Vec<(String, Value)> = posts.iter().flat_map(users).collect();
    let ids: HashSet<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 120);
    assert!(ids.iter().all(|id| id.starts_with("in")));
    assert_eq!(all[0].1, json!({"plan": "pro", "$city": "Los Angeles"}));
    // A scheduled campaign sends a user once: a second run sends no one.
    let again = run(&admin, &id).await;
    let done = finished(&admin, &id, &again).await;
    assert_eq!(
        (done["matched"].as_u64(), done["sent"].as_u64()),
        (Some(120), Some(0))
    );
    assert_eq!(done["skipped"], 120);
    assert_eq!(receiver.received_at("/mp").len(), 3);
}

#[tokio::test]
async fn a_batch_answered_500_is_sent_at_the_next_run_and_no_one_twice() {
    let admin = start();
    let receiver = Receiver::start().await;
    profiles(&admin, "u", 120, json!({"plan": "pro"})).await;
    let id = manual(&admin, &receiver.url("/mp"), "true").await;
    receiver.plan("/mp", [Reply::Status(500)]);
    let first = run(&admin, &id).await;
    let done = finished(&admin, &id, &first).await;
    let posts = receiver.received_at("/mp");
    assert_eq!(posts.len(), 3);
    let failed = users(&posts[0]);
    assert_eq!(done["failed"].as_u64(), Some(failed.len() as u64), "{done}");
    assert_eq!(
        done["sent"].as_u64(),
        Some(120 - failed.len() as u64),
        "{done}"
    );
    let second = run(&admin, &id).await;
    let done = finished(&admin, &id, &second).await;
    assert_eq!(done["sent"].as_u64(), Some(failed.len() as u64), "{done}");
    let posts = receiver.received_at("/mp");
    let resent: HashSet<String> = posts[3..].iter().flat_map(users).map(|u| u.0).collect();
    let expected: HashSet<String> = failed.iter().map(|u| u.0.clone()).collect();
    assert_eq!(resent, expected, "only the failed batch's users again");
    // Across every post answered 200, each user exactly once.
    let mut times: HashMap<String, usize> = HashMap::new();
    for p in &posts[1..] {
        for (u, _) in users(p) {
            *times.entry(u).or_default() += 1;
        }
    }
    assert_eq!(times.len(), 120);
    assert!(times.values().all(|n| *n == 1), "{times:?}");
    let third = run(&admin, &id).await;
    finished(&admin, &id, &third).await;
    assert_eq!(receiver.received_at("/mp").len(), posts.len());
    // Every post is in the attempt log.
    let (_, log) = admin.get(&format!("/v1/campaigns/{id}/attempts")).await;
    let statuses: Vec<u64> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["response_status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 1);
    assert_eq!(statuses.len(), posts.len());
}

#[tokio::test]
async fn a_weekly_campaign_fires_on_its_weekday_and_time_in_its_zone() {
    use chrono::{Datelike, Duration as Days, Timelike};
    let admin = start();
    let receiver = Receiver::start().await;
    profiles(&admin, "u", 3, json!({"plan": "pro"})).await;
    let zone: chrono_tz::Tz = "America/Los_Angeles".parse().unwrap();
    // Four seconds from now, on the wall clock of Los Angeles.
    let at = (chrono::Utc::now() + Days::seconds(4)).with_timezone(&zone);
    let at = at.with_nanosecond(0).unwrap();
    let day = |d: chrono::Weekday| d.to_string().to_lowercase();
    let time = at.format("%H:%M:%S").to_string();
    let today = campaign(
        &admin,
        &receiver.url("/today"),
        "true",
        json!({"type": "scheduled", "at": time, "days": [day(at.weekday())], "timezone": "America/Los_Angeles"}),
    )
    .await;
    let tomorrow = campaign(
        &admin,
        &receiver.url("/tomorrow"),
        "true",
        json!({"type": "scheduled", "at": time, "days": [day(at.weekday().succ())], "timezone": "America/Los_Angeles"}),
    )
    .await;
    let (_, c) = admin.get(&format!("/v1/campaigns/{today}")).await;
    let next: chrono::DateTime<chrono::Utc> = c["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, at.with_timezone(&chrono::Utc), "{c}");
    let (_, c) = admin.get(&format!("/v1/campaigns/{tomorrow}")).await;
    let other: chrono::DateTime<chrono::Utc> = c["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(other, next + Days::days(1), "{c}");
    let posts = receiver
        .wait_for("/today", 1, Duration::from_secs(20))
        .await;
    assert!(chrono::Utc::now() >= next, "not before its time");
    assert_eq!(users(&posts[0]).len(), 3);
    // Next week, same wall-clock time.
    let (_, c) = admin.get(&format!("/v1/campaigns/{today}")).await;
    let after: chrono::DateTime<chrono::Utc> = c["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        after.with_timezone(&zone).format("%a %H:%M:%S").to_string(),
        at.format("%a %H:%M:%S").to_string()
    );
    assert!(after - next >= Days::days(6) && after - next <= Days::days(8));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received_at("/tomorrow").is_empty());
    assert_eq!(receiver.received_at("/today").len(), 1);
}

#[tokio::test]
async fn asap_picks_up_a_user_who_starts_matching_later() {
    let admin = start();
    let receiver = Receiver::start().await;
    profiles(&admin, "early", 1, json!({"plan": "pro"})).await;
    profiles(&admin, "late", 1, json!({"plan": "free"})).await;
    campaign(
        &admin,
        &receiver.url("/asap"),
        "user.plan == 'pro' && did('login', 7)",
        json!({"type": "asap"}),
    )
    .await;
    let (status, body) = admin
        .post(
            "/v1/track",
            json!([
                {"event": "login", "properties": {"distinct_id": "early0"}},
                {"event": "login", "properties": {"distinct_id": "late0"}},
            ]),
        )
        .await;
    assert_eq!(
        (status, body["recorded"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let posts = receiver.wait_for("/asap", 1, Duration::from_secs(20)).await;
    assert_eq!(users(&posts[0])[0].0, "early0");
    // The late user starts matching: sent at a later tick, and only them.
    profiles(&admin, "late", 1, json!({"plan": "pro"})).await;
    let posts = receiver.wait_for("/asap", 2, Duration::from_secs(20)).await;
    assert_eq!(
        users(&posts[1])
            .iter()
            .map(|u| u.0.as_str())
            .collect::<Vec<_>>(),
        ["late0"]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received_at("/asap").len(), 2, "nobody twice");
}

#[tokio::test]
async fn recurring_limits_hold() {
    let admin = start();
    let receiver = Receiver::start().await;
    profiles(&admin, "u", 2, json!({"plan": "pro"})).await;
    // Daily, at most twice a user: three runs send each user twice.
    let daily = admin
        .create(
            "/v1/campaigns",
            json!({"name": "daily", "url": receiver.url("/daily"), "active": false,
                   "schedule": {"type": "recurring", "every": "daily", "at": "03:00", "limit": {"max_per_user": 2}}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        let r = run(&admin, &daily).await;
        finished(&admin, &daily, &r).await;
    }
    let sent: Vec<String> = receiver
        .received_at("/daily")
        .iter()
        .flat_map(users)
        .map(|u| u.0)
        .collect();
    assert_eq!(sent.len(), 4, "{sent:?}");
    // As criteria are met, at most once an hour: once over many ticks.
    campaign(
        &admin,
        &receiver.url("/often"),
        "true",
        json!({"type": "recurring", "every": "asap", "limit": {"min_interval": "1h"}}),
    )
    .await;
    receiver
        .wait_for("/often", 1, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let often: Vec<String> = receiver
        .received_at("/often")
        .iter()
        .flat_map(users)
        .map(|u| u.0)
        .collect();
    assert_eq!(often.len(), 2, "each user once: {often:?}");
}

#[tokio::test]
async fn a_test_send_posts_five_marked_and_marks_nobody() {
    let admin = start();
    let receiver = Receiver::start().await;
    profiles(&admin, "u", 12, json!({"plan": "pro"})).await;
    let id = manual(&admin, &receiver.url("/t"), "true").await;
    let (status, body) = admin
        .post(&format!("/v1/campaigns/{id}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"], 5);
    assert_eq!(body["attempt"]["response_status"], 200);
    let posts = receiver.received_at("/t");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("x-hookline-test"), Some("true"));
    assert_eq!(users(&posts[0]).len(), 5);
    let r = run(&admin, &id).await;
    let done = finished(&admin, &id, &r).await;
    assert_eq!(done["sent"], 12, "the test marked nobody: {done}");
    assert!(
        receiver.received_at("/t")[1..]
            .iter()
            .all(|p| p.header("x-hookline-test").is_none())
    );
}

#[tokio::test]
async fn bad_campaigns_profiles_and_events_are_refused_by_name() {
    let admin = start();
    let url = "http://127.0.0.1:9/x";
    for (body, code, words) in [
        (
            json!({"name": "x", "url": url, "where": "user.plan ==", "schedule": {"type": "asap"}}),
            "invalid_where",
            "column 13",
        ),
        (
            json!({"name": "x", "url": url, "where": "customer.plan == 'a'", "schedule": {"type": "asap"}}),
            "invalid_where",
            "unknown name customer",
        ),
        (
            json!({"name": "x", "url": url, "schedule": {"type": "weekly"}}),
            "invalid_schedule",
            "schedule.type",
        ),
        (
            json!({"name": "x", "url": url, "schedule": {"type": "scheduled", "at": "9am"}}),
            "invalid_schedule",
            "schedule.at",
        ),
        (
            json!({"name": "x", "url": url, "schedule": {"type": "scheduled", "at": "09:00", "timezone": "PST8"}}),
            "invalid_schedule",
            "schedule.timezone",
        ),
        (
            json!({"name": "x", "url": "ftp://x", "schedule": {"type": "asap"}}),
            "invalid_campaign",
            "url",
        ),
        (
            json!({"url": url, "schedule": {"type": "asap"}}),
            "invalid_campaign",
            "name",
        ),
        (
            json!({"name": "x", "url": url, "schedule": {"type": "asap"}, "color": 1}),
            "invalid_campaign",
            "color",
        ),
    ] {
        let (status, got) = admin.post("/v1/campaigns", body.clone()).await;
        assert_eq!(status, 422, "{body}: {got}");
        assert_eq!(got["error"]["code"], code, "{body}: {got}");
        let message = got["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}: {message}");
    }
    let (status, got) = admin
        .post("/v1/profiles", json!([{"$properties": {}}]))
        .await;
    assert_eq!(
        (status, got["error"]["code"].as_str()),
        (422, Some("invalid_profile")),
        "{got}"
    );
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"$distinct_id": i})).collect();
    let (status, got) = admin.post("/v1/profiles", json!(too_many)).await;
    assert_eq!(status, 422, "{got}");
    let (status, got) = admin
        .post("/v1/track", json!({"event": "x", "properties": {}}))
        .await;
    assert_eq!(status, 422, "{got}");
    assert!(
        got["error"]["message"]
            .as_str()
            .unwrap()
            .contains("distinct_id"),
        "{got}"
    );
    let (status, _) = admin
        .get("/v1/campaigns/cmp_01jf6z0c1qz8m3v2w4x5y6z7a8")
        .await;
    assert_eq!(status, 404);
    let (status, _) = admin.get("/v1/profiles/nobody").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tracked_event_sent_again_with_its_insert_id_counts_once() {
    let admin = start();
    profiles(&admin, "u", 1, json!({"plan": "pro"})).await;
    let events = json!([
        {"event": "login", "properties": {"distinct_id": "u0", "$insert_id": "a1"}},
        {"event": "login", "properties": {"distinct_id": "u0", "$insert_id": "a1"}},
        {"event": "login", "properties": {"distinct_id": "u0", "$insert_id": "a2"}},
        {"event": "login", "properties": {"distinct_id": "u0"}},
        {"event": "login", "properties": {"distinct_id": "u0", "time": 1_000_000_000}},
    ]);
    let (status, first) = admin.post("/v1/track", events.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first, json!({"recorded": 3, "ignored": 1, "duplicates": 0}));
    // The call retried: only the event without an $insert_id counts again.
    let (_, again) = admin.post("/v1/track", events).await;
    assert_eq!(again, json!({"recorded": 1, "ignored": 1, "duplicates": 2}));
    let (status, profile) = admin.get("/v1/profiles/u0").await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["events"], json!({"login": 4}));
    assert_eq!(profile["$properties"], json!({"plan": "pro"}));
    let (status, got) = admin
        .post(
            "/v1/track",
            json!({"event": "x", "properties": {"distinct_id": "u0", "$insert_id": 5}}),
        )
        .await;
    assert_eq!(status, 422, "{got}");
    assert!(
        got["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$insert_id")
    );
}
