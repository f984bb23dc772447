//! A sample payload's leaf paths, in the transform's own syntax, so a client
//! can offer "map fields" (Heymarket) from a pasted sample.

use serde_json::Value;

fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Leaves listed at most: enough to map fields from, and a bound on the
/// answer (a deep sample's paths grow with the square of its depth).
pub const MAX_PATHS: usize = 1000;
/// Bytes of paths and values listed at most.
const MAX_BYTES: usize = 256 * 1024;

/// `(path, value)` for every leaf (scalars, empty lists and objects), in
/// document order, the first `MAX_PATHS` of them. Keys that are not CEL
/// names are written `a["odd key"]`.
pub fn leaf_paths(sample: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut bytes = 0;
    if let Value::Object(map) = sample {
        for (k, v) in map {
            if is_name(k) {
                walk(k.clone(), v, &mut out, &mut bytes);
            }
        }
    }
    out
}

fn walk(path: String, value: &Value, out: &mut Vec<(String, Value)>, bytes: &mut usize) {
    if out.len() >= MAX_PATHS || *bytes > MAX_BYTES {
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if path.len() + k.len() > MAX_BYTES {
                    continue;
                }
                let next = if is_name(k) {
                    format!("{path}.{k}")
                } else {
                    format!("{path}[{}]", Value::String(k.clone()))
                };
                walk(next, v, out, bytes);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                walk(format!("{path}[{i}]"), v, out, bytes);
            }
        }
        leaf => {
            let text = match leaf {
                Value::String(s) => s.len(),
                _ => 8,
            };
            *bytes += path.len() + text;
            out.push((path, leaf.clone()));
        }
    }
}
