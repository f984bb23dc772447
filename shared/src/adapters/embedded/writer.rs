use redb::{Database, Durability};

use super::codec::Tables;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::ports::Clock;

/// The most writes one commit takes; bounds the latency a large group adds.
const MAX_GROUP: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("embedded database: {0}")]
    Db(String),
    #[error("the embedded database writer has stopped")]
    Stopped,
}

macro_rules! db_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for EmbeddedError {
            fn from(e: $t) -> Self {
                EmbeddedError::Db(e.to_string())
            }
        }
    )*};
}
db_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A write to run inside the group's transaction. It must check its own
/// conditions before it changes anything, so that a write refused by its
/// condition leaves the other writes of the group untouched. It answers the
/// completion to call once the group's commit is known. Given no transaction
/// (the group failed before it ran), it answers the caller with that error.
type Completion = Box<dyn FnOnce(Result<(), EmbeddedError>) + Send>;
type Job = Box<
    dyn for<'a, 't> FnOnce(Result<&'a mut Tables<'t>, String>) -> Result<Completion, EmbeddedError>
        + Send,
>;

enum Request {
    Write {
        job: Job,
        durable: bool,
    },
    /// Answered once everything committed before it is durable.
    Sync(oneshot::Sender<Result<(), EmbeddedError>>),
}

/// How long a sync may wait for the writer to run out of work before it
/// makes a durable commit anyway. Meanwhile commits need no fsync, so a
/// busy writer is not stopped by one for every batch the apply queue syncs.
const SYNC_WINDOW: Duration = Duration::from_millis(5);

/// One open database file, shared by the store and every queue on it.
pub struct Embedded {
    pub(super) db: Arc<Database>,
    pub(super) clock: Arc<dyn Clock>,
    tx: Option<SyncSender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Embedded {
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, EmbeddedError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| EmbeddedError::Db(e.to_string()))?;
        }
        Self::on(Database::create(path)?, clock)
    }

    /// The database on `backend` (a test's disk that can lose power, say).
    pub fn open_on(
        backend: impl redb::StorageBackend,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        Self::on(redb::Builder::new().create_with_backend(backend)?, clock)
    }

    fn on(db: Database, clock: Arc<dyn Clock>) -> Result<Arc<Self>, EmbeddedError> {
        let db = Arc::new(db);
        super::codec::create_tables(&db)?;
        let (tx, rx) = sync_channel::<Request>(MAX_GROUP * 4);
        let writer_db = db.clone();
        let thread = std::thread::Builder::new()
            .name("hookline-writer".into())
            .spawn(move || write_loop(&writer_db, rx))
            .map_err(|e| EmbeddedError::Db(e.to_string()))?;
        Ok(Arc::new(Self {
            db,
            clock,
            tx: Some(tx),
            thread: Some(thread),
        }))
    }

    /// Runs `f` in the next group commit and answers its result once the
    /// commit is done (durable on disk when `durable`).
    pub(super) async fn write<R, E, F>(
        &self,
        durable: bool,
        f: F,
    ) -> Result<Result<R, E>, EmbeddedError>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: for<'a, 't> FnOnce(&'a mut Tables<'t>) -> Result<Result<R, E>, EmbeddedError>
            + Send
            + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel();
        let job: Job = Box::new(move |txn| {
            let tables = match txn {
                Ok(tables) => tables,
                Err(msg) => {
                    let _ = done_tx.send(Err(EmbeddedError::Db(msg)));
                    return Err(EmbeddedError::Stopped);
                }
            };
            // A write that panics answers its caller with the panic, and
            // fails its group as a storage error does (it may have written
            // part of itself into the transaction).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tables)))
                .unwrap_or_else(|p| {
                    Err(EmbeddedError::Db(format!(
                        "a write panicked: {}",
                        crate::transforms::pool::panic_message(&*p)
                    )))
                });
            let out = match ran {
                Ok(out) => out,
                Err(e) => {
                    let msg = e.to_string();
                    let _ = done_tx.send(Err(e));
                    return Err(EmbeddedError::Db(msg));
                }
            };
            Ok(Box::new(move |committed: Result<(), EmbeddedError>| {
                let _ = done_tx.send(committed.map(|()| out));
            }) as Completion)
        });
        self.send(Request::Write { job, durable }).await?;
        done_rx.await.map_err(|_| EmbeddedError::Stopped)?
    }

    /// Answers once every write answered before it is durable, deferred ones
    /// included.
    pub(super) async fn sync(&self) -> Result<(), EmbeddedError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.send(Request::Sync(done_tx)).await?;
        done_rx.await.map_err(|_| EmbeddedError::Stopped)?
    }

    async fn send(&self, request: Request) -> Result<(), EmbeddedError> {
        let tx = self.tx.as_ref().ok_or(EmbeddedError::Stopped)?.clone();
        // A full channel means the writer is behind: wait off the async threads.
        match tx.try_send(request) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(request)) => {
                tokio::task::spawn_blocking(move || tx.send(request))
                    .await
                    .map_err(|_| EmbeddedError::Stopped)?
                    .map_err(|_| EmbeddedError::Stopped)?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(EmbeddedError::Stopped);
            }
        }
        Ok(())
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and stop.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(db: &Database, rx: Receiver<Request>) {
    let mut syncs: Vec<oneshot::Sender<Result<(), EmbeddedError>>> = Vec::new();
    // When the oldest of `syncs` arrived.
    let mut since = Instant::now();
    // Whether a commit since the last durable one is not durable yet.
    let mut unsynced = false;
    loop {
        // A writer with syncs waiting never blocks: out of work, it commits.
        let first = if syncs.is_empty() {
            match rx.recv() {
                Ok(request) => Some(request),
                Err(_) => break,
            }
        } else {
            match rx.try_recv() {
                Ok(request) => Some(request),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break,
            }
        };
        let idle = first.is_none();
        let mut jobs = Vec::new();
        let mut durable = false;
        let mut next = first;
        while let Some(request) = next {
            match request {
                Request::Write { job, durable: d } => {
                    durable |= d;
                    jobs.push(job);
                }
                Request::Sync(done) => {
                    if syncs.is_empty() {
                        since = Instant::now();
                    }
                    syncs.push(done);
                }
            }
            next = if jobs.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        // Syncs wait while the writer has other work, up to their window.
        durable |= !syncs.is_empty() && (idle || since.elapsed() >= SYNC_WINDOW);
        if jobs.is_empty() && !durable {
            continue;
        }
        let committed = commit_group(db, jobs, durable);
        if durable {
            for done in syncs.drain(..) {
                let _ = done.send(committed.clone().map_err(EmbeddedError::Db));
            }
        }
        unsynced = !durable || committed.is_err();
    }
    // Closing makes what was left unsynced durable.
    if unsynced {
        let _ = commit_group(db, Vec::new(), true);
    }
}

/// Runs the jobs in one transaction and answers how its commit went.
fn commit_group(db: &Database, group: Vec<Job>, durable: bool) -> Result<(), String> {
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return Err(fail_all(group.into_iter(), &e.to_string())),
    };
    // Writes that need no sync (receipts, deferred writes) are made durable by
    // the next durable commit.
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    if let Err(e) = txn.set_durability(durability) {
        return Err(fail_all(group.into_iter(), &e.to_string()));
    }
    let mut completions = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    let failure = match Tables::open(&txn) {
        Err(e) => Some(e.to_string()),
        Ok(mut tables) => {
            let mut failure = None;
            for job in jobs.by_ref() {
                // A job that panics (a bug, a corrupt item) fails its group
                // like a storage error, and the writer goes on serving.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(&mut tables))));
                match ran {
                    Ok(Ok(c)) => completions.push(c),
                    Ok(Err(e)) => {
                        failure = Some(e.to_string());
                        break;
                    }
                    Err(p) => {
                        failure = Some(format!(
                            "a write panicked: {}",
                            crate::transforms::pool::panic_message(&*p)
                        ));
                        break;
                    }
                }
            }
            failure
        }
    };
    if let Some(msg) = failure {
        // A storage error part-way leaves the transaction in an unknown
        // state: abort it and fail every write of the group.
        let _ = txn.abort();
        for c in completions {
            c(Err(EmbeddedError::Db(msg.clone())));
        }
        return Err(fail_all(jobs, &msg));
    }
    let committed = txn.commit().map_err(|e| e.to_string());
    for c in completions {
        c(committed.clone().map_err(EmbeddedError::Db));
    }
    committed
}

