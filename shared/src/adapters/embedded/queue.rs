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
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use ulid::Ulid;

use super::codec;
use super::media::{FileMedium, LogMedium};
use super::{Embedded, EmbeddedError};
use crate::ports::Clock;
use crate::ports::queue::{
    MAX_DELAY, MAX_MESSAGE_BYTES, MAX_VISIBILITY, Queue, QueueError, QueueMessage,
};

/// The log is rewritten once it is this large and four times the live size.
const COMPACT_MIN_BYTES: u64 = 64 << 20;
/// The log file is allocated ahead in steps of this much (its tail reads as
/// zeros, where replay stops): ingest measured 0.54x the bare server with
/// it, 0.42x without (three runs each, when it was added).
const GROW_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    Main = 0,
    Dead = 1,
}

impl Lane {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Lane::Main),
            1 => Some(Lane::Dead),
            _ => None,
        }
    }
}

#[derive(Clone)]
struct Message {
    lane: Lane,
    visible_at: i64,
    receive_count: u32,
    body: Arc<str>,
    /// Hidden by a receive that has not been settled: if the queue is
    /// opened again, the process that received it is gone.
    in_flight: bool,
    /// The serial of its latest receive, which its receipt names (kept in
    /// memory only: every receive before an open is over). Not the receive
    /// count, which a postpone takes back: a receipt is never reused.
    receipt: u64,
}

/// The live messages, by id and by when they become visible. B-trees, not
/// hash maps: a hash map that doubles rehashes every message at once, under
/// the queue's lock (10 ms at 57,000 messages, every send waiting on it).
#[derive(Default)]
struct Messages {
    by_id: BTreeMap<u128, Message>,
    ready: [BTreeSet<(i64, u128)>; 2],
    /// What a snapshot of them takes in the log.
    bytes: u64,
}

impl Messages {
    /// A copy of every message (bodies shared).
    fn live(&self) -> Vec<(u128, Message)> {
        self.by_id.iter().map(|(id, m)| (*id, m.clone())).collect()
    }

    fn put(&mut self, id: u128, m: Message) {
        let (lane, at, len) = (m.lane, m.visible_at, put_len(&m.body));
        // One search of the tree: a send's id is new, a replayed one may not be.
        if let Some(old) = self.by_id.insert(id, m) {
            self.ready[old.lane as usize].remove(&(old.visible_at, id));
            self.bytes -= put_len(&old.body);
        }
        self.ready[lane as usize].insert((at, id));
        self.bytes += len;
    }

    fn set(
        &mut self,
        id: u128,
        lane: Lane,
        visible_at: i64,
        receive_count: u32,
        in_flight: bool,
    ) -> bool {
        let Some(m) = self.by_id.get_mut(&id) else {
            return false;
        };
        self.ready[m.lane as usize].remove(&(m.visible_at, id));
        (m.lane, m.visible_at, m.receive_count, m.in_flight) =
            (lane, visible_at, receive_count, in_flight);
        self.ready[lane as usize].insert((visible_at, id));
        true
    }

    /// Makes visible now what a process that is gone had received: its
    /// worker will not settle it (a crash, a power cut), so it need not wait
    /// for its visibility timeout. Its receive still counts.
    fn release_in_flight(&mut self, now: i64) -> usize {
        let held: Vec<(u128, Lane, i64, u32)> = self
            .by_id
            .iter()
            .filter(|(_, m)| m.in_flight)
            .map(|(id, m)| (*id, m.lane, m.visible_at, m.receive_count))
            .collect();
        let mut released = 0;
        for (id, lane, at, count) in held {
            released += usize::from(at > now);
            self.set(id, lane, at.min(now), count, false);
        }
        released
    }

