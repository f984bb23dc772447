use async_trait::async_trait;
use redb::ReadableTable;
use std::sync::Arc;
use std::time::Duration;

use super::codec::{self, Tables, compound, ready_key};
use super::{Embedded, EmbeddedError};
use crate::ports::queue::{
    MAX_DELAY, MAX_MESSAGE_BYTES, MAX_VISIBILITY, Queue, QueueError, QueueMessage,
};

/// A queue and its dead-letter queue, with SQS's semantics, in the embedded file.
pub struct EmbeddedQueue {
    db: Arc<Embedded>,
    name: String,
    dead: String,
    max_receives: u32,
}

impl EmbeddedQueue {
    pub fn new(db: Arc<Embedded>, name: &str, max_receives: u32) -> Self {
        Self {
            db,
            name: name.to_string(),
            dead: format!("{name}.dead"),
            max_receives: max_receives.max(1),
        }
    }

    fn now_micros(&self) -> i64 {
        self.db.clock.now().timestamp_micros()
    }
}

impl From<EmbeddedError> for QueueError {
    fn from(e: EmbeddedError) -> Self {
        QueueError::Backend(e.to_string())
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn parse_receipt(receipt: &str) -> Result<(String, u32), QueueError> {
    let (id, count) = receipt.rsplit_once('.').ok_or(QueueError::StaleReceipt)?;
    let count = count.parse().map_err(|_| QueueError::StaleReceipt)?;
    Ok((id.to_string(), count))
}

fn check_size(body: &str) -> Result<(), QueueError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(QueueError::TooLarge(body.len()));
    }
    Ok(())
}

/// Puts a message on `queue`, visible at `visible_at`, having been received
/// `receive_count` times.
fn insert(
    t: &mut Tables<'_>,
    queue: &str,
    id: &str,
    visible_at: i64,
    receive_count: u32,
    body: &[u8],
) -> Result<(), EmbeddedError> {
    t.messages.insert(
        compound(queue, id.as_bytes()).as_slice(),
        codec::encode_message(visible_at, receive_count, body).as_slice(),
    )?;
    t.ready
        .insert(ready_key(queue, visible_at, id).as_slice(), ())?;
    Ok(())
}

/// Takes a message off `queue`, answering (visible_at, receive_count, body).
fn remove(
    t: &mut Tables<'_>,
    queue: &str,
    id: &str,
) -> Result<Option<(i64, u32, Vec<u8>)>, EmbeddedError> {
    let Some(found) = t
        .messages
        .remove(compound(queue, id.as_bytes()).as_slice())?
    else {
        return Ok(None);
    };
    let m = codec::decode_message(found.value());
    let out = (m.visible_at, m.receive_count, m.body.to_vec());
    drop(found);
    t.ready.remove(ready_key(queue, out.0, id).as_slice())?;
    Ok(Some(out))
}

/// Ids of up to `max` messages of `queue` visible at `now`, and when the next
/// hidden one becomes visible.
fn visible(
    t: &mut Tables<'_>,
    queue: &str,
    now: i64,
    max: usize,
) -> Result<(Vec<String>, Option<i64>), EmbeddedError> {
    let prefix = compound(queue, b"");
    let mut ids = Vec::new();
    let mut next = None;
    for entry in t.ready.range::<&[u8]>(prefix.as_slice()..)? {
        let (k, _) = entry?;
        let k = k.value();
        if !k.starts_with(&prefix) {
            break;
        }
        let at = u64::from_be_bytes(
            k[prefix.len()..prefix.len() + 8]
                .try_into()
                .expect("8 bytes"),
        ) as i64;
        if at > now {
            next = Some(at);
            break;
        }
        if ids.len() == max {
            break;
        }
        ids.push(String::from_utf8_lossy(&k[prefix.len() + 8..]).into_owned());
    }
    Ok((ids, next))
}

struct Received {
    messages: Vec<QueueMessage>,
    next_visible: Option<i64>,
}

/// Receives from `queue`; past `max_receives` a message goes to `dead` instead.
fn receive_in(
    t: &mut Tables<'_>,
    queue: &str,
    dead: Option<&str>,
    max_receives: u32,
    now: i64,
    max: usize,
    visibility: i64,
) -> Result<Received, EmbeddedError> {
    let (ids, next_visible) = visible(t, queue, now, max)?;
    let mut messages = Vec::with_capacity(ids.len());
    for id in ids {
        let Some((_, count, body)) = remove(t, queue, &id)? else {
            continue;
        };
        if let Some(dead) = dead.filter(|_| count >= max_receives) {
            insert(t, dead, &id, now, 0, &body)?;
            continue;
        }
        let count = count + 1;
        insert(t, queue, &id, now.saturating_add(visibility), count, &body)?;
        messages.push(QueueMessage {
            receipt: format!("{id}.{count}"),
            id,
            body: String::from_utf8(body).unwrap_or_default(),
            receive_count: count,
        });
    }
    Ok(Received {
        messages,
        next_visible,
    })
}

