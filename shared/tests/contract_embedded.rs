//! The contract suite against the embedded adapters (redb store, log queue).

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
    let log = dir.path().join("apply.log");
    let queue = EmbeddedQueue::open(&log, max_receives, Arc::new(SystemClock)).unwrap();
    (Arc::new(queue), dir)
}

hookline::contract_tests!(store, queue);
