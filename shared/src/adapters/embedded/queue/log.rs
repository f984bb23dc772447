//! The queue log's writer thread: group commit of appended records,
//! compaction into a snapshot, and recovery when the log cannot be written.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};

use super::records::{Message, Messages, Record};
use crate::adapters::embedded::media::LogMedium;
use crate::ports::Clock;

/// The log is rewritten once it is this large and four times the live size.
pub(super) const COMPACT_MIN_BYTES: u64 = 64 << 20;
/// The log file is allocated ahead in steps of this much (its tail reads as
/// zeros, where replay stops): ingest measured 0.54x the bare server with
/// it, 0.42x without (three runs each, when it was added).
pub(super) const GROW_BYTES: u64 = 16 << 20;

pub(super) struct State {
    pub(super) messages: Messages,
    /// Records not yet handed to the writer, and whether one must be synced.
    pub(super) pending: Vec<u8>,
    pub(super) pending_durable: bool,
    /// Records appended so far: a record's sequence number.
    pub(super) appended: u64,
    pub(super) failed: Option<Arc<str>>,
    pub(super) closing: bool,
    /// Receives so far: the serial of the latest (receipts start at 1).
    pub(super) receipts: u64,
}

impl State {
    /// Appends `record`; answers its sequence number.
    pub(super) fn append(&mut self, work: &Condvar, record: Record, durable: bool) -> u64 {
        self.append_encoded(work, 1, durable, |pending| record.encode(pending))
    }

    /// Appends `records` records that `write` puts in the log; answers the
    /// sequence number of the last.
    pub(super) fn append_encoded(
        &mut self,
        work: &Condvar,
        records: u64,
        durable: bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> u64 {
        // The writer only waits when nothing is pending.
        if self.pending.is_empty() {
            work.notify_one();
        }
        write(&mut self.pending);
        self.pending_durable |= durable;
        self.appended += records;
        self.appended
    }
}

#[derive(Clone, Default)]
pub(super) struct Synced {
    /// Every record up to this sequence number is on disk.
    pub(super) seq: u64,
    pub(super) failed: Option<Arc<str>>,
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Wakes the writer: records are pending, or the queue is closing.
    pub(super) work: Condvar,
    pub(super) synced: watch::Sender<Synced>,
    /// Wakes receivers: a message may have become visible.
    pub(super) visible: Notify,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) compact_min: u64,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn fail(&self, error: &std::io::Error) {
        tracing::error!(%error, "the queue log cannot be written");
        let msg: Arc<str> = error.to_string().into();
        {
            let mut s = self.lock();
            if s.failed.is_some() {
                return;
            }
            s.failed = Some(msg.clone());
        }
        self.synced.send_modify(|s| s.failed = Some(msg));
    }
}

/// The log, written only by the writer thread.
pub(super) struct Log {
    pub(super) medium: Box<dyn LogMedium>,
    /// Where the records end, and how far the medium is allocated.
    pub(super) len: u64,
    pub(super) allocated: u64,
}

impl Log {
    pub(super) fn write(&mut self, buf: &[u8], sync: bool) -> std::io::Result<()> {
        let end = self.len + buf.len() as u64;
        if end > self.allocated {
            self.medium.allocate(end + GROW_BYTES)?;
            self.allocated = end + GROW_BYTES;
        }
        self.medium.append(buf)?;
        self.len += buf.len() as u64;
        if sync {
            self.medium.sync()?;
        }
        Ok(())
    }

    /// Replaces the log by `snapshot`, atomically.
    pub(super) fn replace(&mut self, snapshot: &[u8]) -> std::io::Result<()> {
        self.medium.replace(snapshot)?;
        self.len = snapshot.len() as u64;
        self.allocated = self.len;
        Ok(())
    }
}

/// Marks the queue failed should the writer stop for any reason but closing.
pub(super) struct WriterGuard(Arc<Shared>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.0.lock().closing {
            self.0
                .fail(&std::io::Error::other("the queue writer stopped"));
        }
    }
}

pub(super) fn write_loop(shared: Arc<Shared>, mut log: Log) {
    let guard = WriterGuard(shared);
    let shared = &guard.0;
    let mut buf = Vec::new();
    loop {
        let (seq, durable, closing, live) = {
            let mut s = shared.lock();
            while s.pending.is_empty() && !s.closing {
                s = shared.work.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::swap(&mut buf, &mut s.pending);
            let durable = std::mem::take(&mut s.pending_durable);
            (s.appended, durable, s.closing, s.messages.bytes)
        };
        // Closing makes what was left unsynced durable too.
        let sync = durable || closing;
        if !buf.is_empty() || closing {
            if let Err(e) = log.write(&buf, sync) {
                buf.clear();
                shared.fail(&e);
                if closing || !recover(shared, &mut log) {
                    return;
                }
                continue;
            }
            if sync {
                shared.synced.send_modify(|s| s.seq = seq);
            }
            buf.clear();
        }
        if closing {
            return;
        }
        if log.len >= shared.compact_min
            && log.len >= live.saturating_mul(4)
            && let Err(e) = compact(shared, &mut log)
        {
            shared.fail(&e);
            if !recover(shared, &mut log) {
                return;
            }
        }
    }
}

/// Waits out a log that cannot be written (its disk full, say): every
/// second it tries to write the live messages as a new log, and once that
/// works the queue takes messages again, by itself. Meanwhile every call
/// is refused, so nothing changes; what was accepted before is in memory
/// and in the snapshot. Answers false if the queue closes first.
pub(super) fn recover(shared: &Shared, log: &mut Log) -> bool {
    loop {
        {
            let s = shared.lock();
            if s.closing {
                return false;
            }
            let (s, _) = shared
                .work
                .wait_timeout(s, Duration::from_secs(1))
                .unwrap_or_else(PoisonError::into_inner);
            if s.closing {
                return false;
            }
        }
        if compact(shared, log).is_ok() {
            // Under the state's lock, so that no call appends between the
            // two flags and is told of a failure that is over.
            {
                let mut s = shared.lock();
                let seq = s.appended;
                shared.synced.send_modify(|x| {
                    x.failed = None;
                    x.seq = x.seq.max(seq);
                });
                s.failed = None;
            }
            shared.visible.notify_one();
            tracing::info!("the queue log can be written again");
            return true;
        }
    }
}

/// A log that holds `live` and nothing else.
pub(super) fn snapshot(live: Vec<(u128, Message)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (id, m) in live {
        Record::Put { id, m }.encode(&mut bytes);
    }
    bytes
}

/// Rewrites the log as the live messages. Records appended meanwhile wait in
/// `pending` and go to the new log after the snapshot.
pub(super) fn compact(shared: &Shared, log: &mut Log) -> std::io::Result<()> {
    let (live, seq, durable) = {
        let mut s = shared.lock();
        // What is pending is in the snapshot already.
        s.pending.clear();
        let durable = std::mem::take(&mut s.pending_durable);
        (s.messages.live(), s.appended, durable)
    };
    let before = log.len;
    log.replace(&snapshot(live))?;
    tracing::info!(before, after = log.len, "queue log compacted");
    if durable {
        shared.synced.send_modify(|s| s.seq = seq);
    }
    Ok(())
}
