//! A work queue with delivery at least once. A message received and neither
//! deleted nor given a new visibility comes back after its visibility timeout;
//! a message received more than `max_receives` times goes to the dead-letter
//! queue instead of being delivered again.

use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// Names this receipt of the message; needed to delete it or delay it.
    pub receipt: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("unknown or stale receipt")]
    StaleReceipt,
    #[error("message too large: {0} bytes")]
    TooLarge(usize),
    #[error("queue unavailable: {0}")]
    Backend(String),
}

/// SQS's ceiling on a message's delay; longer waits use visibility instead.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's ceiling on a visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// SQS's ceiling on a message's size, with the queue's `MaximumMessageSize`
/// at its maximum (as `template.yaml` and `create_queue` set it; SQS's
/// default is 256 KiB). Ingest accepts bodies up to 256 KiB, and one queued
/// with its envelope, or a form whose control characters become `\u0001`,
/// must still fit.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message, visible after `delay` (at most [`MAX_DELAY`]), and
    /// answers its id once it is durably queued.
    async fn send(&self, body: String, delay: Duration) -> Result<String, QueueError>;
    /// Sends several messages; answers their ids, in order, once every one
    /// is queued. On an error some may be queued already (SQS cannot take
    /// a batch back; the embedded queue queues all or none): the caller
    /// sends the whole again, so its messages must be safe to apply twice.
    async fn send_batch(
        &self,
        messages: Vec<(String, Duration)>,
    ) -> Result<Vec<String>, QueueError>;
    /// Up to `max` visible messages, hidden for `visibility` once received.
    /// Waits up to `wait` for the first one.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError>;
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
    /// Makes a received message visible again after `after` (at most [`MAX_VISIBILITY`]).
    async fn retry_after(&self, receipt: &str, after: Duration) -> Result<(), QueueError>;
    /// `retry_after`, without counting the receive that got the message
    /// where the queue can (the embedded one; SQS cannot).
    async fn postpone(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.retry_after(receipt, after).await
    }
    /// Moves a received message to the dead-letter queue now.
    async fn dead_letter(&self, message: &QueueMessage) -> Result<(), QueueError>;
    /// Receives from the dead-letter queue, hiding what it answers for `visibility`.
    async fn receive_dead(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError>;
    /// Removes a message received from the dead-letter queue (once it is
    /// kept elsewhere).
    async fn delete_dead(&self, receipt: &str) -> Result<(), QueueError>;
    /// Moves up to `max` dead letters back to the queue; answers how many moved.
    async fn redrive(&self, max: usize) -> Result<usize, QueueError>;
    /// How many receives a message gets before it is dead-lettered.
    fn max_receives(&self) -> u32;
    /// Why the queue cannot take messages now (its log cannot be written,
    /// say), if it cannot.
    fn trouble(&self) -> Option<String> {
        None
    }
}
