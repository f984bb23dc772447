//! The contract suite against the embedded (redb) adapters.

use hookline::adapters::embedded::{Embedded, EmbeddedQueue, EmbeddedStore};
use hookline::ports::{Queue, Store, SystemClock, TestClock};
use std::sync::Arc;
use tempfile::TempDir;

async fn store(clock: TestClock) -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Embedded::open(&dir.path().join("hookline.redb"), Arc::new(clock)).unwrap();
    (Arc::new(EmbeddedStore::new(db)), dir)
}

async fn queue(max_receives: u32) -> (Arc<dyn Queue>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Embedded::open(&dir.path().join("hookline.redb"), Arc::new(SystemClock)).unwrap();
    (Arc::new(EmbeddedQueue::new(db, "apply", max_receives)), dir)
}

hookline::contract_tests!(store, queue);