    fn remove(&mut self, id: u128) -> Option<Message> {
        let m = self.by_id.remove(&id)?;
        self.ready[m.lane as usize].remove(&(m.visible_at, id));
        self.bytes -= put_len(&m.body);
        Some(m)
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Put { id, m } => self.put(id, m),
            Record::Set {
                id,
                lane,
                visible_at,
                receive_count,
                in_flight,
            } => {
                self.set(id, lane, visible_at, receive_count, in_flight);
            }
            Record::Delete { id } => {
                self.remove(id);
            }
        }
    }
}

/// One change, as the log keeps it: `len u32, crc32 u32, payload`, little endian.
enum Record {
    Put {
        id: u128,
        m: Message,
    },
    Set {
        id: u128,
        lane: Lane,
        visible_at: i64,
        receive_count: u32,
        in_flight: bool,
    },
    Delete {
        id: u128,
    },
}

const FRAME: usize = 8;
const PUT: u8 = 1;
const SET: u8 = 2;
const DELETE: u8 = 3;
/// tag, id, lane, visible_at, receive_count.
const FIELDS: usize = 1 + 16 + 1 + 8 + 4;

fn put_len(body: &str) -> u64 {
    (FRAME + FIELDS + body.len()) as u64
}

/// The lane byte's high bit: the message is in flight (see `Message`).
const IN_FLIGHT: u8 = 0x80;

fn encode_fields(
    out: &mut Vec<u8>,
    tag: u8,
    id: u128,
    (lane, in_flight): (Lane, bool),
    at: i64,
    count: u32,
) {
    out.push(tag);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(lane as u8 | if in_flight { IN_FLIGHT } else { 0 });
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
}

impl Record {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME]);
        match self {
            Record::Put { id, m } => {
                encode_fields(
                    out,
                    PUT,
                    *id,
                    (m.lane, m.in_flight),
                    m.visible_at,
                    m.receive_count,
                );
                out.extend_from_slice(m.body.as_bytes());
            }
            Record::Set {
                id,
                lane,
                visible_at,
                receive_count,
                in_flight,
            } => encode_fields(
                out,
                SET,
                *id,
                (*lane, *in_flight),
                *visible_at,
                *receive_count,
            ),
            Record::Delete { id } => {
                out.push(DELETE);
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        let payload = &out[start + FRAME..];
        let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + FRAME].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(p: &[u8]) -> Option<Record> {
        let id = u128::from_le_bytes(p.get(1..17)?.try_into().ok()?);
        if p[0] == DELETE {
            return (p.len() == 17).then_some(Record::Delete { id });
        }
        let lane_byte = *p.get(17)?;
        let lane = Lane::from_byte(lane_byte & !IN_FLIGHT)?;
        let in_flight = lane_byte & IN_FLIGHT != 0;
        let visible_at = i64::from_le_bytes(p.get(18..26)?.try_into().ok()?);
        let receive_count = u32::from_le_bytes(p.get(26..30)?.try_into().ok()?);
        match p[0] {
            SET if p.len() == FIELDS => Some(Record::Set {
                id,
                lane,
                visible_at,
                receive_count,
                in_flight,
            }),
            PUT => Some(Record::Put {
                id,
                m: Message {
                    lane,
                    visible_at,
                    receive_count,
                    body: std::str::from_utf8(&p[FIELDS..]).ok()?.into(),
                    in_flight,
                    receipt: 0,
                },
            }),
            _ => None,
        }
    }
}

/// Replays `bytes` into `messages`; answers how many bytes hold whole,
/// intact records (what follows is a write cut short by a crash).
fn replay(bytes: &[u8], messages: &mut Messages) -> usize {
    replay_checked(bytes, messages).0
}

