//! Contact lists (Mixmax "add to a contact list", Heymarket lists).

pub mod routes;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Platform;
use crate::apply::ApplyMessage;
use crate::http::ApiError;
use crate::ids;
use crate::keys;
use crate::ports::{Cond, Page, Put, Query, StoreError, Write};

pub const ID_PREFIX: &str = "lst";
const MAX_NAME: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct List {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A list name: trimmed, not empty, at most 200 characters.
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

pub async fn create(platform: &Platform, account: &str, name: &str) -> Result<List, ApiError> {
    let list = List {
        id: ids::new_id(ID_PREFIX),
        name: parse_name(name)?,
        created_at: platform.clock.now(),
    };
    let body = serde_json::to_value(&list).expect("serialisable");
    platform
        .store
        .put(Put::new(keys::list(account, &list.id), body).when(Cond::Absent))
        .await?;
    Ok(list)
}

pub async fn get(platform: &Platform, account: &str, id: &str) -> Result<List, ApiError> {
    if !ids::looks_like(id, ID_PREFIX) {
        return Err(ApiError::not_found("list"));
    }
    let item = platform.store.get(&keys::list(account, id)).await?;
    let item = item.ok_or_else(|| ApiError::not_found("list"))?;
    serde_json::from_value(item.body).map_err(|e| ApiError::internal("decode list", e))
}

pub async fn page(
    platform: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<List>, Option<String>), ApiError> {
    let mut q = Query::new(keys::lists(account), "");
    q.limit = limit;
    q.cursor = cursor;
    let Page { items, next_cursor } = platform.store.query(q).await?;
    let lists = items
        .into_iter()
        .map(|i| serde_json::from_value(i.body))
        .collect::<Result<Vec<List>, _>>()
        .map_err(|e| ApiError::internal("decode list", e))?;
    Ok((lists, next_cursor))
}

/// Members of a list, oldest first.
pub async fn members(
    platform: &Platform,
    account: &str,
    id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<Page, ApiError> {
    get(platform, account, id).await?;
    let mut q = Query::new(keys::list_members(account, id), "");
    q.limit = limit;
    q.cursor = cursor;
    Ok(platform.store.query(q).await?)
}

/// Deletes the list now; its members are removed by the apply queue, so that
/// deleting a list of a million contacts answers at once.
pub async fn delete(platform: &Platform, account: &str, id: &str) -> Result<(), ApiError> {
    get(platform, account, id).await?;
    let purge = ApplyMessage::PurgeList {
        account: account.to_string(),
        list_id: id.to_string(),
    };
    // Queue the purge first, so that no deleted list keeps its members for
    // want of a message. The purge runs only once the list is gone (below).
    platform
        .apply_queue
        .send(purge.encode(), std::time::Duration::ZERO)
        .await?;
    platform
        .store
        .delete(&keys::list(account, id), Cond::Any)
        .await?;
    Ok(())
}

/// Removes every member of a deleted list, a transaction at a time. While the
/// list still exists (its delete is in flight, or failed) this answers
/// `Conflict`, which the apply queue retries and finally dead-letters: a live
/// list is never emptied.
pub async fn purge_members(platform: &Platform, account: &str, id: &str) -> Result<(), StoreError> {
    if platform
        .store
        .get(&keys::list(account, id))
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict);
    }
    loop {
        let mut q = Query::new(keys::list_members(account, id), "");
        q.limit = 25;
        let page = platform.store.query(q).await?;
        if page.items.is_empty() {
            return Ok(());
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
