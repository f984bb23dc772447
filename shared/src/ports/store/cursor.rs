//! Cursors are the last sort key returned, encoded so that users treat them as
//! opaque. Both adapters use this, so a cursor means the same thing on each.

use super::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Marks cursors as ours (and their format version): anything else is refused.
const MARK: &str = "c1:";

pub fn encode(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{MARK}{sk}"))
}

/// The sort key a cursor stands for; it must lie under the query's prefix.
pub fn decode(cursor: &str, prefix: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    match text.strip_prefix(MARK) {
        Some(sk) if sk.starts_with(prefix) => Ok(sk.to_string()),
        _ => Err(StoreError::InvalidCursor),
    }
}
