//! The queue log's records and the messages they replay into: how every
//! change to a queue is written, and read back at start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Lane {
    Main = 0,
    Dead = 1,
}

impl Lane {
    pub(super) fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Lane::Main),
            1 => Some(Lane::Dead),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub(super) struct Message {
    pub(super) lane: Lane,
    pub(super) visible_at: i64,
    pub(super) receive_count: u32,
    pub(super) body: Arc<str>,
    /// Hidden by a receive that has not been settled: if the queue is
    /// opened again, the process that received it is gone.
    pub(super) in_flight: bool,
    /// The serial of its latest receive, which its receipt names (kept in
    /// memory only: every receive before an open is over). Not the receive
    /// count, which a postpone takes back: a receipt is never reused.
    pub(super) receipt: u64,
}

/// The live messages, by id and by when they become visible. B-trees, not
/// hash maps: a hash map that doubles rehashes every message at once, under
/// the queue's lock (10 ms at 57,000 messages, every send waiting on it).
#[derive(Default)]
pub(super) struct Messages {
    pub(super) by_id: BTreeMap<u128, Message>,
    pub(super) ready: [BTreeSet<(i64, u128)>; 2],
    /// What a snapshot of them takes in the log.
    pub(super) bytes: u64,
}

impl Messages {
    /// A copy of every message (bodies shared).
    pub(super) fn live(&self) -> Vec<(u128, Message)> {
        self.by_id.iter().map(|(id, m)| (*id, m.clone())).collect()
    }

    pub(super) fn put(&mut self, id: u128, m: Message) {
        let (lane, at, len) = (m.lane, m.visible_at, put_len(&m.body));
        // One search of the tree: a send's id is new, a replayed one may not be.
        if let Some(old) = self.by_id.insert(id, m) {
            self.ready[old.lane as usize].remove(&(old.visible_at, id));
            self.bytes -= put_len(&old.body);
        }
        self.ready[lane as usize].insert((at, id));
        self.bytes += len;
    }

    pub(super) fn set(
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
    pub(super) fn release_in_flight(&mut self, now: i64) -> usize {
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

    pub(super) fn remove(&mut self, id: u128) -> Option<Message> {
        let m = self.by_id.remove(&id)?;
        self.ready[m.lane as usize].remove(&(m.visible_at, id));
        self.bytes -= put_len(&m.body);
        Some(m)
    }

    pub(super) fn apply(&mut self, record: Record) {
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
pub(super) enum Record {
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

pub(super) const FRAME: usize = 8;
pub(super) const PUT: u8 = 1;
pub(super) const SET: u8 = 2;
pub(super) const DELETE: u8 = 3;
/// tag, id, lane, visible_at, receive_count.
pub(super) const FIELDS: usize = 1 + 16 + 1 + 8 + 4;

pub(super) fn put_len(body: &str) -> u64 {
    (FRAME + FIELDS + body.len()) as u64
}

/// The lane byte's high bit: the message is in flight (see `Message`).
pub(super) const IN_FLIGHT: u8 = 0x80;

pub(super) fn encode_fields(
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
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
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

    pub(super) fn decode(p: &[u8]) -> Option<Record> {
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
pub(super) fn replay(bytes: &[u8], messages: &mut Messages) -> usize {
    replay_checked(bytes, messages).0
}

/// `replay`, and whether it stopped at an intact record (its checksum
/// holds) that this build cannot read: one written by a newer build, which
/// must not be cut off as if a crash had torn it.
pub(super) fn replay_checked(bytes: &[u8], messages: &mut Messages) -> (usize, bool) {
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
