use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use std::ops::Bound;
use std::sync::Arc;

use super::codec::{self, ITEMS, Tables, compound};
use super::{Embedded, EmbeddedError};
use crate::ports::store::{
    Cond, Item, Key, Page, Put, Query, Store, StoreError, Write, check_key, check_shape,
    check_size, check_write_all, cursor, expiry_secs, is_live,
};

pub struct EmbeddedStore {
    db: Arc<Embedded>,
    /// Whether a write answers only once it is on disk (see `Store::deferred`).
    durable: bool,
}

impl EmbeddedStore {
    pub fn new(db: Arc<Embedded>) -> Self {
        Self { db, durable: true }
    }
}

impl From<EmbeddedError> for StoreError {
    fn from(e: EmbeddedError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

fn item_key(key: &Key) -> Result<Vec<u8>, StoreError> {
    if key.pk.contains('\0') || key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Backend(format!(
            "invalid key {:?}/{:?}: empty or contains NUL",
            key.pk, key.sk
        )));
    }
    Ok(compound(&key.pk, key.sk.as_bytes()))
}

fn decode(key: Key, bytes: &[u8]) -> Result<Item, StoreError> {
    let stored = codec::decode_item(bytes);
    Ok(Item {
        key,
        body: serde_json::from_slice(stored.body)
            .map_err(|e| StoreError::Backend(format!("corrupt item: {e}")))?,
        version: stored.version,
        expires_at: stored
            .expires_at
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
    })
}

