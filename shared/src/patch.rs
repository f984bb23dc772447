//! A field of an update (`PATCH`) that tells apart absent (keep the value),
//! `null` (remove it) and a value (set it): `#[serde(default)]` on the field.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Not in the body: the value is kept.
    #[default]
    Absent,
    /// `null`: the value is removed.
    Null,
    /// Set to this.
    Value(T),
}

impl<T> Patch<T> {
    /// What the field becomes, given what it is: kept, removed or set.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Absent => current,
            Patch::Null => None,
            Patch::Value(v) => Some(v),
        }
    }

    /// The value given, if one was (for a create, where absent and `null`
    /// are alike).
    pub fn value(self) -> Option<T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

/// Written as `null` or the value; an absent one is skipped by
/// `#[serde(skip_serializing_if = "Patch::is_absent")]` on its field.
impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Value(v) => s.serialize_some(v),
            _ => s.serialize_none(),
        }
    }
}

/// Present in the body: `null` or a value (absence is the field's default).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        x: Patch<String>,
    }

    #[test]
    fn absent_null_and_a_value_are_told_apart() {
        let parse = |s: &str| serde_json::from_str::<Body>(s).unwrap().x;
        assert_eq!(parse("{}"), Patch::Absent);
        assert_eq!(parse(r#"{"x": null}"#), Patch::Null);
        assert_eq!(parse(r#"{"x": "v"}"#), Patch::Value("v".to_string()));
        assert_eq!(Patch::Absent.apply(Some(1)), Some(1));
        assert_eq!(Patch::Null.apply(Some(1)), None);
        assert_eq!(Patch::Value(2).apply(Some(1)), Some(2));
    }
}
