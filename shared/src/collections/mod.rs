//! Named collections of contacts: contact lists and sequences share this
//! storage (the collection, and one member item per contact), and differ only
//! in what a member records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Platform;
use crate::apply::ApplyMessage;
use crate::http::ApiError;
use crate::ids;
use crate::keys;
use crate::ports::store::{OPTIMISTIC_ATTEMPTS, contention_pause};
use crate::ports::{Cond, Key, Page, Put, Query, StoreError, Write};

/// Which collection: its id prefix, key word and name in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    List,
    Sequence,
}

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

const MAX_NAME: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A name: trimmed, not empty, at most 200 characters, no control characters.
pub fn parse_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("invalid_name", "name must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(
            "invalid_name",
            format!("name is longer than {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

pub async fn create(
    platform: &Platform,
    kind: Kind,
    account: &str,
    name: &str,
) -> Result<Collection, ApiError> {
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
) -> Result<Collection, ApiError> {
    find(platform, kind, account, id)
        .await?
        .ok_or_else(|| ApiError::not_found(kind.word()))
}

pub async fn page(
    platform: &Platform,
    kind: Kind,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Collection>, Option<String>), ApiError> {
    let mut q = Query::new(keys::collections(kind, account), "");
    q.limit = limit;
    q.cursor = cursor;
    let Page { items, next_cursor } = platform.store.query(q).await?;
    let all = items
        .into_iter()
        .map(|i| serde_json::from_value(i.body))
        .collect::<Result<Vec<Collection>, _>>()
        .map_err(|e| ApiError::internal("decode collection", e))?;
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
) -> Result<Page, ApiError> {
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
pub async fn delete(
    platform: &Platform,
    kind: Kind,
    account: &str,
    id: &str,
) -> Result<(), ApiError> {
    get(platform, kind, account, id).await?;
    let purge = ApplyMessage::Purge {
        kind,
        account: account.to_string(),
        id: id.to_string(),
    };
    // Queue the purge first, so that no deleted collection keeps its members
    // for want of a message. The purge runs only once the collection is gone.
    platform
        .apply_queue
        .send(purge.encode(), std::time::Duration::ZERO)
        .await?;
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
) -> Result<(), StoreError> {
    if platform
        .store
        .get(&keys::collection(kind, account, id))
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict);
    }
    loop {
        let mut q = Query::new(keys::members(kind, account, id), "");
        q.limit = 25;
        let page = platform.store.query(q).await?;
        if page.items.is_empty() {
            return Ok(());
        }
        if kind == Kind::List {
            for member in &page.items {
                crate::contacts::remove_list(platform, account, &member.key.sk, id).await?;
            }
        }
        let deletes = page
            .items
            .into_iter()
            .map(|i| Write::Delete {
                key: i.key,
                cond: Cond::Any,
            })
            .collect();
        platform.store.write_all(deletes).await?;
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
}

impl Membership {
    pub fn as_str(&self) -> &'static str {
        match self {
            Membership::Added => "added",
            Membership::AlreadyThere => "already a member",
            Membership::Stopped => "stopped",
            Membership::AlreadyStopped => "already stopped",
            Membership::NotEnrolled => "not in the sequence",
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
    let added = update_member(platform, key, |current| {
        current
            .is_none()
            .then(|| serde_json::json!({"contact_id": contact.id, "added_at": now}))
    })
    .await?;
    crate::contacts::add_list(platform, account, &contact.id, list_id).await?;
    Ok(if added {
        Membership::Added
    } else {
        Membership::AlreadyThere
    })
}

/// Enrols the contact in a sequence, or starts it again if it was stopped.
pub async fn add_to_sequence(
    platform: &Platform,
    account: &str,
    sequence_id: &str,
    contact: &crate::contacts::Contact,
) -> Result<Membership, StoreError> {
    let now = platform.clock.now();
    let key = member_key(Kind::Sequence, account, sequence_id, &contact.id);
    let added = update_member(platform, key, |current| {
        if current.is_some_and(|m| m["status"] == "active") {
            return None;
        }
        let mut member = contact.summary();
        member["status"] = "active".into();
        member["added_at"] = serde_json::json!(now);
        member["stopped_at"] = Value::Null;
        Some(member)
    })
    .await?;
    Ok(if added {
        Membership::Added
    } else {
        Membership::AlreadyThere
    })
}

/// Stops the contact's sequence, if it is in it.
pub async fn stop_sequence(
    platform: &Platform,
    account: &str,
    sequence_id: &str,
    contact: &crate::contacts::Contact,
) -> Result<Membership, StoreError> {
    let now = platform.clock.now();
    let key = member_key(Kind::Sequence, account, sequence_id, &contact.id);
    let stopped = update_member(platform, key, |current| {
        let current = current?;
        if current["status"] == "stopped" {
            return None;
        }
        let mut member = current.clone();
        member["status"] = "stopped".into();
        member["stopped_at"] = serde_json::json!(now);
        Some(member)
    })
    .await?;
    if stopped {
        return Ok(Membership::Stopped);
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
    Ok(if member.is_some() {
        Membership::AlreadyStopped
    } else {
        Membership::NotEnrolled
    })
}

pub mod routes;
