//! Profiles matched per second on one core, in memory, for a realistic
//! `where` (Mixpanel's win-back: last seen over three weeks ago, on a paid
//! plan, no login in the last 14 days), next to a baseline in the same
//! run: hand-written Rust that reads the same properties and counts (the
//! floor any evaluator pays). Then the same profiles read from the
//! embedded store, segment by segment, 500 a page, as a run reads them.
//! Run: `cargo bench -p hookline --bench audience`.

use chrono::{DateTime, Duration as Days, NaiveDateTime, Utc};
use hookline::campaigns::Audience;
use hookline::profiles::{Profile, day_of};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

const WHERE: &str =
    "user.plan != 'free' && time(user['Last Seen']) < now - duration('504h') && !did('login', 14)";
const PROFILES: usize = 100_000;

fn native(p: &Profile, now: DateTime<Utc>, today: i64) -> bool {
    let props = p.properties.as_ref().unwrap();
    let paid = props.get("plan").and_then(|v| v.as_str()) != Some("free");
    let seen = props
        .get("Last Seen")
        .and_then(|v| v.as_str())
        .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| t.and_utc());
    paid && seen.is_some_and(|t| t < now - Days::hours(504)) && p.count("login", 14, today) == 0
}

fn main() {
    let now: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
    let today = day_of(now);
    let mut profiles: Vec<Profile> = (0..PROFILES)
        .map(|i| {
            let seen = now - Days::hours((i % 1000) as i64);
            let mut p = Profile {
                distinct_id: format!("user{i}"),
                properties: json!({
                    "plan": if i % 3 == 0 { "free" } else { "pro" },
                    "Last Seen": seen.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "$city": "Los Angeles", "$email": format!("user{i}@example.com"),
                    "Referring Domain": "", "seats": i % 50,
                })
                .as_object()
                .cloned(),
                ..Profile::default()
            };
            if i % 2 == 0 {
                p.activity
                    .insert("login".into(), vec![(today - (i % 30) as i64, 1)]);
            }
            p
        })
        .collect();
    let audience = Audience::compile(WHERE).unwrap();

    let start = Instant::now();
    let base = profiles.iter().filter(|p| native(p, now, today)).count();
    let base_rate = PROFILES as f64 / start.elapsed().as_secs_f64();

    // As a run does: a page at a time (500 profiles).
    let start = Instant::now();
    let mut matched = 0;
    for page in profiles.chunks_mut(500) {
        matched += black_box(audience.judge(page, now, None)).matched.len();
    }
    let cel_rate = PROFILES as f64 / start.elapsed().as_secs_f64();
    assert_eq!(matched, base, "CEL and the baseline agree");

    let part = |source: &str, profiles: &mut [Profile]| {
        let a = Audience::compile(source).unwrap();
        let start = Instant::now();
        for page in profiles.chunks_mut(500) {
            assert_eq!(black_box(a.judge(page, now, None)).errors, 0);
        }
        PROFILES as f64 / start.elapsed().as_secs_f64()
    };
    let parts: Vec<(&str, f64)> = [
        "true",
        "user.plan != 'free'",
        "!did('login', 14)",
        "time(user['Last Seen']) < now",
        "now - duration('504h') < now",
    ]
    .into_iter()
    .map(|source| (source, part(source, &mut profiles)))
    .collect();
    println!(
        "profiles matched on one core, in memory ({PROFILES} profiles, {matched} in the audience)"
    );
    println!("  where: {WHERE}");
    println!("  baseline (hand-written Rust): {base_rate:>12.0} profiles/s");
    println!(
        "  campaign `where` (CEL):      {cel_rate:>12.0} profiles/s ({:.1}x the baseline's time)",
        base_rate / cel_rate
    );
    println!("  its parts alone:");
    for (source, rate) in parts {
        println!("    {source:<32} {rate:>12.0} profiles/s");
    }

    // From the store: written as profiles are kept, then paged and judged.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (from_store, read_only) = runtime.block_on(async {
        let (p, _dir) = hookline::testkit::platform().await;
        for chunk in profiles.chunks(100) {
            let writes = chunk
                .iter()
                .map(|profile| {
                    hookline::ports::Write::Put(hookline::ports::Put::new(
                        hookline::keys::profile(
                            "acct_bench",
                            hookline::profiles::segment_of(&profile.distinct_id),
                            &profile.distinct_id,
                        ),
                        serde_json::to_value(profile).unwrap(),
                    ))
                })
                .collect();
            p.store.write_all(writes).await.unwrap();
        }
        let pass = |judge: bool| {
            let p = p.clone();
            let audience = audience.clone();
            async move {
                let start = Instant::now();
                let mut seen = 0;
                let mut matched = 0;
                for segment in 0..hookline::profiles::SEGMENTS {
                    let mut cursor = None;
                    loop {
                        let (mut page, next) =
                            hookline::profiles::page(&p, "acct_bench", segment, 500, cursor)
                                .await
                                .unwrap();
                        seen += page.len();
                        if judge {
                            matched += audience.judge(&mut page, now, None).matched.len();
                        }
                        match next {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                }
                assert_eq!(seen, PROFILES);
                if judge {
                    assert_eq!(matched, base);
                }
                PROFILES as f64 / start.elapsed().as_secs_f64()
            }
        };
        let read_only = pass(false).await;
        (pass(true).await, read_only)
    });
    println!("  from the embedded store, 500 a page:");
    println!("    read alone                     {read_only:>12.0} profiles/s");
    println!("    read and matched               {from_store:>12.0} profiles/s");
}
