//! Cursors are the last sort key returned and a digest of the partition it
//! came from, encoded so that users treat them as opaque. Both adapters use
//! this, so a cursor means the same thing on each; a cursor of one partition
//! (another account's list, say) is refused on every other.

use super::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Marks cursors as ours (and their format version): anything else is refused.
const MARK: &str = "c2:";

/// 12 hex digits of the partition key's SHA-256: enough to tell partitions
/// apart, and nothing of the key to read back.
fn partition(pk: &str) -> String {
    Sha256::digest(pk.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn encode(pk: &str, sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{MARK}{}:{sk}", partition(pk)))
}

/// The sort key a cursor stands for; it must come from the query's
/// partition and lie under its prefix.
pub fn decode(cursor: &str, pk: &str, prefix: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let rest = text.strip_prefix(MARK).ok_or(StoreError::InvalidCursor)?;
    match rest.split_once(':') {
        Some((from, sk)) if from == partition(pk) && sk.starts_with(prefix) => Ok(sk.to_string()),
        _ => Err(StoreError::InvalidCursor),
    }
}
