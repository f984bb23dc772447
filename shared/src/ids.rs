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

/// An id of one kind, parsed at the edge: a value of it is well-formed (its
/// prefix, then 26 letters and digits), so the domain never checks again.
/// It reads as a `&str` (`Deref`) and is stored and answered as its text.
macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident = $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, later in order than every one made before it.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(new_id($prefix))
            }

            /// `text` as this kind of id, if it could be one.
            pub fn parse(text: &str) -> Option<Self> {
                looks_like(text, $prefix).then(|| Self(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// When it was made, in ms since the epoch (none if its ULID
            /// does not decode).
            pub fn timestamp_ms(&self) -> Option<u64> {
                let ulid = &self.0[$prefix.len() + 1..];
                ulid::Ulid::from_string(&ulid.to_ascii_uppercase())
                    .ok()
                    .map(|u| u.timestamp_ms())
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        /// In the API document: a string of this shape.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-Za-z]{26}$")))
                    .examples([concat!($prefix, "_01jf6z0c1qz8m3v2w4x5y6z7a8")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("not a {} id: {text:?}", $prefix))
                })
            }
        }
    )*};
}

typed_id! {
    /// A trigger's: `trg_...`.
    TriggerId = "trg";
    /// A request accepted at a trigger URL: `req_...`.
    RequestId = "req";
    /// A contact's: `ct_...`.
    ContactId = "ct";
    /// A contact list's: `lst_...`.
    ListId = "lst";
    /// A sequence's: `seq_...`.
    SequenceId = "seq";
    /// A dead letter's: `dl_...`.
    DeadLetterId = "dl";
    /// An admin key's (not the key): `key_...`.
    KeyId = "key";
    /// An outbound webhook's: `wh_...`.
    WebhookId = "wh";
    /// A published event's: `evt_...`.
    EventId = "evt";
    /// A delivery attempt's: `att_...`.
    AttemptId = "att";
    /// A webhook campaign's: `cmp_...`.
    CampaignId = "cmp";
    /// A campaign's run: `run_...`.
    RunId = "run";
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

    #[test]
    fn a_typed_id_is_well_formed_or_refused() {
        let id = TriggerId::new();
        assert_eq!(TriggerId::parse(&id), Some(id.clone()));
        assert_eq!(TriggerId::parse(&RequestId::new()), None);
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TriggerId>(&text).unwrap(), id);
        assert!(serde_json::from_str::<TriggerId>("\"trg_../x\"").is_err());
    }
}
