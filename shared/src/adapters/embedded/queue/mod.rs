//! The embedded queue, with SQS's semantics: messages live in memory and
//! every change to them is appended to a log file, which is all that is read
//! back at start.
//!
//! A send is answered once its record is on disk. One writer thread writes
//! whatever records are waiting and syncs once for all of them (group
//! commit), so concurrent senders share each sync, and no send pays for a
//! B-tree commit. Receipts, visibility changes and deletes ride along
//! unsynced: lost in a crash, a message is only delivered again, which
//! at-least-once allows. A record cut short by a crash is cut off at start.
//!
//! When the log has grown to several times the size of the live messages it
//! is replaced by a snapshot of them.

use async_trait::async_trait;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use ulid::Ulid;

use super::EmbeddedError;
use super::media::{FileMedium, LogMedium};
use crate::ports::Clock;
use crate::ports::queue::{
    MAX_DELAY, MAX_MESSAGE_BYTES, MAX_VISIBILITY, Queue, QueueError, QueueMessage,
};

mod legacy;
mod log;
mod records;
#[cfg(test)]
mod tests;

pub use legacy::import_legacy;
use log::{COMPACT_MIN_BYTES, Log, Shared, State, Synced, snapshot, write_loop};
pub use records::replay_image;
use records::{Lane, Message, Messages, Record, put_len, replay_checked};

/// A queue and its dead-letter queue in one log file.
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
    max_receives: u32,
    writer: Option<JoinHandle<()>>,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> EmbeddedError {
    EmbeddedError::Db(format!("queue log {}: {e}", path.display()))
}

/// A receipt's message id and receive serial (`id.serial`).
fn parse_receipt(receipt: &str) -> Result<(u128, u64), QueueError> {
    let (id, serial) = receipt.rsplit_once('.').ok_or(QueueError::StaleReceipt)?;
    let id = Ulid::from_string(id).map_err(|_| QueueError::StaleReceipt)?;
    let serial = serial.parse().map_err(|_| QueueError::StaleReceipt)?;
    Ok((id.0, serial))
}

