//! Outbound webhooks (the campaign platform's webhooks, Mumara's): where
//! events published into Hookline go, and how.
//!
//! - `model.rs`, `validation.rs`, `storage.rs`: the webhook, its checks,
//!   and its item in the store;
//! - what a process keeps of an account's webhooks for matching events is
//!   here (`active`).
//!
//! The HTTP routes are in `http/webhooks.rs`.

mod model;
mod storage;
mod validation;

pub use model::*;
pub use storage::*;
pub use validation::{generate_secret, parse_sound, parse_url_field};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Platform;

/// How long a process matches events against webhooks it read before,
/// where other processes may change them (Lambda). One machine drops the
/// entry at every edit, so it is never stale there.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Webhooks of an account kept in memory at most; an account with more is
/// read page by page for each event.
pub const CACHE_MAX: usize = 1000;
/// Accounts whose webhooks a process keeps at most.
const CACHE_ACCOUNTS: usize = 10_000;

type Cached = (Instant, Option<Arc<Vec<Arc<Webhook>>>>);

/// An account's webhooks as last read, for matching events.
#[derive(Default)]
pub struct WebhookCache {
    entries: Mutex<HashMap<String, Cached>>,
    edits: std::sync::atomic::AtomicU64,
}

/// Drops what this process keeps of the account's webhooks (one changed).
pub(crate) fn forget(p: &Platform, account: &str) {
    let cache = p.kept.get::<WebhookCache>();
    cache
        .edits
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    cache
        .entries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(account);
}

/// All the account's webhooks when it has at most `CACHE_MAX` (read at most
/// `CACHE_TTL` ago, or since the last local edit); `None` when it has more.
pub async fn all_cached(
    p: &Platform,
    account: &str,
) -> Result<Option<Arc<Vec<Arc<Webhook>>>>, crate::error::Error> {
    let cache = p.kept.get::<WebhookCache>();
    let ttl = if p.store.shared() {
        CACHE_TTL
    } else {
        Duration::MAX
    };
    if let Some((at, found)) = cache
        .entries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(account)
        && at.elapsed() < ttl
    {
        return Ok(found.clone());
    }
    let edits = cache.edits.load(std::sync::atomic::Ordering::SeqCst);
    let (page, next) = page(p, account, CACHE_MAX, None).await?;
    let found = next
        .is_none()
        .then(|| Arc::new(page.into_iter().map(Arc::new).collect::<Vec<_>>()));
    let mut entries = cache.entries.lock().unwrap_or_else(PoisonError::into_inner);
    if edits == cache.edits.load(std::sync::atomic::Ordering::SeqCst) {
        if entries.len() >= CACHE_ACCOUNTS {
            entries.clear();
        }
        entries.insert(account.to_string(), (Instant::now(), found.clone()));
    }
    Ok(found)
}

/// The webhook as deliveries see it: from the cache when the account's
/// webhooks are there, else read.
pub async fn find_for_delivery(
    p: &Platform,
    account: &str,
    id: &crate::ids::WebhookId,
) -> Result<Option<Arc<Webhook>>, crate::error::Error> {
    if let Some(all) = all_cached(p, account).await? {
        match all.iter().find(|w| w.id == *id) {
            Some(w) => return Ok(Some(w.clone())),
            // Read since the last edit here: it is gone.
            None if !p.store.shared() => return Ok(None),
            // Made by another process since this one read them, perhaps.
            None => {}
        }
    }
    match get(p, account, id).await {
        Ok((w, _)) => Ok(Some(Arc::new(w))),
        Err(crate::error::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
