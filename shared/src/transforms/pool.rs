//! The threads transforms are compiled and evaluated on: a few of their own,
//! with stacks deep enough for CEL's recursive parser and evaluator (see
//! `budget`), so that this CPU-bound work never runs on the threads that
//! answer HTTP or drive the queue workers, and a panic in it is an error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock, mpsc};

/// Deep enough for `budget`'s limits with a wide margin in a debug build
/// (a 16 KiB chain of 8,100 terms parses in 32 MiB; see the tests).
const STACK: usize = 32 << 20;
/// Jobs waiting at most; past it callers are told to come back (each job
/// runs at most `budget::MAX_TIME`, so a full queue clears in seconds).
const WAITING: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

fn jobs() -> &'static Mutex<mpsc::SyncSender<Job>> {
    static JOBS: OnceLock<Mutex<mpsc::SyncSender<Job>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<Job>(WAITING);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("transform-{i}"))
                .stack_size(STACK)
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("a transform thread starts");
        }
        Mutex::new(tx)
    })
}

/// Why a job did not answer: not the transform's fault, so worth a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failed {
    #[error("the transform threads are busy")]
    Busy,
    /// A panic, with what it said.
    #[error("an internal error stopped it: {0}")]
    Panicked(String),
}

impl Failed {
    /// As a request's answer: busy threads are a 503 to retry shortly, a
    /// panic a 500.
    pub fn into_error(self, what: &'static str) -> crate::error::Error {
        match self {
            Failed::Busy => crate::error::Error::Busy(format!(
                "every expression thread is busy; retry shortly ({what})"
            )),
            other => crate::error::Error::internal(what, other),
        }
    }
}

/// What a panic's payload says.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Runs `f` on a transform thread and answers what it returned.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Failed> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let out =
            catch_unwind(AssertUnwindSafe(f)).map_err(|p| Failed::Panicked(panic_message(&*p)));
        let _ = tx.send(out);
    });
    jobs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .try_send(job)
        .map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Failed::Busy,
            mpsc::TrySendError::Disconnected(_) => {
                Failed::Panicked("the transform threads are gone".into())
            }
        })?;
    rx.await
        .map_err(|_| Failed::Panicked("the transform thread stopped".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_off_the_caller_thread_and_a_panic_is_an_error() {
        let caller = std::thread::current().id();
        let (id, name) = run(|| {
            let t = std::thread::current();
            (t.id(), t.name().map(String::from))
        })
        .await
        .unwrap();
        assert_ne!(id, caller);
        assert!(name.unwrap().starts_with("transform-"));
        let err = run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(
            matches!(&err, Failed::Panicked(m) if m.contains("boom")),
            "{err}"
        );
        // The thread that panicked still serves.
        assert_eq!(run(|| 7).await.unwrap(), 7);
    }
}
