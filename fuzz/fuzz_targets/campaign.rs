//! A campaign's inputs: its `where` compiled and evaluated on a profile,
//! its schedule parsed and its next run worked out, profiles and tracked
//! events parsed. No input may crash, overflow the stack or run without
//! bound. Input: the `where`, a 0 byte, then a JSON document used as the
//! profile's properties, the schedule, and the bodies of `POST
//! /v1/profiles` and `POST /v1/track`.
#![no_main]

use hookline::campaigns::{Audience, Schedule};
use hookline::profiles::Profile;
use hookline::transforms::pool;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let (source, document) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(document) else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_795_608_000, 0).unwrap();
    if let Ok(schedule) = Schedule::parse(&json, now) {
        let mut at = now;
        for _ in 0..3 {
            match schedule.next_after(at) {
                Some(next) => {
                    assert!(next > at, "the next run is later");
                    at = next;
                }
                None => break,
            }
        }
    }
    let _ = hookline::profiles::parse_profiles(&json);
    let _ = hookline::profiles::parse_track(&json, now);
    let source = source.to_string();
    let properties = json.as_object().cloned();
    runtime().block_on(async move {
        let judged = pool::run(move || {
            let audience = Audience::compile(&source).ok()?;
            let mut profile = Profile {
                distinct_id: "u".into(),
                properties,
                ..Profile::default()
            };
            profile.activity.insert("login".into(), vec![(20_000, 3)]);
            Some(audience.matches(&mut profile, now))
        })
        .await;
        match judged {
            Ok(_) => {}
            Err(pool::Failed::Panicked(m)) => panic!("the where panicked: {m}"),
            Err(pool::Failed::Busy) => unreachable!("one job at a time"),
        }
    });
});