impl EmbeddedQueue {
    /// Opens (or creates) the queue whose log is `path`; one process at a time.
    pub fn open(
        path: &Path,
        max_receives: u32,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EmbeddedError> {
        Self::open_with(path, max_receives, clock, COMPACT_MIN_BYTES)
    }

    fn open_with(
        path: &Path,
        max_receives: u32,
        clock: Arc<dyn Clock>,
        compact_min: u64,
    ) -> Result<Self, EmbeddedError> {
        let medium = FileMedium::open(path).map_err(|e| io_error(path, e))?;
        Self::open_on(Box::new(medium), max_receives, clock, compact_min)
            .map_err(|e| io_error(path, e))
    }

    /// Opens the queue whose log is on `medium` (a file, or a test's disk).
    pub fn open_on(
        mut medium: Box<dyn LogMedium>,
        max_receives: u32,
        clock: Arc<dyn Clock>,
        compact_min: u64,
    ) -> std::io::Result<Self> {
        let bytes = medium.read_all()?;
        let mut messages = Messages::default();
        let (whole, unreadable) = replay_checked(&bytes, &mut messages);
        if unreadable {
            return Err(std::io::Error::other(format!(
                "the queue log has a record at byte {whole} that this build cannot read (written by a newer build?); \
                 refusing to open it rather than cut it off"
            )));
        }
        let released = messages.release_in_flight(clock.now().timestamp_micros());
        if released > 0 {
            tracing::info!(
                released,
                "messages received before the last stop are visible again at once"
            );
        }
        // Past the records: zeros allocated ahead, or a write cut short.
        let mut allocated = bytes.len() as u64;
        let cut_short = bytes[whole..].iter().any(|b| *b != 0);
        if cut_short {
            tracing::warn!(
                dropped = bytes.len() - whole,
                "the queue log ended in a partial record (a write cut short); it is cut off"
            );
            allocated = whole as u64;
        }
        medium.resume_at(whole as u64, cut_short)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                messages,
                pending: Vec::new(),
                pending_durable: false,
                appended: 0,
                failed: None,
                closing: false,
                receipts: 0,
            }),
            work: Condvar::new(),
            synced: watch::Sender::new(Synced::default()),
            visible: Notify::new(),
            clock,
            compact_min,
        });
        let log = Log {
            medium,
            len: whole as u64,
            allocated,
        };
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("hookline-queue-log".into())
            .spawn(move || write_loop(writer_shared, log))?;
        Ok(Self {
            shared,
            max_receives: max_receives.max(1),
            writer: Some(writer),
        })
    }

    /// Writes every message the queue holds now (both lanes) as a log of
    /// its own at `path`, a new file, durably: a backup, which `open`
    /// takes as it takes its own log (messages received meanwhile are
    /// visible again at once). Answers how many messages it holds.
    pub fn copy_to(&self, path: &Path) -> std::io::Result<usize> {
        let live = self.shared.lock().messages.live();
        let count = live.len();
        super::media::write_new(path, &snapshot(live))?;
        Ok(count)
    }

    /// The state, unless the log has failed.
    fn lock(&self) -> Result<MutexGuard<'_, State>, QueueError> {
        let s = self.shared.lock();
        match &s.failed {
            Some(e) => Err(QueueError::Backend(format!(
                "the queue log cannot be written ({e}); the queue takes messages again by itself once it can"
            ))),
            None => Ok(s),
        }
    }

    fn now(&self) -> i64 {
        self.shared.clock.now().timestamp_micros()
    }

    /// Waits until the record numbered `seq` is on disk.
    async fn synced(&self, seq: u64) -> Result<(), QueueError> {
        let mut rx = self.shared.synced.subscribe();
        let failed = rx
            .wait_for(|s| s.seq >= seq || s.failed.is_some())
            .await
            .map_err(|_| QueueError::Backend("the queue has closed".into()))?
            .failed
            .clone();
        match failed {
            Some(e) => Err(QueueError::Backend(format!(
                "the queue log cannot be written ({e})"
            ))),
            None => Ok(()),
        }
    }

    /// Makes the record numbered `seq` durable, then wakes receivers.
    async fn settle(&self, seq: u64) -> Result<(), QueueError> {
        self.synced(seq).await?;
        // One receiver; it wakes the next if it leaves messages behind.
        self.shared.visible.notify_one();
        Ok(())
    }

    async fn send_all(&self, messages: Vec<(String, Duration)>) -> Result<Vec<String>, QueueError> {
        if let Some((body, _)) = messages.iter().find(|(b, _)| b.len() > MAX_MESSAGE_BYTES) {
            return Err(QueueError::TooLarge(body.len()));
        }
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        // Everything but the bookkeeping is done before the lock is taken,
        // so that a sender preempted while holding it holds it briefly.
        let mut encoded =
            Vec::with_capacity(messages.iter().map(|(b, _)| put_len(b)).sum::<u64>() as usize);
        let mut ids = Vec::with_capacity(messages.len());
        let puts: Vec<(u128, Message)> = messages
            .into_iter()
            .map(|(body, delay)| {
                let id = Ulid::new();
                let m = Message {
                    lane: Lane::Main,
                    visible_at: now.saturating_add(micros(delay.min(MAX_DELAY))),
                    receive_count: 0,
                    body: body.into(),
                    in_flight: false,
                    receipt: 0,
                };
                // A clone shares the body.
                Record::Put {
                    id: id.0,
                    m: m.clone(),
                }
                .encode(&mut encoded);
                ids.push(id.to_string());
                (id.0, m)
            })
            .collect();
        let seq = {
            let mut s = self.lock()?;
            let seq = s.append_encoded(&self.shared.work, puts.len() as u64, true, |pending| {
                pending.extend_from_slice(&encoded)
            });
            for (id, m) in puts {
                s.messages.put(id, m);
            }
            seq
        };
        self.settle(seq).await?;
        Ok(ids)
    }

    /// Makes a received message visible again after `after`; `uncount`
    /// takes back the receive that got it.
    async fn hide(&self, receipt: &str, after: Duration, uncount: bool) -> Result<(), QueueError> {
        let (id, serial) = parse_receipt(receipt)?;
        let at = self.now().saturating_add(micros(after.min(MAX_VISIBILITY)));
        let seq = {
            let mut s = self.lock()?;
            let count = match s.messages.by_id.get_mut(&id) {
                Some(m) if m.lane == Lane::Main && m.receipt == serial => {
                    // Settled: its receipt is spent.
                    m.receipt = 0;
                    m.receive_count
                }
                _ => return Err(QueueError::StaleReceipt),
            };
            let count = if uncount {
                count.saturating_sub(1)
            } else {
                count
            };
            s.messages.set(id, Lane::Main, at, count, false);
            s.append(&self.shared.work, set(id, Lane::Main, at, count), true)
        };
        self.settle(seq).await
    }

    /// Moves message `id` to `lane`, visible at once and never received, if
    /// it is in lane `from` (and its latest receive is `serial`, when given).
    async fn move_message(
        &self,
        id: u128,
        from: Lane,
        to: Lane,
        serial: Option<u64>,
    ) -> Result<(), QueueError> {
        let now = self.now();
        let seq = {
            let mut s = self.lock()?;
            match s.messages.by_id.get_mut(&id) {
                Some(m) if m.lane == from && serial.is_none_or(|r| r == m.receipt) => {
                    m.receipt = 0;
                }
                _ => return Err(QueueError::StaleReceipt),
            }
            s.messages.set(id, to, now, 0, false);
            s.append(&self.shared.work, set(id, to, now, 0), true)
        };
        self.settle(seq).await
    }

    /// Receives from `lane`; from the main lane, a message received
    /// `max_receives` times goes to the dead lane instead. Answers the
    /// messages, when the next hidden one becomes visible, and whether more
    /// than `max` were visible.
    fn receive_from(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
    ) -> Result<(Vec<QueueMessage>, Option<i64>, bool), QueueError> {
        let now = self.now();
        let hidden_until = now.saturating_add(micros(visibility.min(MAX_VISIBILITY)));
        let mut s = self.lock()?;
        let mut due = Vec::new();
        let mut next = None;
        let mut more = false;
        for &(at, id) in &s.messages.ready[lane as usize] {
            if at > now {
                next = Some(at);
                break;
            }
            if due.len() == max {
                more = true;
                break;
            }
            due.push(id);
        }
        // Only the bookkeeping under the lock; the answers are built after.
        let mut got = Vec::with_capacity(due.len());
        for id in due {
            let m = &s.messages.by_id[&id];
            let (count, body) = (m.receive_count, m.body.clone());
            let (to, at, count) = if lane == Lane::Main && count >= self.max_receives {
                (Lane::Dead, now, 0)
            } else {
                (lane, hidden_until, count + 1)
            };
            let in_flight = to == lane;
            s.messages.set(id, to, at, count, in_flight);
            let record = if in_flight {
                received(id, to, at, count)
            } else {
                set(id, to, at, count)
            };
            s.append(&self.shared.work, record, false);
            if to == lane {
                s.receipts += 1;
                let serial = s.receipts;
                if let Some(m) = s.messages.by_id.get_mut(&id) {
                    m.receipt = serial;
                }
                got.push((id, count, serial, body));
            }
        }
        drop(s);
        let got = got
            .into_iter()
            .map(|(id, count, serial, body)| {
                let id = Ulid(id);
                QueueMessage {
                    receipt: format!("{id}.{serial}"),
                    id: id.to_string(),
                    body: body.to_string(),
                    receive_count: count,
                }
            })
            .collect();
        Ok((got, next, more))
    }
}

