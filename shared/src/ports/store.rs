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
    /// Live items of one partition whose sort key starts with the prefix, in
    /// sort key order.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// All of the writes or none of them (at most [`MAX_WRITE_ALL`], one per key).
    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError>;
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

/// Cursors are the last sort key returned, encoded so that users treat them as
/// opaque. Both adapters use this, so a cursor means the same thing on each.
pub mod cursor {
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
}

/// Seconds are the common grain of expiry (see [`Item::expires_at`]).
pub fn expiry_secs(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp())
}

pub fn is_live(expires_at_secs: Option<i64>, now: DateTime<Utc>) -> bool {
    expires_at_secs.is_none_or(|t| t > now.timestamp())
}

/// The limits DynamoDB puts on a transaction, enforced on every adapter.
pub fn check_write_all(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_WRITE_ALL {
        return Err(StoreError::TooLarge(format!(
            "{} writes in one transaction, at most {MAX_WRITE_ALL}",
            writes.len()
        )));
    }
    let mut keys: Vec<&Key> = writes
        .iter()
        .map(|w| match w {
            Write::Put(p) => &p.key,
            Write::Delete { key, .. } => key,
        })
        .collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Backend(
            "one transaction writes the same key twice".into(),
        ));
    }
    Ok(())
}

/// DynamoDB refuses items over 400 KB. Both adapters refuse a document whose
/// JSON is larger, before writing, so that what works on one machine works on
/// AWS and a refused write never half-happens.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub fn check_size(json_len: usize) -> Result<(), StoreError> {
    if json_len > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(format!(
            "{json_len} bytes, at most {MAX_ITEM_BYTES}"
        )));
    }
    Ok(())
}

/// Levels of lists and maps an item's attributes may nest (DynamoDB's limit).
pub const MAX_DEPTH: usize = 32;
/// Bytes of a partition key and of a sort key at most (DynamoDB's limits).
pub const MAX_PK_BYTES: usize = 2048;
pub const MAX_SK_BYTES: usize = 1024;

/// Whether DynamoDB can store the number: magnitudes from 1e-130 to
/// 9.99e125, and 0.
fn storable(n: &serde_json::Number) -> bool {
    let f = n.as_f64().unwrap_or(f64::INFINITY).abs();
    f == 0.0 || (1e-130..1e126).contains(&f)
}

/// A number DynamoDB cannot store, wherever it is in `v`.
pub fn number_out_of_range(v: &Value) -> Option<&serde_json::Number> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Number(n) if !storable(n) => return Some(n),
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    None
}

/// What DynamoDB refuses in a document, refused by both adapters alike
/// before writing: nesting past `MAX_DEPTH`, numbers out of its range.
/// One walk, without recursion, so no document can exhaust the stack.
pub fn check_shape(body: &Value) -> Result<(), StoreError> {
    let mut stack: Vec<(&Value, usize)> = vec![(body, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Number(n) if !storable(n) => {
                return Err(StoreError::TooLarge(format!(
                    "the number {n} is outside what can be stored: magnitudes from 1e-130 to 9.99e125, or 0"
                )));
            }
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        // The document is itself an attribute (`d` on DynamoDB), level 1.
        if depth + 1 > MAX_DEPTH {
            return Err(StoreError::TooLarge(format!(
                "lists and maps nest more than {MAX_DEPTH} levels deep"
            )));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// Keys DynamoDB takes: non-empty, and within its lengths.
pub fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty()
        || key.pk.len() > MAX_PK_BYTES
        || key.sk.is_empty()
        || key.sk.len() > MAX_SK_BYTES
    {
        return Err(StoreError::TooLarge(format!(
            "keys are 1 to {MAX_PK_BYTES} bytes (partition) and 1 to {MAX_SK_BYTES} bytes (sort); these are {} and {}",
            key.pk.len(),
            key.sk.len()
        )));
    }
    Ok(())
}

/// `check_shape`, and the document's JSON within `MAX_ITEM_BYTES`.
pub fn check_item_size(body: &Value) -> Result<(), StoreError> {
    check_shape(body)?;
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, body).map_err(|e| StoreError::Backend(e.to_string()))?;
    check_size(count.0)
}

/// How many times an optimistic read-modify-write goes round before it gives up.
pub const OPTIMISTIC_ATTEMPTS: u32 = 50;

/// A short random pause after losing an optimistic write, growing with the
/// attempt, so that writers contending for one item stop retrying in lockstep.
pub async fn contention_pause(attempt: u32) {
    use rand::Rng;
    let ceiling_ms = (2u64 << attempt.min(5)).min(50);
    let ms = rand::rng().random_range(0..=ceiling_ms);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Deletes the live items of a partition, one transaction per page, until
/// none are left or `budget` is spent (at least one page is done).
pub async fn clear_partition(
    store: &dyn Store,
    pk: &str,
    budget: std::time::Duration,
) -> Result<Progress, StoreError> {
    let start = std::time::Instant::now();
    loop {
        let Some(items) = first_page(store, pk).await? else {
            return Ok(Progress::Done);
        };
        delete_items(store, items).await?;
        if start.elapsed() >= budget {
            return Ok(Progress::More);
        }
    }
}

/// Whether a piece of background work finished, or stopped at its time
/// budget with more to do (to be queued again: one message stays well within
/// a Lambda's time limit, and a crash loses at most one page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Done,
    More,
}

/// The first items of partition `pk`, a transaction's worth; none when it is
/// empty.
pub async fn first_page(store: &dyn Store, pk: &str) -> Result<Option<Vec<Item>>, StoreError> {
    let mut q = Query::new(pk, "");
    q.limit = 25;
    let page = store.query(q).await?;
    Ok((!page.items.is_empty()).then_some(page.items))
}

/// Deletes `items` in one transaction (at most [`MAX_WRITE_ALL`]).
pub async fn delete_items(store: &dyn Store, items: Vec<Item>) -> Result<(), StoreError> {
    let deletes = items
        .into_iter()
        .map(|i| Write::Delete {
            key: i.key,
            cond: Cond::Any,
        })
        .collect();
    store.write_all(deletes).await
}
