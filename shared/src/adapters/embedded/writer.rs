use redb::{Database, Durability};

use super::codec::Tables;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
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

struct Request {
    job: Job,
    durable: bool,
}

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
        let db = Arc::new(Database::create(path)?);
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
            let out = match f(tables) {
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
        let tx = self.tx.as_ref().ok_or(EmbeddedError::Stopped)?.clone();
        // A full channel means the writer is behind: wait off the async threads.
        let request = Request { job, durable };
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
        done_rx.await.map_err(|_| EmbeddedError::Stopped)?
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
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_group(db, group);
    }
}

fn commit_group(db: &Database, group: Vec<Request>) {
    let durable = group.iter().any(|r| r.durable);
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return fail_all(group.into_iter().map(|r| r.job), &e.to_string()),
    };
    // Writes that need no sync (receipts, visibility) are made durable by the
    // next durable commit; a crash before it only makes a message visible early.
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    if let Err(e) = txn.set_durability(durability) {
        return fail_all(group.into_iter().map(|r| r.job), &e.to_string());
    }
    let mut completions = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter().map(|r| r.job);
    let failure = match Tables::open(&txn) {
        Err(e) => Some(e.to_string()),
        Ok(mut tables) => {
            let mut failure = None;
            for job in jobs.by_ref() {
                match job(Ok(&mut tables)) {
                    Ok(c) => completions.push(c),
                    Err(e) => {
                        failure = Some(e.to_string());
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
        return fail_all(jobs, &msg);
    }
    let committed = txn.commit().map_err(|e| e.to_string());
    for c in completions {
        c(committed.clone().map_err(EmbeddedError::Db));
    }
}

fn fail_all(jobs: impl Iterator<Item = Job>, msg: &str) {
    tracing::error!(error = msg, "embedded write group failed");
    for job in jobs {
        let _ = job(Err(msg.to_string()));
    }
}