/// The stored version, and whether the item is live.
fn current(
    t: &Tables<'_>,
    key: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<(u64, bool)>, EmbeddedError> {
    let found = t.items.get(key)?;
    Ok(found.map(|v| {
        let s = codec::decode_item(v.value());
        (s.version, is_live(s.expires_at, now))
    }))
}

fn holds(cond: Cond, current: Option<(u64, bool)>) -> bool {
    match (cond, current) {
        (Cond::Any, _) => true,
        (Cond::Absent, None | Some((_, false))) => true,
        (Cond::Absent, Some((_, true))) => false,
        (Cond::Version(v), Some((have, true))) => v == have,
        (Cond::Version(_), _) => false,
    }
}

struct Prepared {
    key: Vec<u8>,
    op: PreparedOp,
    cond: Cond,
}

enum PreparedOp {
    Put {
        body: Vec<u8>,
        expires_at: Option<i64>,
    },
    Delete,
}

fn prepare(write: Write) -> Result<Prepared, StoreError> {
    Ok(match write {
        Write::Put(put) => {
            check_key(&put.key)?;
            check_shape(&put.body)?;
            let body =
                serde_json::to_vec(&put.body).map_err(|e| StoreError::Backend(e.to_string()))?;
            check_size(body.len())?;
            Prepared {
                key: item_key(&put.key)?,
                op: PreparedOp::Put {
                    body,
                    expires_at: expiry_secs(put.expires_at),
                },
                cond: put.cond,
            }
        }
        Write::Delete { key, cond } => Prepared {
            key: item_key(&key)?,
            op: PreparedOp::Delete,
            cond,
        },
    })
}

/// Checks every condition, then applies every write: all or nothing. Answers
/// the new version of each write (0 for deletes).
fn apply(
    t: &mut Tables<'_>,
    writes: &[Prepared],
    now: DateTime<Utc>,
) -> Result<Result<Vec<u64>, StoreError>, EmbeddedError> {
    let mut versions = Vec::with_capacity(writes.len());
    for w in writes {
        let cur = current(t, &w.key, now)?;
        if !holds(w.cond, cur) {
            return Ok(Err(StoreError::Conflict));
        }
        versions.push(cur.map_or(0, |(v, _)| v) + 1);
    }
    for (w, version) in writes.iter().zip(versions.iter_mut()) {
        let table = &mut t.items;
        match &w.op {
            PreparedOp::Put { body, expires_at } => {
                table.insert(
                    w.key.as_slice(),
                    codec::encode_item(*version, *expires_at, body).as_slice(),
                )?;
                if let Some(at) = expires_at {
                    t.expiry
                        .insert(codec::expiry_key(*at, &w.key).as_slice(), ())?;
                }
            }
            PreparedOp::Delete => {
                table.remove(w.key.as_slice())?;
                *version = 0;
            }
        }
    }
    Ok(Ok(versions))
}

/// Expired items a sweep removes in one commit at most: small enough that
/// the writes waiting behind it wait little.
const SWEEP_BATCH: usize = 500;

impl EmbeddedStore {
    async fn sweep(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let now = self.db.clock.now().timestamp();
            let (gone, more) = self.db.write(true, move |t| sweep_batch(t, now)).await??;
            removed += gone;
            if !more {
                return Ok(removed);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// One batch of `sweep_expired`: answers how many items went, and whether
/// more expired entries remain.
fn sweep_batch(
    t: &mut Tables<'_>,
    now: i64,
) -> Result<Result<(usize, bool), StoreError>, EmbeddedError> {
    // Entries strictly before `now + 1` in time: expired at `now` or earlier.
    let end = codec::expiry_key(now.saturating_add(1), &[]);
    let due: Vec<Vec<u8>> = t
        .expiry
        .range::<&[u8]>(..end.as_slice())?
        .take(SWEEP_BATCH + 1)
        .map(|e| e.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<_, _>>()?;
    let more = due.len() > SWEEP_BATCH;
    let mut gone = 0;
    for entry in due.iter().take(SWEEP_BATCH) {
        let (at, item) = codec::decode_expiry_key(entry);
        // The item may have been rewritten with a later expiry, or none.
        let expired = t
            .items
            .get(item)?
            .is_some_and(|v| codec::decode_item(v.value()).expires_at == Some(at));
        if expired {
            t.items.remove(item)?;
            gone += 1;
        }
        t.expiry.remove(entry.as_slice())?;
    }
    Ok(Ok((gone, more)))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let k = item_key(key)?;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ITEMS).map_err(EmbeddedError::from)?;
        let Some(v) = table.get(k.as_slice())? else {
            return Ok(None);
        };
        let bytes = v.value();
        if !is_live(codec::decode_item(bytes).expires_at, self.db.clock.now()) {
            return Ok(None);
        }
        decode(key.clone(), bytes).map(Some)
    }

    async fn put(&self, put: Put) -> Result<u64, StoreError> {
        let prepared = prepare(Write::Put(put))?;
        let now = self.db.clock.now();
        let versions = self
            .db
            .write(self.durable, move |t| {
                apply(t, std::slice::from_ref(&prepared), now)
            })
            .await??;
        Ok(versions[0])
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        let prepared = prepare(Write::Delete {
            key: key.clone(),
            cond,
        })?;
        let now = self.db.clock.now();
        self.db
            .write(self.durable, move |t| {
                apply(t, std::slice::from_ref(&prepared), now)
            })
            .await??;
        Ok(())
    }

    async fn add(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        let k = item_key(key)?;
        let now = self.db.clock.now();
        let exp = expiry_secs(expires_at);
        let n = self
            .db
            .write(self.durable, move |t| {
                let table = &mut t.counters;
                let (n, old_exp) = match table.get(k.as_slice())? {
                    Some(v) => {
                        let (n, e) = codec::decode_counter(v.value());
                        if is_live(e, now) { (n, e) } else { (0, None) }
                    }
                    None => (0, None),
                };
                let n = n.saturating_add(delta);
                table.insert(
                    k.as_slice(),
                    codec::encode_counter(n, exp.or(old_exp)).as_slice(),
                )?;
                Ok(Ok::<_, StoreError>(n))
            })
            .await??;
        Ok(n)
    }

    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let after = q
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, &q.pk, &q.sk_prefix))
            .transpose()?;
        let limit = q.limit.max(1);
        let prefix = compound(&q.pk, q.sk_prefix.as_bytes());
        // Sort keys are UTF-8, which never holds 0xff: this bounds the prefix.
        let mut prefix_end = prefix.clone();
        prefix_end.push(0xff);
        let after_key = after.as_ref().map(|sk| compound(&q.pk, sk.as_bytes()));
        let (lo, hi) = match (&after_key, q.reverse) {
            (Some(a), false) => (
                Bound::Excluded(a.as_slice()),
                Bound::Excluded(prefix_end.as_slice()),
            ),
            (Some(a), true) => (
                Bound::Included(prefix.as_slice()),
                Bound::Excluded(a.as_slice()),
            ),
            (None, _) => (
                Bound::Included(prefix.as_slice()),
                Bound::Excluded(prefix_end.as_slice()),
            ),
        };
        let now = self.db.clock.now();
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ITEMS).map_err(EmbeddedError::from)?;
        let range = table.range::<&[u8]>((lo, hi))?;
        let iter: Box<dyn Iterator<Item = _>> = if q.reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut items = Vec::new();
        let mut more = false;
        for entry in iter {
            let (k, v) = entry?;
            let bytes = v.value();
            if !is_live(codec::decode_item(bytes).expires_at, now) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            let sk = std::str::from_utf8(&k.value()[q.pk.len() + 1..])
                .map_err(|_| StoreError::Backend("non-UTF-8 sort key".into()))?;
            items.push(decode(Key::new(q.pk.clone(), sk), bytes)?);
        }
        let next_cursor = if more {
            items
                .last()
                .map(|i: &Item| cursor::encode(&q.pk, &i.key.sk))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_write_all(&writes)?;
        let prepared = writes
            .into_iter()
            .map(prepare)
            .collect::<Result<Vec<_>, _>>()?;
        let now = self.db.clock.now();
        self.db
            .write(self.durable, move |t| apply(t, &prepared, now))
            .await??;
        Ok(())
    }

    /// A batch per commit, so that the writes waiting behind it wait little.
    async fn sweep_expired(&self) -> Result<usize, StoreError> {
        self.sweep().await
    }

    fn deferred(&self) -> Option<Arc<dyn Store>> {
        Some(Arc::new(Self {
            db: self.db.clone(),
            durable: false,
        }))
    }

    fn trouble(&self) -> Option<String> {
        self.db.trouble()
    }

    fn generation(&self) -> u64 {
        self.db.generation()
    }

    /// The next durable commit makes the deferred commits before it durable
    /// too; the writer makes one when it runs out of work, or soon after.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(self.db.sync().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Clock, TestClock};
    use std::time::Duration;

    /// Twelve simulated days of a steady load whose items expire after two:
    /// swept, the file stops growing once the first items expire; unswept,
    /// it grows all along. Answers the file's size at the end of each day.
    async fn days_of_load(sweep: bool) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let clock = TestClock::at(chrono::Utc::now());
        let db = Embedded::open(&path, Arc::new(clock.clone())).unwrap();
        let store = EmbeddedStore::new(db);
        let body = serde_json::json!({"payload": "x".repeat(1000)});
        let mut sizes = Vec::new();
        for day in 0..12 {
            for quarter in 0..4 {
                let expires = clock.now() + chrono::Duration::days(2);
                let writes: Vec<_> = (0..100)
                    .map(|i| {
                        Write::Put(
                            Put::new(
                                Key::new("log", format!("d{day:02}q{quarter}i{i:03}")),
                                body.clone(),
                            )
                            .expires(expires),
                        )
                    })
                    .collect();
                for chunk in writes.chunks(25) {
                    store.write_all(chunk.to_vec()).await.unwrap();
                }
                clock.advance(Duration::from_secs(6 * 3600));
                if sweep {
                    store.sweep_expired().await.unwrap();
                }
            }
            sizes.push(std::fs::metadata(&path).unwrap().len());
        }
        sizes
    }

    #[tokio::test]
    async fn a_steady_load_reaches_a_steady_size_once_expired_items_are_swept() {
        let swept = days_of_load(true).await;
        let kept = days_of_load(false).await;
        // redb grows its file in doubling steps. Two days of items are live
        // at once: swept, the file has its size by day 4 and keeps it;
        // unswept, it has grown past that size by the end.
        assert_eq!(
            swept[11], swept[4],
            "swept, the file still grows: {swept:?}"
        );
        assert!(
            kept[11] >= swept[11] * 3,
            "unswept it should grow well past it (or the test shows nothing): {kept:?}"
        );
    }

    /// A file written before the expiry index gets one when it is opened, so
    /// that what it holds is swept too.
    #[tokio::test]
    async fn a_file_from_before_the_index_is_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let clock = TestClock::at(chrono::Utc::now());
        let at = (clock.now() + chrono::Duration::seconds(10)).timestamp();
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut items = txn.open_table(ITEMS).unwrap();
                let k = item_key(&Key::new("p", "old")).unwrap();
                let v = codec::encode_item(1, Some(at), b"{}");
                items.insert(k.as_slice(), v.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let db = Embedded::open(&path, Arc::new(clock.clone())).unwrap();
        let store = EmbeddedStore::new(db);
        assert!(store.get(&Key::new("p", "old")).await.unwrap().is_some());
        clock.advance(Duration::from_secs(11));
        assert_eq!(store.sweep_expired().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_sweep_removes_only_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at(chrono::Utc::now());
        let db = Embedded::open(&dir.path().join("db.redb"), Arc::new(clock.clone())).unwrap();
        let store = EmbeddedStore::new(db);
        let soon = clock.now() + chrono::Duration::seconds(10);
        let later = clock.now() + chrono::Duration::seconds(100);
        store
            .put(Put::new(Key::new("p", "soon"), serde_json::json!(1)).expires(soon))
            .await
            .unwrap();
        store
            .put(Put::new(Key::new("p", "kept"), serde_json::json!(2)))
            .await
            .unwrap();
        // Written to expire soon, then rewritten to expire later: kept.
        store
            .put(Put::new(Key::new("p", "moved"), serde_json::json!(3)).expires(soon))
            .await
            .unwrap();
        store
            .put(Put::new(Key::new("p", "moved"), serde_json::json!(4)).expires(later))
            .await
            .unwrap();
        assert_eq!(store.sweep_expired().await.unwrap(), 0);
        clock.advance(Duration::from_secs(11));
        assert_eq!(store.sweep_expired().await.unwrap(), 1);
        let raw = |k: &str| {
            let txn = store.db.begin_read().unwrap();
            let table = txn.open_table(ITEMS).unwrap();
            table
                .get(item_key(&Key::new("p", k)).unwrap().as_slice())
                .unwrap()
                .is_some()
        };
        assert!(!raw("soon"), "the expired item is gone from the file");
        assert!(raw("kept") && raw("moved"));
        clock.advance(Duration::from_secs(100));
        assert_eq!(store.sweep_expired().await.unwrap(), 1);
        assert!(!raw("moved"));
    }
}