impl EmbeddedQueue {
    async fn receive_once(&self, max: usize, visibility: Duration) -> Result<Received, QueueError> {
        let (queue, dead, max_receives) = (self.name.clone(), self.dead.clone(), self.max_receives);
        let now = self.now_micros();
        let visibility = micros(visibility.min(MAX_VISIBILITY));
        let received = self
            .db
            .write(false, move |t| {
                receive_in(t, &queue, Some(&dead), max_receives, now, max, visibility)
                    .map(Ok::<_, QueueError>)
            })
            .await??;
        Ok(received)
    }

    async fn send_all(&self, messages: Vec<(String, Duration)>) -> Result<Vec<String>, QueueError> {
        for (body, _) in &messages {
            check_size(body)?;
        }
        let now = self.now_micros();
        let queue = self.name.clone();
        let prepared: Vec<(String, i64, String)> = messages
            .into_iter()
            .map(|(body, delay)| {
                (
                    ulid::Ulid::new().to_string(),
                    now + micros(delay.min(MAX_DELAY)),
                    body,
                )
            })
            .collect();
        let ids = self
            .db
            .write(true, move |t| {
                for (id, at, body) in &prepared {
                    insert(t, &queue, id, *at, 0, body.as_bytes())?;
                }
                Ok(Ok::<_, QueueError>(
                    prepared
                        .into_iter()
                        .map(|(id, _, _)| id)
                        .collect::<Vec<_>>(),
                ))
            })
            .await??;
        self.db.notify.notify_waiters();
        Ok(ids)
    }

    /// Moves a message between queues, resetting its receive count.
    async fn move_message(
        &self,
        from: &str,
        to: &str,
        id: String,
        count: Option<u32>,
    ) -> Result<(), QueueError> {
        let (from, to) = (from.to_string(), to.to_string());
        let now = self.now_micros();
        self.db
            .write(true, move |t| {
                let Some((at, have, body)) = remove(t, &from, &id)? else {
                    return Ok(Err(QueueError::StaleReceipt));
                };
                if count.is_some_and(|c| c != have) {
                    insert(t, &from, &id, at, have, &body)?;
                    return Ok(Err(QueueError::StaleReceipt));
                }
                insert(t, &to, &id, now, 0, &body)?;
                Ok(Ok(()))
            })
            .await??;
        self.db.notify.notify_waiters();
        Ok(())
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
            let notified = self.db.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.receive_once(max.max(1), visibility).await?;
            let now = tokio::time::Instant::now();
            if !got.messages.is_empty() || now >= deadline {
                return Ok(got.messages);
            }
            let mut until = deadline;
            if let Some(at) = got.next_visible {
                let in_micros = (at - self.now_micros()).max(0) as u64;
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
        let queue = self.name.clone();
        // An acknowledgement needs no sync of its own: lost in a crash, the
        // message is delivered again, which at-least-once allows.
        self.db
            .write(false, move |t| {
                remove(t, &queue, &id).map(|_| Ok::<_, QueueError>(()))
            })
            .await??;
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let queue = self.name.clone();
        let at = self.now_micros() + micros(after.min(MAX_VISIBILITY));
        self.db
            .write(true, move |t| {
                let Some((old_at, have, body)) = remove(t, &queue, &id)? else {
                    return Ok(Err(QueueError::StaleReceipt));
                };
                if have != count {
                    insert(t, &queue, &id, old_at, have, &body)?;
                    return Ok(Err(QueueError::StaleReceipt));
                }
                insert(t, &queue, &id, at, have, &body)?;
                Ok(Ok(()))
            })
            .await??;
        self.db.notify.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, message: &QueueMessage) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(&message.receipt)?;
        self.move_message(&self.name, &self.dead, id, Some(count))
            .await
    }

    async fn receive_dead(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        let dead = self.dead.clone();
        let now = self.now_micros();
        let visibility = micros(visibility.min(MAX_VISIBILITY));
        let got = self
            .db
            .write(false, move |t| {
                receive_in(t, &dead, None, u32::MAX, now, max.max(1), visibility)
                    .map(Ok::<_, QueueError>)
            })
            .await??;
        Ok(got.messages)
    }

    async fn redrive(&self, max: usize) -> Result<usize, QueueError> {
        let (queue, dead) = (self.name.clone(), self.dead.clone());
        let now = self.now_micros();
        let moved = self
            .db
            .write(true, move |t| {
                let (ids, _) = visible(t, &dead, i64::MAX, max)?;
                for id in &ids {
                    if let Some((_, _, body)) = remove(t, &dead, id)? {
                        insert(t, &queue, id, now, 0, &body)?;
                    }
                }
                Ok(Ok::<_, QueueError>(ids.len()))
            })
            .await??;
        self.db.notify.notify_waiters();
        Ok(moved)
    }

    fn max_receives(&self) -> u32 {
        self.max_receives
    }
}
