//! Work the domain does on any store: optimistic writes, and clearing a
//! partition page by page.

use super::{Cond, Item, Query, Store, StoreError, Write};
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
