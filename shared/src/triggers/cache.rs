//! What a process keeps of triggers: as ingest last read them, and their
//! transforms compiled.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Platform;
use crate::ports::StoreError;
use crate::transforms::Transform;
use crate::transforms::TransformError;
use crate::transforms::pool::Failed;

use super::*;

/// How long ingest may answer from a trigger it read before. An edit made in
/// this process drops the entry at once; one made elsewhere (another Lambda
/// function) is seen within this time.
pub const TRIGGER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Triggers as ingest last read them: reading and decoding the trigger was
/// the largest part of accepting a request.
#[derive(Default)]
pub struct TriggerCache {
    entries: Mutex<HashMap<String, Cached>>,
    /// Bumped by every local edit. A lookup caches what it read only if no
    /// edit happened while it was reading, so it cannot put back a trigger
    /// that an edit has just replaced.
    edits: std::sync::atomic::AtomicU64,
}

/// Triggers a process keeps in its cache at most.
pub(super) const CACHE_ENTRIES: usize = 10_000;

/// When it was read, and what: the trigger or its absence.
type Cached = (std::time::Instant, Option<std::sync::Arc<Trigger>>);

impl TriggerCache {
    pub(super) fn drop_entry(&self, id: &str) {
        self.edits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// The trigger as ingest sees it, at most `TRIGGER_CACHE_TTL` old. Unknown
/// ids are remembered too, so a flood of requests to a deleted trigger stays cheap.
pub async fn find_for_ingest(
    platform: &Platform,
    id: &crate::ids::TriggerId,
) -> Result<Option<std::sync::Arc<Trigger>>, StoreError> {
    let cache = platform.kept.get::<TriggerCache>();
    if let Some((at, found)) = cache
        .entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(id.as_str())
        && at.elapsed() < TRIGGER_CACHE_TTL
    {
        return Ok(found.clone());
    }
    let edits = cache.edits.load(std::sync::atomic::Ordering::SeqCst);
    let found = find(platform, id)
        .await?
        .map(|(t, _)| std::sync::Arc::new(t));
    let mut entries = cache
        .entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if edits != cache.edits.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(found); // an edit raced this read: answer it, but do not keep it
    }
    if entries.len() >= CACHE_ENTRIES {
        entries.retain(|_, (at, _)| at.elapsed() < TRIGGER_CACHE_TTL);
    }
    if entries.len() < CACHE_ENTRIES {
        entries.insert(id.to_string(), (std::time::Instant::now(), found.clone()));
    }
    Ok(found)
}

/// Compiled transforms of the triggers this process has applied, so a warm
/// process compiles each transform once. Keyed by trigger id and checked
/// against the source, so an edited transform is compiled again.
#[derive(Default)]
pub struct TransformCache(Mutex<Compiled>);

#[derive(Default)]
pub(super) struct Compiled {
    /// A transform that does not compile is kept too (an old one past
    /// today's limits, say), so that it is not compiled for every request.
    entries: HashMap<String, (String, Result<Transform, TransformError>, u64)>,
    /// What compiling the entries allocated: a bound on what they keep.
    bytes: u64,
}

/// Bounds memory (a 16 KiB transform keeps about 0.8 MB); past it the cache
/// starts again empty.
pub(super) const CACHE_BYTES: u64 = 64 << 20;

impl TransformCache {
    pub async fn get(
        &self,
        trigger_id: &str,
        source: &str,
    ) -> Result<Result<Transform, TransformError>, Failed> {
        if let Some((s, t, _)) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .get(trigger_id)
            && s == source
        {
            return Ok(t.clone());
        }
        let (compiled, bytes) = match Transform::compile_bounded(source.to_string()).await? {
            Ok((t, bytes)) => (Ok(t), bytes),
            Err(e) => (Err(e), 0),
        };
        let bytes = bytes + source.len() as u64;
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.bytes + bytes > CACHE_BYTES {
            cache.entries.clear();
            cache.bytes = 0;
        }
        if let Some((_, _, old)) = cache.entries.insert(
            trigger_id.to_string(),
            (source.to_string(), compiled.clone(), bytes),
        ) {
            cache.bytes -= old;
        }
        cache.bytes += bytes;
        Ok(compiled)
    }
}
