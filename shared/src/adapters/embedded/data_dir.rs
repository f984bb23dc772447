//! A data directory: the store's file and the apply queue's log, opened
//! together by one process, and copied together by a backup.

use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::codec::{COUNTERS, EXPIRY, ITEMS};
use super::{Embedded, EmbeddedError, EmbeddedQueue, import_legacy};
use crate::Platform;
use crate::config::Settings;
use crate::platform::APPLY_MAX_RECEIVES;
use crate::ports::Clock;

/// The store's file in a data directory.
pub const STORE_FILE: &str = "hookline.redb";
/// The apply queue's log in a data directory.
pub const APPLY_LOG: &str = "queues/apply.log";
/// The delivery queue's log in a data directory.
pub const DELIVERY_LOG: &str = "queues/delivery.log";
/// The campaign queue's log in a data directory.
pub const CAMPAIGN_LOG: &str = "queues/campaigns.log";
/// Where a backup writes before it is whole; a data directory holding one
/// is a backup that did not finish.
const INCOMPLETE: &str = ".incomplete";

pub struct DataDir {
    pub path: PathBuf,
    pub db: Arc<Embedded>,
    pub apply: Arc<EmbeddedQueue>,
    pub delivery: Arc<EmbeddedQueue>,
    pub campaigns: Arc<EmbeddedQueue>,
}

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    /// Items, counters and index entries of the store.
    pub entries: u64,
    /// Messages of the queues (and their dead letters).
    pub messages: usize,
}

/// Entries a backup writes per transaction of the copy.
const COPY_BATCH: usize = 10_000;

/// The platform on the data directory at `path` (opened, or created).
pub fn platform(
    path: &Path,
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Platform>, EmbeddedError> {
    let data = DataDir::open(path, APPLY_MAX_RECEIVES, clock.clone())?;
    Ok(data.platform(settings, clock))
}

impl DataDir {
    /// The platform on this data directory.
    pub fn platform(&self, settings: Settings, clock: Arc<dyn Clock>) -> Arc<Platform> {
        let store = Arc::new(super::EmbeddedStore::new(self.db.clone()));
        let queues = crate::platform::Queues {
            apply: self.apply.clone(),
            delivery: self.delivery.clone(),
            campaigns: self.campaigns.clone(),
        };
        Platform::new(store, queues, clock, settings)
    }

    /// Opens (or creates) the data directory at `path`; one process at a
    /// time. An apply message is dead-lettered after `max_receives`.
    pub fn open(
        path: &Path,
        max_receives: u32,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EmbeddedError> {
        if path.join(INCOMPLETE).exists() {
            return Err(EmbeddedError::Db(format!(
                "{} holds a backup that did not finish; delete it and back up again",
                path.display()
            )));
        }
        let db = Embedded::open(&path.join(STORE_FILE), clock.clone())?;
        let apply_log = path.join(APPLY_LOG);
        import_legacy(&db, "apply", &apply_log)?;
        let apply = EmbeddedQueue::open(&apply_log, max_receives, clock.clone())?;
        let delivery = EmbeddedQueue::open(
            &path.join(DELIVERY_LOG),
            crate::platform::DELIVERY_MAX_RECEIVES,
            clock.clone(),
        )?;
        let campaigns = EmbeddedQueue::open(
            &path.join(CAMPAIGN_LOG),
            crate::platform::CAMPAIGN_MAX_RECEIVES,
            clock,
        )?;
        Ok(Self {
            path: path.to_path_buf(),
            db,
            apply: Arc::new(apply),
            delivery: Arc::new(delivery),
            campaigns: Arc::new(campaigns),
        })
    }

    /// Copies the data directory, while it serves, into `to` (new, or an
    /// empty directory), as a data directory `open` takes. The queue is
    /// copied first, then the store as one snapshot: a request accepted
    /// before the backup began is in the queue's copy, or was applied and
    /// left the queue before it, its writes made durable first and so in
    /// the store's later snapshot. One may be in both; applying a request
    /// again has the effect of once. A failed backup removes what it wrote.
    pub fn backup(&self, to: &Path) -> Result<Copied, String> {
        match std::fs::read_dir(to) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(format!(
                        "{} is not empty: a backup goes into a new or empty directory",
                        to.display()
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", to.display())),
        }
        // Written aside first: a backup cut short (the process stopped) is
        // never taken for a whole one (`open` refuses the directory).
        let partial = to.join(INCOMPLETE);
        std::fs::create_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        let copied = (|| {
            let messages = self
                .apply
                .copy_to(&partial.join(APPLY_LOG))
                .map_err(|e| format!("copying the apply queue: {e}"))?
                + self
                    .delivery
                    .copy_to(&partial.join(DELIVERY_LOG))
                    .map_err(|e| format!("copying the delivery queue: {e}"))?
                + self
                    .campaigns
                    .copy_to(&partial.join(CAMPAIGN_LOG))
                    .map_err(|e| format!("copying the campaign queue: {e}"))?;
            let entries = self
                .db
                .copy_to(&partial.join(STORE_FILE))
                .map_err(|e| format!("copying the store: {e}"))?;
            let io = |e: std::io::Error| format!("finishing the backup in {}: {e}", to.display());
            std::fs::rename(partial.join(STORE_FILE), to.join(STORE_FILE)).map_err(io)?;
            std::fs::rename(partial.join("queues"), to.join("queues")).map_err(io)?;
            sync_dir(to).map_err(io)?;
            std::fs::remove_dir(&partial).map_err(io)?;
            sync_dir(to).map_err(io)?;
            if let Some(parent) = to.parent() {
                sync_dir(parent).map_err(io)?;
            }
            Ok(Copied { entries, messages })
        })();
        if copied.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        copied
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Embedded {
    /// Writes one snapshot of every table into a new database file at
    /// `path`; answers how many entries it holds. Writes go on meanwhile.
    pub fn copy_to(&self, path: &Path) -> Result<u64, EmbeddedError> {
        if path.exists() {
            return Err(EmbeddedError::Db(format!("{} exists", path.display())));
        }
        let read = self.begin_read()?;
        let target = Database::create(path)?;
        let mut copied = 0;
        for table in [ITEMS, COUNTERS] {
            copied += copy_table(&read, &target, table, |t, k, v: &[u8]| {
                t.insert(k, v).map(drop)
            })?;
        }
        copied += copy_table(&read, &target, EXPIRY, |t, k, _: ()| {
            t.insert(k, ()).map(drop)
        })?;
        // The batches were committed without syncs: one durable commit.
        let mut txn = target.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.commit()?;
        Ok(copied)
    }
}

/// Copies `table` from `read` into `target`, in batches.
fn copy_table<V: redb::Value + 'static>(
    read: &redb::ReadTransaction,
    target: &Database,
    table: TableDefinition<&'static [u8], V>,
    insert: impl Fn(
        &mut redb::Table<'_, &'static [u8], V>,
        &[u8],
        V::SelfType<'_>,
    ) -> Result<(), redb::StorageError>,
) -> Result<u64, EmbeddedError> {
    let source = match read.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut entries = source.iter()?.peekable();
    let mut copied = 0;
    loop {
        let mut txn = target.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut out = txn.open_table(table)?;
            for _ in 0..COPY_BATCH {
                let Some(entry) = entries.next() else { break };
                let (k, v) = entry?;
                insert(&mut out, k.value(), v.value())?;
                copied += 1;
            }
        }
        txn.commit()?;
        if entries.peek().is_none() {
            return Ok(copied);
        }
    }
}
