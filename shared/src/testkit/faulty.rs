//! A store that fails in one chosen way, over a working one: for tests of
//! what the code does when the store does not answer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::ports::{Cond, Item, Key, Page, Put, Query, Store, StoreError, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every call fails: a store that cannot be reached.
    Everything,
    /// Syncs fail, writes work: a disk that stopped taking fsyncs.
    Syncs,
    /// Puts fail.
    Puts,
    /// Puts through the deferred store (`Store::deferred`) fail.
    DeferredPuts,
    /// Puts of a key containing this text panic: a bug that one message
    /// runs into.
    Panics(&'static str),
    /// `Panics`, through the deferred store only (as applying writes).
    DeferredPanics(&'static str),
    /// The store is reopened between any two reads of its generation:
    /// writes answered but not yet durable may be gone each time.
    Reopens,
}

/// Reopens so far, for `Fault::Reopens`.
static REOPENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct Faulty(pub Arc<dyn Store>, pub Fault);

impl Faulty {
    fn fails(&self, on: Fault) -> Result<(), StoreError> {
        if self.1 == Fault::Everything || self.1 == on {
            return Err(StoreError::Backend(format!("injected fault: {on:?}")));
        }
        Ok(())
    }

    /// The faults of a put, alone or in a `write_all`.
    fn putting(&self, put: &Put) -> Result<(), StoreError> {
        if let Fault::Panics(marker) = self.1
            && (put.key.pk.contains(marker) || put.key.sk.contains(marker))
        {
            panic!("injected panic writing {}", put.key.sk);
        }
        self.fails(Fault::Puts)
    }
}

#[async_trait]
impl Store for Faulty {
    fn shared(&self) -> bool {
        self.0.shared()
    }
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.fails(Fault::Everything)?;
        self.0.get(key).await
    }
    async fn put(&self, put: Put) -> Result<u64, StoreError> {
        self.putting(&put)?;
        self.0.put(put).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        self.fails(Fault::Everything)?;
        self.0.delete(key, cond).await
    }
    async fn add(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        self.fails(Fault::Everything)?;
        self.0.add(key, delta, expires_at).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.fails(Fault::Everything)?;
        self.0.query(query).await
    }
    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.fails(Fault::Everything)?;
        for write in &writes {
            if let Write::Put(put) = write {
                self.putting(put)?;
            }
        }
        self.0.write_all(writes).await
    }
    fn deferred(&self) -> Option<Arc<dyn Store>> {
        let fault = match self.1 {
            Fault::DeferredPuts => Fault::Puts,
            Fault::DeferredPanics(marker) => Fault::Panics(marker),
            other => other,
        };
        Some(Arc::new(Faulty(self.0.deferred()?, fault)))
    }
    async fn sync(&self) -> Result<(), StoreError> {
        self.fails(Fault::Syncs)?;
        self.0.sync().await
    }
    fn trouble(&self) -> Option<String> {
        self.0.trouble()
    }
    fn generation(&self) -> u64 {
        let reopens = if self.1 == Fault::Reopens {
            REOPENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        } else {
            0
        };
        self.0.generation() + reopens
    }
    async fn sweep_expired(&self) -> Result<usize, StoreError> {
        self.fails(Fault::Everything)?;
        self.0.sweep_expired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Cond;

    /// A put fails alone and inside an all-or-nothing write; deletes do not.
    #[tokio::test]
    async fn failing_puts_fail_in_write_all_too() {
        let (platform, _dir) = crate::testkit::platform().await;
        let store = Faulty(platform.store.clone(), Fault::Puts);
        let put = || Put::new(crate::ports::Key::new("p", "s"), serde_json::json!({}));
        assert!(store.put(put()).await.is_err());
        assert!(store.write_all(vec![Write::Put(put())]).await.is_err());
        let delete = Write::Delete {
            key: crate::ports::Key::new("p", "s"),
            cond: Cond::Any,
        };
        store.write_all(vec![delete]).await.unwrap();
    }
}