/// Answers the jobs that error, and the error.
fn fail_all(jobs: impl Iterator<Item = Job>, msg: &str) -> String {
    tracing::error!(error = msg, "embedded write group failed");
    for job in jobs {
        let _ = job(Err(msg.to_string()));
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::EmbeddedStore;
    use crate::ports::{Key, Put, Store, TestClock};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A write that panics fails its group, and the writer serves the next.
    #[tokio::test]
    async fn a_write_that_panics_fails_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            Embedded::open(&dir.path().join("db.redb"), Arc::new(TestClock::default())).unwrap();
        let failed = db
            .write(true, |_tables| -> Result<Result<(), ()>, EmbeddedError> {
                panic!("a bug in a write")
            })
            .await;
        let err = failed.expect_err("the write failed").to_string();
        assert!(err.contains("a write panicked: a bug in a write"), "{err}");
        let store = EmbeddedStore::new(db);
        store
            .put(Put::new(
                Key::new("p", "s"),
                serde_json::json!({"ok": true}),
            ))
            .await
            .unwrap();
        assert!(store.get(&Key::new("p", "s")).await.unwrap().is_some());
    }

    /// A writer kept busy by deferred writes still answers every sync, each
    /// within its window plus a commit (2 s allows for a loaded machine),
    /// and the writes go on meanwhile: a sync starves neither side.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn syncs_are_answered_while_the_writer_stays_busy() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            Embedded::open(&dir.path().join("db.redb"), Arc::new(TestClock::default())).unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db));
        let deferred = store.deferred().expect("the embedded store defers");
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let (deferred, stop) = (deferred.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = Key::new("busy", format!("{w}-{n}"));
                        deferred
                            .put(Put::new(key, serde_json::json!({"n": n})))
                            .await
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for _ in 0..20 {
            tokio::time::timeout(Duration::from_secs(2), deferred.sync())
                .await
                .expect("a sync answered while the writer is busy")
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let mut written = 0;
        for w in writers {
            written += w.await.unwrap();
        }
        assert!(written > 0, "the writes went on while syncs waited");
        // Idle again: a sync is answered at once.
        tokio::time::timeout(Duration::from_secs(2), store.sync())
            .await
            .expect("a sync answered by an idle writer")
            .unwrap();
    }
}
