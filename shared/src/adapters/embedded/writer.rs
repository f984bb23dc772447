use redb::{Database, Durability, ReadableDatabase};

use super::codec::Tables;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
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
    #[error("another process has the data directory open")]
    InUse,
}

impl From<redb::DatabaseError> for EmbeddedError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => EmbeddedError::InUse,
            e => EmbeddedError::Db(e.to_string()),
        }
    }
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
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A write to run inside the group's transaction. It must check its own
/// conditions before it changes anything, so that a write refused by its
/// condition leaves the other writes of the group untouched. It answers the
/// completion to call once the group's commit is known. Given no transaction
/// (the group failed before it ran), it answers the caller with that error.
type Completion = Box<dyn FnOnce(Result<(), EmbeddedError>) + Send>;
type Job = Box<
    dyn for<'a, 't> FnOnce(Result<&'a mut Tables<'t>, String>) -> Result<Completion, JobFailed>
        + Send,
>;

/// A job that failed: why, and how to answer its caller (once the group's
/// failure has been noted, so that the caller hears of the store's trouble
/// by the time it hears of its failed write).
struct JobFailed {
    error: String,
    answer: Completion,
}

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

/// Opens the database: creating it the first time (`true`), and again
/// after a write failed (redb then fails every later call until it is
/// reopened), when the file must still be there.
type Opener = Box<dyn FnMut(bool) -> Result<Database, redb::DatabaseError> + Send>;

/// How often a database that failed a write is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// What the writer and the readers share.
#[derive(Default)]
struct Current {
    /// The open database; none while the writer reopens it.
    db: RwLock<Option<Arc<Database>>>,
    /// Why writes fail, while they do.
    trouble: Mutex<Option<String>>,
    /// Bumped by each reopen: writes answered but not yet durable before it
    /// may be gone.
    generation: AtomicU64,
}