fn set(id: u128, lane: Lane, visible_at: i64, receive_count: u32) -> Record {
    Record::Set {
        id,
        lane,
        visible_at,
        receive_count,
        in_flight: false,
    }
}

/// A receive: hidden until `visible_at`, unless its process is gone.
fn received(id: u128, lane: Lane, visible_at: i64, receive_count: u32) -> Record {
    Record::Set {
        id,
        lane,
        visible_at,
        receive_count,
        in_flight: true,
    }
}

impl Drop for EmbeddedQueue {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send(&self, body: String, delay: Duration) -> Result<String, QueueError> {
        Ok(self.send_all(vec![(body, delay)]).await?.remove(0))
    }

    async fn send_batch(
        &self,
        messages: Vec<(String, Duration)>,
    ) -> Result<Vec<String>, QueueError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.send_all(messages).await
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for a wake-up before looking, so a send between the
            // look and the wait is not missed.
            let notified = self.shared.visible.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, next_visible, more) =
                self.receive_from(Lane::Main, max.max(1), visibility)?;
            if more {
                self.shared.visible.notify_one();
            }
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let mut until = deadline;
            if let Some(at) = next_visible {
                let in_micros = (at - self.now()).max(0) as u64;
                until = until.min(now + Duration::from_micros(in_micros));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let (id, _) = parse_receipt(receipt)?;
        let mut s = self.lock()?;
        if s.messages
            .by_id
            .get(&id)
            .is_some_and(|m| m.lane == Lane::Main)
        {
            s.messages.remove(id);
            s.append(&self.shared.work, Record::Delete { id }, false);
        }
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.hide(receipt, after, false).await
    }

    async fn postpone(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.hide(receipt, after, true).await
    }

    async fn dead_letter(&self, message: &QueueMessage) -> Result<(), QueueError> {
        let (id, serial) = parse_receipt(&message.receipt)?;
        self.move_message(id, Lane::Main, Lane::Dead, Some(serial))
            .await
    }

    async fn receive_dead(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        Ok(self.receive_from(Lane::Dead, max.max(1), visibility)?.0)
    }

    async fn delete_dead(&self, receipt: &str) -> Result<(), QueueError> {
        let (id, _) = parse_receipt(receipt)?;
        let seq = {
            let mut s = self.lock()?;
            if !s
                .messages
                .by_id
                .get(&id)
                .is_some_and(|m| m.lane == Lane::Dead)
            {
                return Ok(());
            }
            s.messages.remove(id);
            s.append(&self.shared.work, Record::Delete { id }, true)
        };
        self.settle(seq).await
    }

    async fn redrive(&self, max: usize) -> Result<usize, QueueError> {
        let now = self.now();
        let (moved, seq) = {
            let mut s = self.lock()?;
            let ids: Vec<u128> = s.messages.ready[Lane::Dead as usize]
                .iter()
                .take(max)
                .map(|(_, id)| *id)
                .collect();
            if ids.is_empty() {
                return Ok(0);
            }
            let mut seq = 0;
            for &id in &ids {
                s.messages.set(id, Lane::Main, now, 0, false);
                seq = s.append(&self.shared.work, set(id, Lane::Main, now, 0), true);
            }
            (ids.len(), seq)
        };
        self.settle(seq).await?;
        Ok(moved)
    }

    fn max_receives(&self) -> u32 {
        self.max_receives
    }

    fn trouble(&self) -> Option<String> {
        self.shared
            .lock()
            .failed
            .as_ref()
            .map(|e| format!("the queue log cannot be written: {e}"))
    }
}
