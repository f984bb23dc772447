//! Where every item lives: the whole key layout, in one place.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | account | `account` | account id |
//! | admin key | `admin_key` | first 16 hex digits of the key's SHA-256 |
//! | contact list | `{account}#list` | list id |
//! | list member | `{account}#list#{list id}` | contact id |
//!
//! Partitions are per account and per resource, so a list query reads one
//! partition and accounts never share one.

use crate::ports::Key;

pub fn account(id: &str) -> Key {
    Key::new("account", id)
}

pub fn admin_key(lookup: &str) -> Key {
    Key::new("admin_key", lookup)
}

pub fn lists(account: &str) -> String {
    format!("{account}#list")
}

pub fn list(account: &str, id: &str) -> Key {
    Key::new(lists(account), id)
}

pub fn list_members(account: &str, list: &str) -> String {
    format!("{account}#list#{list}")
}

pub fn list_member(account: &str, list: &str, contact: &str) -> Key {
    Key::new(list_members(account, list), contact)
}
