//! Named collections of contacts: contact lists and sequences share this
//! storage (the collection, and one member item per contact), and differ only
//! in what a member records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Platform;
use crate::error::Error;
use crate::ids;
use crate::keys;
use crate::messages::ApplyMessage;
use crate::ports::store::{OPTIMISTIC_ATTEMPTS, contention_pause};
use crate::ports::store::{Progress, delete_items, first_page};
use crate::ports::{Cond, Key, Page, Put, Query, StoreError};

/// Which collection: its id prefix, key word and name in messages (a
/// plain type of the messages that name it).
pub use crate::messages::CollectionKind as Kind;

impl Kind {
    pub fn id_prefix(self) -> &'static str {
        match self {
            Kind::List => "lst",
            Kind::Sequence => "seq",
        }
    }

    /// The word in keys and messages.
    pub fn word(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Sequence => "sequence",
        }
    }
}

/// Its word, as keys name it.
impl From<Kind> for &'static str {
    fn from(kind: Kind) -> Self {
        kind.word()
    }
}

const MAX_NAME: usize = 200;

/// A name in the API document: [`NAME_PATTERN`].
pub struct Name;

impl utoipa::PartialSchema for Name {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(NAME_PATTERN))
            .description(Some(
                "trimmed; then 1 to 200 characters, none of them a control character",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Name {}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A name: trimmed, not empty, at most 200 characters, no control characters.
pub fn parse_name(name: &str) -> Result<String, Error> {
    parse_name_text(name).map_err(|e| e.with_details(serde_json::json!({"field": "name"})))
}

fn parse_name_text(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("invalid_name", "name must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::invalid(
            "invalid_name",
            format!("name is longer than {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// What [`parse_name`] takes, as a pattern that ECMA-262 (JSON Schema),
/// Python and Rust's `regex` read alike: blanks around (trimmed away: the
/// characters `char::is_whitespace` names), then 1 to 200 characters with
/// no control character, the first and last not blank.
pub const NAME_PATTERN: &str = concat!(
    r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f]",
    r"(?:[^\x00-\x1f\x7f-\x9f]{0,198}",
    r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?",
    r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
);

pub async fn create(
    platform: &Platform,
    kind: Kind,
    account: &str,
    name: &str,
) -> Result<Collection, Error> {
    let c = Collection {
        id: ids::new_id(kind.id_prefix()),
        name: parse_name(name)?,
        created_at: platform.clock.now(),
    };
    let body = serde_json::to_value(&c).expect("serialisable");
    platform
        .store
        .put(Put::new(keys::collection(kind, account, &c.id), body).when(Cond::Absent))
        .await?;
    Ok(c)
}

/// The collection, or `None` (also for ids that cannot be ours).
pub async fn find(
    platform: &Platform,
    kind: Kind,
    account: &str,
    id: &str,
) -> Result<Option<Collection>, StoreError> {
    if !ids::looks_like(id, kind.id_prefix()) {
        return Ok(None);
    }
    let Some(item) = platform
        .store
        .get(&keys::collection(kind, account, id))
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_value(item.body)
        .map(Some)
        .map_err(|e| StoreError::Backend(format!("corrupt {}: {e}", kind.word())))
}

pub async fn get(
    platform: &Platform,
    kind: Kind,
    account: &str,
    id: &str,
) -> Result<Collection, Error> {
    find(platform, kind, account, id)
        .await?
        .ok_or_else(|| Error::not_found(kind.word()))
}

pub async fn page(
    platform: &Platform,
    kind: Kind,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Collection>, Option<String>), Error> {
    let mut q = Query::new(keys::collections(kind, account), "");
    q.limit = limit;
    q.cursor = cursor;
    let Page { items, next_cursor } = platform.store.query(q).await?;
    let all = crate::error::decoded(items, "decode collection")?;
    Ok((all, next_cursor))
}

/// Member items of a collection, oldest contact first.
pub async fn members(
    platform: &Platform,
    kind: Kind,
    account: &str,
    id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<Page, Error> {
    get(platform, kind, account, id).await?;
    let mut q = Query::new(keys::members(kind, account, id), "");
    q.limit = limit;
    q.cursor = cursor;
    Ok(platform.store.query(q).await?)
}

pub fn member_key(kind: Kind, account: &str, id: &str, contact_id: &str) -> Key {
    Key::new(keys::members(kind, account, id), contact_id)
}

/// Reads a member, changes it and writes it back, retrying when another
/// writer got in between. `change` answers the new body, or `None` to leave
/// the member as it is.
pub async fn update_member(
    platform: &Platform,
    key: Key,
    change: impl Fn(Option<&Value>) -> Option<Value>,
) -> Result<bool, StoreError> {
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let current = platform.store.get(&key).await?;
        let Some(body) = change(current.as_ref().map(|i| &i.body)) else {
            return Ok(false);
        };
        let cond = current.map_or(Cond::Absent, |i| Cond::Version(i.version));
        match platform
            .store
            .put(Put::new(key.clone(), body).when(cond))
            .await
        {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(format!("member {key:?} kept changing")))
}

/// Deletes the collection now; its members are removed by the apply queue,
/// so that deleting a collection of a million contacts answers at once.
pub async fn delete(platform: &Platform, kind: Kind, account: &str, id: &str) -> Result<(), Error> {
    get(platform, kind, account, id).await?;
    let purge = ApplyMessage::Purge {
        kind,
        account: account.to_string(),
        id: id.to_string(),
    };
    // Queue the purge first, so that no deleted collection keeps its members
    // for want of a message. The purge runs only once the collection is gone.
    purge.send(platform).await?;
    platform
        .store
        .delete(&keys::collection(kind, account, id), Cond::Any)
        .await?;
    Ok(())
}

/// Removes every member of a deleted collection, a transaction at a time.
/// While the collection still exists (its delete is in flight, or failed)
/// this answers `Conflict`, which the apply queue retries and finally
/// dead-letters: a live collection is never emptied.
pub async fn purge_members(
    platform: &Platform,
    kind: Kind,
    account: &str,
    id: &str,
    budget: std::time::Duration,
) -> Result<Progress, StoreError> {
    if platform
        .store
        .get(&keys::collection(kind, account, id))
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict);
    }
    let pk = keys::members(kind, account, id);
    let start = std::time::Instant::now();
    loop {
        let Some(members) = first_page(&*platform.store, &pk).await? else {
            return Ok(Progress::Done);
        };
        // A page's contacts first: once their members are gone, nothing
        // finds them.
        if kind == Kind::List {
            for member in &members {
                crate::contacts::remove_list(platform, account, &member.key.sk, id).await?;
            }
        }
        delete_items(&*platform.store, members).await?;
        if start.elapsed() >= budget {
            return Ok(Progress::More);
        }
    }
}

/// What an action did, for the request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    Added,
    AlreadyThere,
    Stopped,
    AlreadyStopped,
    NotEnrolled,
    /// A newer request changed the membership; this older one changes nothing.
    Superseded,
}

impl Membership {
    pub fn as_str(&self) -> &'static str {
        match self {
            Membership::Added => "added",
            Membership::AlreadyThere => "already a member",
            Membership::Stopped => "stopped",
            Membership::AlreadyStopped => "already stopped",
            Membership::NotEnrolled => "not in the sequence",
            Membership::Superseded => "left as a newer request set it",
        }
    }
}

/// Adds the contact to a list (and the list to the contact's `lists`).
pub async fn add_to_list(
    platform: &Platform,
    account: &str,
    list_id: &str,
    contact: &crate::contacts::Contact,
) -> Result<Membership, StoreError> {
    let now = platform.clock.now();
    let key = member_key(Kind::List, account, list_id, &contact.id);
    // Two items, each written under its own condition: together, they take
    // one round trip to the store instead of two.
    let (added, ()) = tokio::try_join!(
        update_member(platform, key, |current| {
            current
                .is_none()
                .then(|| serde_json::json!({"contact_id": contact.id, "added_at": now}))
        }),
        crate::contacts::add_list(platform, account, &contact.id, list_id),
    )?;
    Ok(if added {
        Membership::Added
    } else {
        Membership::AlreadyThere
    })
}

/// Whether a request received at `at` is older than the one that last
/// changed this member: a redelivered old request must not undo a newer one.
fn outdated(member: &Value, at: DateTime<Utc>) -> bool {
    member["changed_by_request_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > at)
}

/// Enrols the contact in a sequence, or starts it again if it was stopped,
/// unless a newer request has changed its membership since `received_at`.
pub async fn add_to_sequence(
    platform: &Platform,
    account: &str,
    sequence_id: &str,
    contact: &crate::contacts::Contact,
    received_at: DateTime<Utc>,
) -> Result<Membership, StoreError> {
    let now = platform.clock.now();
    let key = member_key(Kind::Sequence, account, sequence_id, &contact.id);
    let added = update_member(platform, key, |current| {
        if current.is_some_and(|m| m["status"] == "active" || outdated(m, received_at)) {
            return None;
        }
        let mut member = contact.summary();
        member["status"] = "active".into();
        member["added_at"] = serde_json::json!(now);
        member["stopped_at"] = Value::Null;
        member["changed_by_request_at"] = serde_json::json!(received_at);
        Some(member)
    })
    .await?;
    if added {
        return Ok(Membership::Added);
    }
    let member = platform
        .store
        .get(&member_key(
            Kind::Sequence,
            account,
            sequence_id,
            &contact.id,
        ))
        .await?;
    Ok(match member {
        Some(m) if m.body["status"] != "active" && outdated(&m.body, received_at) => {
            Membership::Superseded
        }
        _ => Membership::AlreadyThere,
    })
}

/// Stops the contact's sequence, if it is in it and no newer request has
/// changed its membership since `received_at`.
pub async fn stop_sequence(
    platform: &Platform,
    account: &str,
    sequence_id: &str,
    contact: &crate::contacts::Contact,
    received_at: DateTime<Utc>,
) -> Result<Membership, StoreError> {
    let now = platform.clock.now();
    let key = member_key(Kind::Sequence, account, sequence_id, &contact.id);
    let stopped = update_member(platform, key.clone(), |current| {
        let current = current?;
        if current["status"] == "stopped" || outdated(current, received_at) {
            return None;
        }
        let mut member = current.clone();
        member["status"] = "stopped".into();
        member["stopped_at"] = serde_json::json!(now);
        member["changed_by_request_at"] = serde_json::json!(received_at);
        Some(member)
    })
    .await?;
    if stopped {
        return Ok(Membership::Stopped);
    }
    let member = platform.store.get(&key).await?;
    Ok(match member {
        Some(m) if m.body["status"] == "stopped" => Membership::AlreadyStopped,
        Some(_) => Membership::Superseded,
        None => Membership::NotEnrolled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern the API document gives for names takes exactly what
    /// `parse_name` takes: every string of up to 4 characters from an
    /// alphabet of blanks, controls and letters, and the length bounds.
    #[test]
    fn the_name_pattern_is_parse_name() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        let alphabet = [
            ' ', '\t', '\n', '\u{b}', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}', '\u{feff}', 'a',
            '\u{e9}', '\u{1}', '\u{7f}', '\u{9f}',
        ];
        let mut strings = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(last.iter().cloned());
        }
        for n in [199, 200, 201] {
            let inner = format!(
                "a{}b",
                " x".repeat(n / 2).chars().take(n - 2).collect::<String>()
            );
            strings.push(inner.clone());
            strings.push(format!("  {inner}\n"));
        }
        assert!(strings.len() > 40_000);
        for s in &strings {
            assert_eq!(pattern.is_match(s), parse_name(s).is_ok(), "{s:?}");
        }
    }
    use crate::contacts::{Changes, Identifier};
    use chrono::TimeDelta;

    #[tokio::test]
    async fn an_older_request_does_not_undo_a_newer_sequence_change() {
        let (p, _dir) = crate::testkit::platform().await;
        let seq = create(&p, Kind::Sequence, "acct_x", "Onboarding")
            .await
            .unwrap();
        let changes = Changes::parse(crate::transforms::ContactFields {
            email: Some("s@example.com".into()),
            ..Default::default()
        })
        .unwrap();
        let now = Utc::now();
        let (contact, _) =
            crate::contacts::upsert(&p, "acct_x", Identifier::Email, &changes, true, now)
                .await
                .unwrap();
        let t = |s: i64| now + TimeDelta::seconds(s);
        let status = || async {
            let m = p
                .store
                .get(&member_key(Kind::Sequence, "acct_x", &seq.id, &contact.id))
                .await
                .unwrap()
                .unwrap();
            m.body["status"].as_str().unwrap().to_string()
        };
        assert_eq!(
            add_to_sequence(&p, "acct_x", &seq.id, &contact, t(2))
                .await
                .unwrap(),
            Membership::Added
        );
        // A stop received before the enrolment arrives late: it changes nothing.
        assert_eq!(
            stop_sequence(&p, "acct_x", &seq.id, &contact, t(1))
                .await
                .unwrap(),
            Membership::Superseded
        );
        assert_eq!(status().await, "active");
        assert_eq!(
            stop_sequence(&p, "acct_x", &seq.id, &contact, t(3))
                .await
                .unwrap(),
            Membership::Stopped
        );
        // The enrolment delivered again does not start the sequence again.
        assert_eq!(
            add_to_sequence(&p, "acct_x", &seq.id, &contact, t(2))
                .await
                .unwrap(),
            Membership::Superseded
        );
        assert_eq!(status().await, "stopped");
        // A newer enrolment does.
        assert_eq!(
            add_to_sequence(&p, "acct_x", &seq.id, &contact, t(4))
                .await
                .unwrap(),
            Membership::Added
        );
        assert_eq!(status().await, "active");
    }
}
