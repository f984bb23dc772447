//! Items under (partition key, sort key). The key layout of every item the
//! product writes is in `crate::keys`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub body: Value,
    /// Grows by at least one on every write of the key; opaque otherwise.
    pub version: u64,
    /// Whole seconds: DynamoDB's TTL has no finer grain, and both adapters
    /// must agree on when an item stops being visible.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The condition a write needs to hold for it to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cond {
    #[default]
    Any,
    /// No live item under the key (an expired one counts as absent).
    Absent,
    /// A live item whose version is this one.
    Version(u64),
}

#[derive(Debug, Clone)]
pub struct Put {
    pub key: Key,
    pub body: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub cond: Cond,
}

impl Put {
    pub fn new(key: Key, body: Value) -> Self {
        Self {
            key,
            body,
            expires_at: None,
            cond: Cond::Any,
        }
    }

    pub fn when(mut self, cond: Cond) -> Self {
        self.cond = cond;
        self
    }

    pub fn expires(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }
}

#[derive(Debug, Clone)]
pub enum Write {
    Put(Put),
    Delete { key: Key, cond: Cond },
}

#[derive(Debug, Clone)]
pub struct Query {
    pub pk: String,
    pub sk_prefix: String,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    pub limit: usize,
    /// Newest first when sort keys grow with time.
    pub reverse: bool,
}

impl Query {
    pub fn new(pk: impl Into<String>, sk_prefix: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk_prefix: sk_prefix.into(),
            cursor: None,
            limit: 100,
            reverse: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present exactly when more items follow.
    pub next_cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the condition on the write did not hold")]
    Conflict,
    #[error("invalid cursor")]
    InvalidCursor,
    /// Past what DynamoDB keeps: size, nesting, a number, a key's length.
    #[error("the item cannot be stored: {0}")]
    TooLarge(String),
    #[error("store unavailable: {0}")]
    Backend(String),
}

/// Most writes are small: the all-or-nothing write takes up to this many items
/// (DynamoDB's TransactWriteItems limit).
pub const MAX_WRITE_ALL: usize = 100;

#[async_trait]
pub trait Store: Send + Sync {
    /// A live item, or `None` when absent or expired.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Writes the item and answers its new version.
    async fn put(&self, put: Put) -> Result<u64, StoreError>;
    /// Removes the item; removing an absent item under `Cond::Any` is not an error.
    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError>;
    /// Atomically adds `delta` to the counter under `key` and answers the new
    /// value. An absent or expired counter starts from zero; `expires_at`, when
    /// given, is set on the counter.
    async fn add(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError>;
    /// Sets top-level fields of a live item's body, keeping the rest of it
    /// and its expiry, and answers its new version; `Conflict` when no live
    /// item is there. One request where the store takes one (DynamoDB).
    async fn set_fields(
        &self,
        key: &Key,
        fields: serde_json::Map<String, Value>,
    ) -> Result<u64, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Err(StoreError::Conflict);
        };
        let mut body = item.body;
        let Some(object) = body.as_object_mut() else {
            return Err(StoreError::Backend(format!(
                "item {key:?} is not an object"
            )));
        };
        object.extend(fields);
        let mut put = Put::new(key.clone(), body).when(Cond::Version(item.version));
        put.expires_at = item.expires_at;
        self.put(put).await
    }
    /// Live items of one partition whose sort key starts with the prefix, in
    /// sort key order.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// All of the writes or none of them (at most [`MAX_WRITE_ALL`], one per key).
    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// Whether other processes use this store too (DynamoDB), so that a
    /// count kept in memory would be one process's alone.
    fn shared(&self) -> bool {
        false
    }

    /// This store, with writes that answer once they are visible but before
    /// they are durable, for work that keeps its own record of what is
    /// unfinished: the apply queue deletes a message only after [`Store::sync`].
    /// `None` where every write is durable when it answers (DynamoDB).
    fn deferred(&self) -> Option<Arc<dyn Store>> {
        None
    }
    /// Makes every write answered so far durable, deferred ones included.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Why writes fail now, when the store knows (the embedded store after
    /// a failed disk write, until it has reopened its file).
    fn trouble(&self) -> Option<String> {
        None
    }
    /// Changes whenever writes answered but not yet durable may have been
    /// lost (the embedded store reopened its file after a failed write): a
    /// caller that defers writes reads it before its first and compares
    /// after its `sync`.
    fn generation(&self) -> u64 {
        0
    }
    /// Removes items whose expiry has passed, so that their space is
    /// reused; answers how many. Readers never see expired items anyway.
    /// Nothing to do where the store expires items itself (DynamoDB's TTL).
    async fn sweep_expired(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}
pub mod cursor;
mod helpers;
mod limits;

pub use helpers::*;
pub use limits::*;
