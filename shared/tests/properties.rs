//! Property tests of the parsers hostile input reaches (the same ones the
//! fuzz targets in `fuzz/` drive for longer): bounded example counts, so
//! they run in `cargo test`.

use hookline::http::body::parse_body;
use hookline::ports::store::cursor;
use hookline::transforms::Transform;
use proptest::prelude::*;
use serde_json::{Map, Value};

#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

fn headers(content_type: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("content-type", content_type.parse().unwrap());
    h
}

/// JSON values as posted: nested a few levels, numbers DynamoDB keeps.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(|f| Value::from((f * 1000.0).round() / 1000.0)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", json(), 0..8)
        .prop_map(|m| m.into_iter().collect())
}

const TYPES: [&str; 4] = [
    "application/json",
    "application/cloudevents+json",
    "application/x-www-form-urlencoded",
    "text/plain",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_body_is_parsed_or_refused_never_a_panic(
        kind in 0..TYPES.len(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(map) = parse_body(&headers(TYPES[kind]), &body) {
            let value = Value::Object(map);
            prop_assert!(hookline::ports::store::check_shape(&value).is_ok());
        }
    }

    #[test]
    fn a_json_object_is_accepted_as_it_was_sent(map in object()) {
        let body = serde_json::to_vec(&map).unwrap();
        for content_type in &TYPES[..2] {
            let parsed = parse_body(&headers(content_type), &body).unwrap();
            prop_assert_eq!(&parsed, &map);
        }
    }

    #[test]
    fn a_form_of_plain_fields_is_accepted_as_text(
        fields in prop::collection::btree_map("[a-z]{1,8}", "[ -~]{0,16}", 1..6),
    ) {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&");
        let parsed = parse_body(&headers(TYPES[2]), body.as_bytes()).unwrap();
        for (k, v) in &fields {
            prop_assert_eq!(&parsed[k], &Value::String(v.clone()));
        }
    }

    #[test]
    fn cursors_round_trip_and_stay_in_their_partition_under_their_prefix(
        pk in ".{1,20}", other in ".{1,20}", sk in ".{1,40}", prefix in ".{0,4}",
    ) {
        let c = cursor::encode(&pk, &sk);
        match cursor::decode(&c, &pk, &prefix) {
            Ok(back) => prop_assert_eq!(back, sk),
            Err(_) => prop_assert!(!sk.starts_with(&prefix)),
        }
        if other != pk {
            prop_assert!(cursor::decode(&c, &other, "").is_err());
        }
    }

    #[test]
    fn a_queue_log_of_any_bytes_replays_without_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (used, live) = hookline::adapters::embedded::replay_image(&bytes);
        prop_assert!(used <= bytes.len());
        prop_assert_eq!(hookline::adapters::embedded::replay_image(&bytes[..used]), (used, live));
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    // Each case compiles on the transform threads: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_transform_text_compiles_or_is_refused_and_evaluates_within_bounds(
        source in "([a-z_.()\\[\\]0-9+*=\"' ,!?:<>&|-]|\n|map|filter|exists|size|has|fields\\.|email){0,80}",
        payload in object(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            if let Ok(Ok((t, _))) = Transform::compile_bounded(source.clone()).await {
                let answered = t.evaluate(&payload).await;
                assert!(answered.is_ok(), "{source:?}: the transform threads failed: {answered:?}");
            }
        });
    }
}
