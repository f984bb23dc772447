//! Opaque ids: a type prefix and a ULID, so ids sort by creation time and
//! a reader can tell a list id from a trigger id.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Whether `id` could be an id made by [`new_id`] with this prefix. Lets routes
/// answer 404 for garbage without a store lookup, and keeps odd bytes out of keys.
pub fn looks_like(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|u| u.len() == 26 && u.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// How logs name a trigger: a short digest of its id, from which the id
/// cannot be found (a trigger id is all a caller needs to post to a trigger
/// that requires no API key, so logs never carry it). `trg#` and 12 hex
/// digits of its SHA-256.
pub fn trigger_ref(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("trg#{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_sortable_and_recognised() {
        let a = new_id("lst");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("lst");
        assert!(a < b);
        assert!(looks_like(&a, "lst"));
        assert!(!looks_like(&a, "trg"));
        assert!(!looks_like("lst_../../etc", "lst"));
        assert!(!looks_like("lst_", "lst"));
    }
}