/// `replay`, and whether it stopped at an intact record (its checksum
/// holds) that this build cannot read: one written by a newer build, which
/// must not be cut off as if a crash had torn it.
fn replay_checked(bytes: &[u8], messages: &mut Messages) -> (usize, bool) {
    let mut at = 0;
    while let Some(frame) = bytes.get(at..at + FRAME) {
        let len = u32::from_le_bytes(frame[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + FRAME..at + FRAME + len) else {
            break;
        };
        if len == 0 || crc32fast::hash(payload) != crc {
            break;
        }
        let Some(record) = Record::decode(payload) else {
            return (at, true);
        };
        messages.apply(record);
        at += FRAME + len;
    }
    (at, false)
}

/// `(id, dead, visible_at, receive_count, body)`.
pub type ImagedMessage = (u128, bool, i64, u32, String);

/// Replays a queue log's bytes as opening the queue does: answers how many
/// bytes hold whole, intact records, and the live messages they leave, as
/// `(id, dead, visible_at, receive_count, body)` in id order. For fuzzing.
#[doc(hidden)]
pub fn replay_image(bytes: &[u8]) -> (usize, Vec<ImagedMessage>) {
    let mut messages = Messages::default();
    let used = replay(bytes, &mut messages);
    let live = messages
        .by_id
        .iter()
        .map(|(id, m)| {
            (
                *id,
                m.lane == Lane::Dead,
                m.visible_at,
                m.receive_count,
                m.body.to_string(),
            )
        })
        .collect();
    (used, live)
}

struct State {
    messages: Messages,
    /// Records not yet handed to the writer, and whether one must be synced.
    pending: Vec<u8>,
    pending_durable: bool,
    /// Records appended so far: a record's sequence number.
    appended: u64,
    failed: Option<Arc<str>>,
    closing: bool,
    /// Receives so far: the serial of the latest (receipts start at 1).
    receipts: u64,
}

impl State {
    /// Appends `record`; answers its sequence number.
    fn append(&mut self, work: &Condvar, record: Record, durable: bool) -> u64 {
        self.append_encoded(work, 1, durable, |pending| record.encode(pending))
    }

    /// Appends `records` records that `write` puts in the log; answers the
    /// sequence number of the last.
    fn append_encoded(
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
struct Synced {
    /// Every record up to this sequence number is on disk.
    seq: u64,
    failed: Option<Arc<str>>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: records are pending, or the queue is closing.
    work: Condvar,
    synced: watch::Sender<Synced>,
    /// Wakes receivers: a message may have become visible.
    visible: Notify,
    clock: Arc<dyn Clock>,
    compact_min: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, error: &std::io::Error) {
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
struct Log {
    medium: Box<dyn LogMedium>,
    /// Where the records end, and how far the medium is allocated.
    len: u64,
    allocated: u64,
}

impl Log {
    fn write(&mut self, buf: &[u8], sync: bool) -> std::io::Result<()> {
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
    fn replace(&mut self, snapshot: &[u8]) -> std::io::Result<()> {
        self.medium.replace(snapshot)?;
        self.len = snapshot.len() as u64;
        self.allocated = self.len;
        Ok(())
    }
}

/// Marks the queue failed should the writer stop for any reason but closing.
struct WriterGuard(Arc<Shared>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.0.lock().closing {
            self.0
                .fail(&std::io::Error::other("the queue writer stopped"));
        }
    }
}

fn write_loop(shared: Arc<Shared>, mut log: Log) {
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
fn recover(shared: &Shared, log: &mut Log) -> bool {
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
fn snapshot(live: Vec<(u128, Message)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (id, m) in live {
        Record::Put { id, m }.encode(&mut bytes);
    }
    bytes
}

/// Rewrites the log as the live messages. Records appended meanwhile wait in
/// `pending` and go to the new log after the snapshot.
fn compact(shared: &Shared, log: &mut Log) -> std::io::Result<()> {
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

/// Moves the messages that versions before the queue log kept in the
/// database file (queue `name` and its `name.dead`) into the log at `log`,
/// then out of the database. Run before the queue opens; answers how many
/// moved. Stopped part-way, it moves the same messages again next time, and
/// replaying a message twice keeps it once.
pub fn import_legacy(db: &Embedded, name: &str, log: &Path) -> Result<usize, EmbeddedError> {
    use redb::{ReadableTableMetadata, TableError};
    let read = db.begin_read()?;
    let table = match read.open_table(codec::LEGACY_MESSAGES) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::new();
    let mut keys = Vec::new();
    for (lane, queue) in [
        (Lane::Main, name.to_string()),
        (Lane::Dead, format!("{name}.dead")),
    ] {
        let prefix = codec::compound(&queue, b"");
        for entry in table.range::<&[u8]>(prefix.as_slice()..)? {
            let (k, v) = entry?;
            let Some(id) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            // Not `unwrap_or_default`, as clippy suggests: that is the nil id.
            #[allow(clippy::unwrap_or_default)]
            let id = std::str::from_utf8(id)
                .ok()
                .and_then(|id| Ulid::from_string(id).ok())
                .unwrap_or_else(Ulid::new);
            let m = codec::decode_legacy_message(v.value());
            Record::Put {
                id: id.0,
                m: Message {
                    lane,
                    visible_at: m.visible_at,
                    receive_count: m.receive_count,
                    body: String::from_utf8_lossy(m.body).into(),
                    in_flight: false,
                    receipt: 0,
                },
            }
            .encode(&mut records);
            keys.push(k.value().to_vec());
        }
    }
    drop((table, read));
    if keys.is_empty() {
        return Ok(0);
    }
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(log, e))?;
    }
    // After the log's records, not at the end of the file: a log the queue
    // has had open is allocated ahead, and replay stops at those zeros.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(log)
        .map_err(|e| io_error(log, e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .and_then(|_| {
            let end = replay(&bytes, &mut Messages::default()) as u64;
            file.set_len(end)?;
            file.seek(SeekFrom::Start(end))?;
            file.write_all(&records)?;
            file.sync_all()
        })
        .map_err(|e| io_error(log, e))?;
    let txn = db.database()?.begin_write()?;
    {
        let mut messages = txn.open_table(codec::LEGACY_MESSAGES)?;
        for k in &keys {
            messages.remove(k.as_slice())?;
        }
        if messages.is_empty()? {
            drop(messages);
            txn.delete_table(codec::LEGACY_MESSAGES)?;
            txn.delete_table(codec::LEGACY_READY)?;
        }
    }
    txn.commit()?;
    tracing::info!(messages = keys.len(), log = %log.display(), "moved queued messages into the queue log");
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{SystemClock, TestClock};

    const LONG: Duration = Duration::from_secs(30);

    fn open(path: &Path, clock: &TestClock) -> EmbeddedQueue {
        EmbeddedQueue::open(path, 3, Arc::new(clock.clone())).unwrap()
    }

    async fn bodies(q: &EmbeddedQueue) -> Vec<String> {
        let mut got: Vec<String> = q
            .receive(100, LONG, Duration::ZERO)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        got.sort();
        got
    }

    #[tokio::test]
    async fn reopening_replays_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let clock = TestClock::at(chrono::Utc::now());
        {
            let q = open(&path, &clock);
            for b in ["a", "b", "c"] {
                q.send(b.into(), Duration::ZERO).await.unwrap();
            }
            q.send("later".into(), Duration::from_secs(10))
                .await
                .unwrap();
            let got = q.receive(10, LONG, Duration::ZERO).await.unwrap();
            assert_eq!(got.len(), 3);
            let by_body = |b: &str| got.iter().find(|m| m.body == b).unwrap();
            q.delete(&by_body("a").receipt).await.unwrap();
            q.retry_after(&by_body("b").receipt, Duration::ZERO)
                .await
                .unwrap();
            q.dead_letter(by_body("c")).await.unwrap();
        }
        let q = open(&path, &clock);
        let again = q.receive(10, LONG, Duration::ZERO).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].body.as_str(), again[0].receive_count), ("b", 2));
        let dead = q.receive_dead(10, LONG).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "c");
        clock.advance(Duration::from_secs(11));
        assert_eq!(bodies(&q).await, ["later"]);
    }

    /// What the last process received and never settled is visible at once
    /// when the queue is opened again (its worker is gone), its receive
    /// still counted; a retry's delay is kept.
    #[tokio::test]
    async fn messages_in_flight_when_the_process_stopped_come_back_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let clock = TestClock::at(chrono::Utc::now());
        {
            let q = open(&path, &clock);
            q.send("held".into(), Duration::ZERO).await.unwrap();
            q.send("delayed".into(), Duration::ZERO).await.unwrap();
            let got = q.receive(10, LONG, Duration::ZERO).await.unwrap();
            let delayed = got.iter().find(|m| m.body == "delayed").unwrap();
            q.retry_after(&delayed.receipt, LONG).await.unwrap();
            // Reopened within the same process: nothing else receives.
            assert!(
                q.receive(10, LONG, Duration::ZERO)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        let q = open(&path, &clock);
        let again = q.receive(10, LONG, Duration::ZERO).await.unwrap();
        assert_eq!(
            again
                .iter()
                .map(|m| (m.body.as_str(), m.receive_count))
                .collect::<Vec<_>>(),
            [("held", 2)]
        );
        clock.advance(LONG + Duration::from_secs(1));
        assert!(bodies(&q).await.contains(&"delayed".to_string()));
    }

    /// A full disk: sends are refused and the queue says why; once there is
    /// space again it takes messages by itself (no restart), and what was
    /// accepted before is all there, on disk too.
    #[tokio::test]
    async fn a_full_disk_refuses_then_the_queue_recovers_by_itself() {
        let disk = crate::testkit::power::Disk::new();
        let open = || {
            EmbeddedQueue::open_on(
                Box::new(disk.medium()),
                3,
                Arc::new(SystemClock),
                COMPACT_MIN_BYTES,
            )
            .unwrap()
        };
        let q = open();
        q.send("before".into(), Duration::ZERO).await.unwrap();
        disk.set_full(true);
        assert!(q.send("during".into(), Duration::ZERO).await.is_err());
        assert!(q.trouble().unwrap().contains("no space left"));
        assert!(q.send("refused".into(), Duration::ZERO).await.is_err());
        disk.set_full(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while q.send("after".into(), Duration::ZERO).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "never recovered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(q.trouble().is_none());
        drop(q);
        disk.cut(); // only what is on disk
        let q = open();
        let got = bodies(&q).await;
        assert!(
            got.contains(&"before".to_string()) && got.contains(&"after".to_string()),
            "{got:?}"
        );
        assert!(!got.contains(&"refused".to_string()), "{got:?}");
    }

    /// A postponed message comes back without the receive that got it
    /// counted, across a reopen too; a retried one keeps it.
    #[tokio::test]
    async fn a_postponed_receive_is_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let clock = TestClock::default();
        let q = open(&path, &clock);
        q.send("a".into(), Duration::ZERO).await.unwrap();
        let mut receipts = std::collections::HashSet::new();
        for _ in 0..5 {
            let got = q
                .receive(1, Duration::from_secs(30), Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(got[0].receive_count, 1);
            assert!(
                receipts.insert(got[0].receipt.clone()),
                "a receipt is never reused"
            );
            q.postpone(&got[0].receipt, Duration::ZERO).await.unwrap();
            // Spent: it cannot take back a receive twice.
            assert!(q.postpone(&got[0].receipt, Duration::ZERO).await.is_err());
        }
        drop(q);
        let q = open(&path, &clock);
        let got = q
            .receive(1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got[0].receive_count, 1);
        q.retry_after(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        let got = q
            .receive(1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got[0].receive_count, 2);
    }

    /// A record whose checksum holds but that this build cannot read (a
    /// newer build's) stops the open; it is not cut off as a torn write.
    #[tokio::test]
    async fn a_record_this_build_cannot_read_is_not_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let clock = TestClock::at(chrono::Utc::now());
        {
            let q = open(&path, &clock);
            q.send("kept".into(), Duration::ZERO).await.unwrap();
        }
        let end = records_end(&path);
        let mut unknown = vec![9u8; 20];
        unknown[0] = 42; // no such record type
        let mut bytes = std::fs::read(&path).unwrap();
        let crc = crc32fast::hash(&unknown);
        let mut frame = (unknown.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&crc.to_le_bytes());
        frame.extend_from_slice(&unknown);
        bytes[end..end + frame.len()].copy_from_slice(&frame);
        std::fs::write(&path, &bytes).unwrap();
        let err = EmbeddedQueue::open(&path, 3, Arc::new(clock.clone()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut off");
    }

    /// A send wakes one waiting receiver, and a receiver that leaves
    /// messages behind wakes the next: 25 messages sent at once reach three
    /// of five waiting receivers well before their 20 s wait is up, and the
    /// other two are left waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_wakes_as_many_waiting_receivers_as_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(
            EmbeddedQueue::open(&dir.path().join("q.log"), 3, Arc::new(SystemClock)).unwrap(),
        );
        let receivers: Vec<_> = (0..5)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move {
                    q.receive(10, LONG, Duration::from_secs(20))
                        .await
                        .unwrap()
                        .len()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await; // all waiting
        let batch = (0..25).map(|i| (format!("m{i}"), Duration::ZERO)).collect();
        q.send_batch(batch).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        let mut waiting = 0;
        for r in receivers {
            match tokio::time::timeout_at(deadline, r).await {
                Ok(n) => got.push(n.unwrap()),
                Err(_) => waiting += 1,
            }
        }
        got.sort();
        assert_eq!(got, [5, 10, 10], "every message delivered, 10 at most each");
        assert_eq!(
            waiting, 2,
            "receivers with nothing to take are left waiting"
        );
    }

    /// Where the records of the log at `path` end; what follows is zeros.
    fn records_end(path: &Path) -> usize {
        let bytes = std::fs::read(path).unwrap();
        let end = replay(&bytes, &mut Messages::default());
        assert!(
            bytes[end..].iter().all(|b| *b == 0),
            "garbage after the records"
        );
        end
    }

    #[tokio::test]
    async fn a_record_cut_short_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let clock = TestClock::at(chrono::Utc::now());
        {
            let q = open(&path, &clock);
            q.send("x".into(), Duration::ZERO).await.unwrap();
            q.send("y".into(), Duration::ZERO).await.unwrap();
        }
        let end = records_end(&path);
        // A crash part-way through the next record: its frame and a few bytes.
        let mut torn = Vec::new();
        Record::Put {
            id: 7,
            m: Message {
                lane: Lane::Main,
                visible_at: 0,
                receive_count: 0,
                body: "z".repeat(100).into(),
                in_flight: false,
                receipt: 0,
            },
        }
        .encode(&mut torn);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[end..end + 40].copy_from_slice(&torn[..40]);
        std::fs::write(&path, &bytes).unwrap();
        {
            let q = open(&path, &clock);
            assert_eq!(records_end(&path), end);
            q.send("w".into(), Duration::ZERO).await.unwrap();
        }
        // A flipped bit fails the checksum: that record and what follows go.
        let end = records_end(&path);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[end - 1] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let q = open(&path, &clock);
        assert_eq!(bodies(&q).await, ["x", "y"]);
    }

    #[tokio::test]
    async fn the_log_is_compacted_to_the_live_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let clock = TestClock::at(chrono::Utc::now());
        let kept_hidden;
        {
            let q = EmbeddedQueue::open_with(&path, 3, Arc::new(clock.clone()), 4096).unwrap();
            for i in 0..200 {
                q.send(format!("{i:0>100}"), Duration::ZERO).await.unwrap();
            }
            let grown = records_end(&path);
            assert!(grown > 200 * 100, "{grown}");
            let got = q.receive(200, LONG, Duration::ZERO).await.unwrap();
            assert_eq!(got.len(), 200);
            // Ids made in the same millisecond are not in order: any one stays.
            kept_hidden = got[0].body.clone();
            for m in &got[1..] {
                q.delete(&m.receipt).await.unwrap();
            }
            q.send("kept".into(), Duration::ZERO).await.unwrap();
            // A log only shrinks by compaction, which may come before the
            // last deletes (once the live messages are a quarter of it).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            // (Read while the writer appends: no check of what follows.)
            let now_end = || replay(&std::fs::read(&path).unwrap(), &mut Messages::default());
            while now_end() >= grown {
                assert!(std::time::Instant::now() < deadline, "never compacted");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Writes after the snapshot land in the new log.
            q.send("after".into(), Duration::ZERO).await.unwrap();
        }
        let q = open(&path, &clock);
        // The one received before the compaction was kept by it, and with
        // its receiver gone it is back at once.
        assert_eq!(bodies(&q).await, [kept_hidden.as_str(), "after", "kept"]);
    }

    #[tokio::test]
    async fn every_acknowledged_concurrent_send_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.log");
        let q = Arc::new(EmbeddedQueue::open(&path, 3, Arc::new(SystemClock)).unwrap());
        let tasks: Vec<_> = (0..32)
            .map(|t| {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..20 {
                        q.send(format!("{t}-{i}"), Duration::ZERO).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Read the file as it is, with the queue still open: acknowledged
        // sends must be there without a clean close.
        let mut replayed = Messages::default();
        let bytes = std::fs::read(&path).unwrap();
        let end = replay(&bytes, &mut replayed);
        assert!(bytes[end..].iter().all(|b| *b == 0));
        // Allocated ahead of the records.
        #[cfg(target_os = "linux")]
        assert!(bytes.len() as u64 >= end as u64 + GROW_BYTES / 2);
        assert_eq!(replayed.by_id.len(), 32 * 20);
        assert!(EmbeddedQueue::open(&path, 3, Arc::new(SystemClock)).is_err());
    }

    #[tokio::test]
    async fn messages_of_the_database_file_move_into_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = Embedded::open(&dir.path().join("hookline.redb"), Arc::new(SystemClock)).unwrap();
        let legacy = |visible_at: i64, count: u32, body: &str| {
            let mut v = visible_at.to_le_bytes().to_vec();
            v.extend_from_slice(&count.to_le_bytes());
            v.extend_from_slice(body.as_bytes());
            v
        };
        // A log the queue has had open: allocated ahead past its records.
        let log = dir.path().join("queues/apply.log");
        {
            let q = EmbeddedQueue::open(&log, 3, Arc::new(SystemClock)).unwrap();
            q.send("earlier".into(), Duration::ZERO).await.unwrap();
        }
        assert!(std::fs::metadata(&log).unwrap().len() > GROW_BYTES);
        let (live, dead) = (Ulid::new(), Ulid::new());
        {
            let txn = db.database().unwrap().begin_write().unwrap();
            let mut t = txn.open_table(codec::LEGACY_MESSAGES).unwrap();
            let now = chrono::Utc::now().timestamp_micros();
            for (queue, id, body) in [("apply", live, "queued"), ("apply.dead", dead, "dead")] {
                let key = codec::compound(queue, id.to_string().as_bytes());
                t.insert(key.as_slice(), legacy(now, 1, body).as_slice())
                    .unwrap();
            }
            drop(t);
            txn.commit().unwrap();
        }
        assert_eq!(import_legacy(&db, "apply", &log).unwrap(), 2);
        assert_eq!(import_legacy(&db, "apply", &log).unwrap(), 0);
        let q = EmbeddedQueue::open(&log, 3, Arc::new(SystemClock)).unwrap();
        let mut got: Vec<_> = q
            .receive(10, LONG, Duration::ZERO)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.body, m.id, m.receive_count))
            .collect();
        got.sort();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].0.as_str(), got[0].2), ("earlier", 1));
        assert_eq!(got[1], ("queued".to_string(), live.to_string(), 2));
        let got = q.receive_dead(10, LONG).await.unwrap();
        assert_eq!(
            (got[0].id.clone(), got[0].body.as_str()),
            (dead.to_string(), "dead")
        );
    }
}
