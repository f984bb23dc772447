//! What a stored item may be: DynamoDB's limits, which both adapters
//! check, and expiry.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Key, MAX_WRITE_ALL, StoreError, Write};
/// Seconds are the common grain of expiry (see [`Item::expires_at`]).
pub fn expiry_secs(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp())
}

pub fn is_live(expires_at_secs: Option<i64>, now: DateTime<Utc>) -> bool {
    expires_at_secs.is_none_or(|t| t > now.timestamp())
}

/// The limits DynamoDB puts on a transaction, enforced on every adapter.
pub fn check_write_all(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_WRITE_ALL {
        return Err(StoreError::TooLarge(format!(
            "{} writes in one transaction, at most {MAX_WRITE_ALL}",
            writes.len()
        )));
    }
    let mut keys: Vec<&Key> = writes
        .iter()
        .map(|w| match w {
            Write::Put(p) => &p.key,
            Write::Delete { key, .. } => key,
        })
        .collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Backend(
            "one transaction writes the same key twice".into(),
        ));
    }
    Ok(())
}

/// DynamoDB refuses items over 400 KB. Both adapters refuse a document whose
/// JSON is larger, before writing, so that what works on one machine works on
/// AWS and a refused write never half-happens.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub fn check_size(json_len: usize) -> Result<(), StoreError> {
    if json_len > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(format!(
            "{json_len} bytes, at most {MAX_ITEM_BYTES}"
        )));
    }
    Ok(())
}

/// Levels of lists and maps an item's attributes may nest (DynamoDB's limit).
pub const MAX_DEPTH: usize = 32;
/// Bytes of a partition key and of a sort key at most (DynamoDB's limits).
pub const MAX_PK_BYTES: usize = 2048;
pub const MAX_SK_BYTES: usize = 1024;

/// Whether DynamoDB can store the number: magnitudes from 1e-130 to
/// 9.99e125, and 0.
fn storable(n: &serde_json::Number) -> bool {
    let f = n.as_f64().unwrap_or(f64::INFINITY).abs();
    f == 0.0 || (1e-130..1e126).contains(&f)
}

/// A number DynamoDB cannot store, wherever it is in `v`.
pub fn number_out_of_range(v: &Value) -> Option<&serde_json::Number> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Number(n) if !storable(n) => return Some(n),
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    None
}

/// What DynamoDB refuses in a document, refused by both adapters alike
/// before writing: nesting past `MAX_DEPTH`, numbers out of its range.
/// One walk, without recursion, so no document can exhaust the stack.
pub fn check_shape(body: &Value) -> Result<(), StoreError> {
    let mut stack: Vec<(&Value, usize)> = vec![(body, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Number(n) if !storable(n) => {
                return Err(StoreError::TooLarge(format!(
                    "the number {n} is outside what can be stored: magnitudes from 1e-130 to 9.99e125, or 0"
                )));
            }
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        // The document is itself an attribute (`d` on DynamoDB), level 1.
        if depth + 1 > MAX_DEPTH {
            return Err(StoreError::TooLarge(format!(
                "lists and maps nest more than {MAX_DEPTH} levels deep"
            )));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// Keys DynamoDB takes: non-empty, and within its lengths.
pub fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty()
        || key.pk.len() > MAX_PK_BYTES
        || key.sk.is_empty()
        || key.sk.len() > MAX_SK_BYTES
    {
        return Err(StoreError::TooLarge(format!(
            "keys are 1 to {MAX_PK_BYTES} bytes (partition) and 1 to {MAX_SK_BYTES} bytes (sort); these are {} and {}",
            key.pk.len(),
            key.sk.len()
        )));
    }
    Ok(())
}

/// `check_shape`, and the document's JSON within `MAX_ITEM_BYTES`.
pub fn check_item_size(body: &Value) -> Result<(), StoreError> {
    check_shape(body)?;
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, body).map_err(|e| StoreError::Backend(e.to_string()))?;
    check_size(count.0)
}
