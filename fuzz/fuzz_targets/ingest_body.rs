//! Bodies posted to a trigger URL, as JSON, `+json` or a form: parsing
//! never panics, and what it accepts is within what the request log keeps.
#![no_main]

use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 5] = [
    "application/json",
    "application/vnd.example+json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=latin1",
];

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        TYPES[kind as usize % TYPES.len()].parse().unwrap(),
    );
    if let Ok(map) = hookline::http::body::parse_body(&headers, body) {
        let value = serde_json::Value::Object(map);
        assert!(depth(&value) <= 25, "accepted a body nested too deep");
        assert!(hookline::ports::store::check_shape(&value).is_ok());
        // What is accepted is queued as JSON and read back the same.
        let text = serde_json::to_string(&value).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
});