/// One open database file, shared by the store and every queue on it.
pub struct Embedded {
    current: Arc<Current>,
    pub(super) clock: Arc<dyn Clock>,
    tx: Option<SyncSender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Embedded {
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, EmbeddedError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| EmbeddedError::Db(e.to_string()))?;
        }
        let file = path.to_path_buf();
        let open: Opener = Box::new(move |create| {
            if create {
                Database::create(&file)
            } else {
                Database::open(&file)
            }
        });
        Self::on(open, path.parent().map(Path::to_path_buf), clock)
    }

    /// The database on the backends `backend` makes (a test's disk that can
    /// lose power or fill up, say).
    pub fn open_on<B: redb::StorageBackend>(
        mut backend: impl FnMut() -> B + Send + 'static,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        Self::on(
            Box::new(move |_| redb::Builder::new().create_with_backend(backend())),
            None,
            clock,
        )
    }

    /// The database `open` opens, on the filesystem of `room` (checked for
    /// free space before a reopen), if it has one.
    fn on(
        mut open: Opener,
        room: Option<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        let db = Arc::new(open(true)?);
        super::codec::create_tables(&db)?;
        let current = Arc::new(Current::default());
        *current.db.write().unwrap_or_else(PoisonError::into_inner) = Some(db.clone());
        let (tx, rx) = sync_channel::<Request>(MAX_GROUP * 4);
        let writer = Writer {
            open,
            room,
            noted: None,
            current: current.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("hookline-writer".into())
            .spawn(move || write_loop(writer, db, rx))
            .map_err(|e| EmbeddedError::Db(e.to_string()))?;
        Ok(Arc::new(Self {
            current,
            clock,
            tx: Some(tx),
            thread: Some(thread),
        }))
    }

    /// The open database, unless it is being reopened after a failed write.
    pub(super) fn database(&self) -> Result<Arc<Database>, EmbeddedError> {
        let db = self
            .current
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        db.ok_or_else(|| {
            EmbeddedError::Db(format!(
                "the store failed a write ({}); it is opened again by itself once it can be written",
                self.trouble().unwrap_or_default()
            ))
        })
    }

    /// A snapshot to read from.
    pub(super) fn begin_read(&self) -> Result<redb::ReadTransaction, EmbeddedError> {
        Ok(self.database()?.begin_read()?)
    }

    /// Why writes fail now, if they do.
    pub fn trouble(&self) -> Option<String> {
        self.current
            .trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes whenever writes answered but not yet durable may have been
    /// lost (the database was reopened after a write failed).
    pub fn generation(&self) -> u64 {
        self.current.generation.load(Ordering::Acquire)
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
                    let _ = done_tx.send(Err(EmbeddedError::Db(msg.clone())));
                    return Err(JobFailed {
                        error: msg,
                        answer: Box::new(|_| {}),
                    });
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
                    return Err(JobFailed {
                        error: e.to_string(),
                        answer: Box::new(move |_| {
                            let _ = done_tx.send(Err(e));
                        }),
                    });
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

/// How the writer thread opens its database again.
struct Writer {
    open: Opener,
    /// The directory whose filesystem holds the file.
    room: Option<PathBuf>,
    /// When the writer last said why it could not reopen.
    noted: Option<Instant>,
    current: Arc<Current>,
}

type SyncDone = oneshot::Sender<Result<(), EmbeddedError>>;

impl Writer {
    fn set_trouble(&self, why: Option<String>) {
        *self
            .current
            .trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = why;
    }

    fn troubled(&self) -> bool {
        self.current
            .trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether the database still takes writes after a group failed: a
    /// failed disk write makes redb refuse every later one until reopened.
    fn healthy(db: &Database) -> bool {
        let probe = || -> Result<(), String> {
            let mut txn = db.begin_write().map_err(|e| e.to_string())?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())
        };
        probe().is_ok()
    }

    /// Closes the database that failed and opens it again, every second
    /// until that works (space is back on a full disk, say); meanwhile every
    /// request is refused. Writes not yet durable are gone: each sync waiting
    /// is failed, and the generation bumped for callers that synced later.
    /// Answers the database opened again, or none if the store closes first.
    fn reopen(
        &mut self,
        mut db: Arc<Database>,
        why: &str,
        rx: &Receiver<Request>,
        syncs: &mut Vec<SyncDone>,
    ) -> Option<Arc<Database>> {
        tracing::error!(error = why, "the store failed a write; reopening it");
        let refuse = || EmbeddedError::Db(format!("the store failed a write ({why})"));
        for done in syncs.drain(..) {
            let _ = done.send(Err(refuse()));
        }
        self.current
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Readers hold the database only to begin a read: it is soon ours
        // alone, to close (the file lock goes with it).
        loop {
            match Arc::try_unwrap(db) {
                Ok(alone) => {
                    let _ = alone.close();
                    break;
                }
                Err(shared) => {
                    db = shared;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let mut next_try = Instant::now() + REOPEN_EVERY;
        loop {
            // Refuses what comes meanwhile, and tries every second however
            // busy the callers are.
            match rx.recv_timeout(next_try.saturating_duration_since(Instant::now())) {
                Ok(Request::Write { job, .. }) => {
                    let _ = job(Err(refuse().to_string()));
                }
                Ok(Request::Sync(done)) => {
                    let _ = done.send(Err(refuse()));
                }
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() < next_try {
                continue;
            }
            next_try = Instant::now() + REOPEN_EVERY;
            // Opening repairs the file in place, which a full disk allows:
            // wait for room to write, so as not to reopen into the next failure.
            if let Some(dir) = &self.room
                && let Some(free) = free_bytes(dir)
                && free < MIN_FREE
            {
                self.note_waiting(&format!("{free} bytes free, waiting for {MIN_FREE}"));
                continue;
            }
            match (self.open)(false) {
                Ok(db) => {
                    let db = Arc::new(db);
                    self.current.generation.fetch_add(1, Ordering::AcqRel);
                    *self
                        .current
                        .db
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Some(db.clone());
                    self.set_trouble(None);
                    tracing::info!("the store takes writes again");
                    return Some(db);
                }
                Err(error) => self.note_waiting(&error.to_string()),
            }
        }
    }

    /// Says, once a minute at most, why the store is not open yet.
    fn note_waiting(&mut self, why: &str) {
        if self
            .noted
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            tracing::warn!(
                why,
                "the store cannot be opened again yet; trying every second"
            );
            self.noted = Some(Instant::now());
        }
    }
}

/// Room the store's disk must have before it is opened again after a failure.
const MIN_FREE: u64 = 16 << 20;

/// Bytes free to this user on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid C string and a zeroed struct for statvfs to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

fn write_loop(mut writer: Writer, mut db: Arc<Database>, rx: Receiver<Request>) {
    let mut syncs: Vec<SyncDone> = Vec::new();
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
        let committed = commit_group(&db, jobs, durable, &|why| {
            if !Writer::healthy(&db) {
                writer.set_trouble(Some(why.to_string()));
            }
        });
        if durable {
            for done in syncs.drain(..) {
                let _ = done.send(committed.clone().map_err(EmbeddedError::Db));
            }
        }
        unsynced = !durable || committed.is_err();
        if let Err(why) = committed
            && writer.troubled()
        {
            match writer.reopen(db, &why, &rx, &mut syncs) {
                Some(again) => db = again,
                None => return,
            }
            unsynced = false;
        }
    }
    // Closing makes what was left unsynced durable.
    if unsynced {
        let _ = commit_group(&db, Vec::new(), true, &|_| {});
    }
}

/// Runs the jobs in one transaction and answers how its commit went. On a
/// failure, `failed` is told before any job is answered (so that the store's
/// trouble is known to a caller by the time it hears of its failed write).
fn commit_group(
    db: &Database,
    group: Vec<Job>,
    durable: bool,
    failed: &dyn Fn(&str),
) -> Result<(), String> {
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            failed(&e.to_string());
            return Err(fail_all(group.into_iter(), &e.to_string()));
        }
    };
    // Writes that need no sync (receipts, deferred writes) are made durable by
    // the next durable commit.
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    if let Err(e) = txn.set_durability(durability) {
        drop(txn);
        failed(&e.to_string());
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
                    Ok(Err(failed)) => {
                        failure = Some(failed.error);
                        completions.push(failed.answer);
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
        failed(&msg);
        for c in completions {
            c(Err(EmbeddedError::Db(msg.clone())));
        }
        return Err(fail_all(jobs, &msg));
    }
    let committed = txn.commit().map_err(|e| e.to_string());
    if let Err(e) = &committed {
        failed(e);
    }
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

    /// A disk that fills up fails the store's writes and makes it say why;
    /// once space is back the store reopens its file by itself, keeps what
    /// was durable, and a caller whose deferred write was lost can tell.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_full_disk_the_store_reopens_by_itself() {
        let disk = crate::testkit::power::Disk::new();
        let opener = disk.clone();
        let db =
            Embedded::open_on(move || opener.backend(), Arc::new(TestClock::default())).unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db));
        let deferred = store.deferred().unwrap();
        let put = |sk: &str| Put::new(Key::new("p", sk), serde_json::json!({"sk": sk}));
        store.put(put("before")).await.unwrap();
        assert_eq!(store.trouble(), None);
        let generation = store.generation();

        // Answered, not yet durable when the disk fills.
        deferred.put(put("deferred")).await.unwrap();
        disk.set_full(true);
        assert!(store.put(put("while full")).await.is_err());
        let why = store.trouble().expect("the store says why it fails");
        assert!(why.contains("space"), "{why}");

        disk.set_full(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.trouble().is_some() {
            assert!(std::time::Instant::now() < deadline, "the store reopened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.put(put("after")).await.unwrap();
        for sk in ["before", "after"] {
            assert!(
                store.get(&Key::new("p", sk)).await.unwrap().is_some(),
                "{sk}"
            );
        }
        assert!(
            store
                .get(&Key::new("p", "while full"))
                .await
                .unwrap()
                .is_none()
        );
        // A sync after the reopen works, though the deferred write may be
        // gone: its writer tells by the generation, which the reopen changed.
        deferred.sync().await.unwrap();
        assert_ne!(store.generation(), generation, "a reopen changes it");
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
