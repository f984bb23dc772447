//! The queue face: `handle(messages) -> outcomes`, with one retry policy and
//! two transports. `drive` feeds a handler from any `Queue` (the embedded one
//! in `hookline serve`); the Lambda `apply` function feeds it SQS events and
//! turns outcomes into visibility changes and partial batch failures.

use async_trait::async_trait;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::ports::{Queue, QueueMessage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: remove the message.
    Done,
    /// Failed for now: deliver again after this long.
    Retry(Duration),
    /// Not the message's fault: the storage it needs is unavailable (a full
    /// disk, say). Deliver again after this long without counting this
    /// receive where the queue can (one machine), so that an outage does not
    /// use up its attempts; the worker that got it pauses meanwhile.
    Postpone(Duration),
    /// Can never succeed: the handler has kept it as a dead letter in the
    /// store (`dead_letters`), with the reason, so the queue lets it go.
    Dead(String),
}

#[async_trait]
pub trait Handler: Send + Sync {
    /// One outcome per message, in order.
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Outcome>;
    /// Keeps, as a dead letter, a message the queue itself gave up on: one
    /// received `max_receives` times and never settled (its worker stopped
    /// with it each time: a crash, a timeout). Only once this answers may
    /// it leave the dead-letter queue.
    async fn keep_dead(&self, message: &QueueMessage) -> Result<(), String>;
}

/// Moves what the queue dead-lettered by itself into the handler's keeping
/// (`Handler::keep_dead`); answers how many were kept.
pub async fn drain_dead(queue: &dyn Queue, handler: &dyn Handler) -> Result<usize, String> {
    let mut kept = 0;
    loop {
        let dead = queue
            .receive_dead(10, VISIBILITY)
            .await
            .map_err(|e| e.to_string())?;
        if dead.is_empty() {
            return Ok(kept);
        }
        for m in &dead {
            handler.keep_dead(m).await?;
            queue
                .delete_dead(&m.receipt)
                .await
                .map_err(|e| e.to_string())?;
            kept += 1;
        }
    }
}

/// Runs `task` every `period` until `shutdown` turns true.
async fn every<F: std::future::Future<Output = ()>>(
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut task: impl FnMut() -> F,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        task().await;
    }
}

/// Removes expired items from `store` every minute until `shutdown` turns
/// true, so that a steady load reaches a steady size (one machine).
pub async fn sweep_forever(store: Arc<dyn crate::ports::Store>, shutdown: watch::Receiver<bool>) {
    every(Duration::from_secs(60), shutdown, || async {
        match store.sweep_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "expired items swept"),
            Err(error) => {
                tracing::warn!(%error, "expired items could not be swept; will try again")
            }
        }
    })
    .await
}

/// `drain_dead` every few seconds until `shutdown` turns true (one machine;
/// on AWS the dead-letter queue is an event source of the function).
pub async fn drain_dead_forever(
    queue: Arc<dyn Queue>,
    handler: Arc<dyn Handler>,
    shutdown: watch::Receiver<bool>,
) {
    every(Duration::from_secs(5), shutdown, || async {
        match drain_dead(&*queue, &*handler).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                kept = n,
                "messages the queue gave up on kept as dead letters"
            ),
            Err(error) => tracing::error!(%error, "dead letters could not be kept; will try again"),
        }
    })
    .await
}

/// Exponential backoff for internal work: 2 s, 8 s, 32 s ... up to an hour,
/// with ±20 % jitter so that a burst of failures does not come back as one.
/// Across the 8 receives before a message is dead-lettered that waits about
/// 1.8 hours in all: a store outage of minutes does not dead-letter every
/// request accepted meanwhile (it did with 1 s doublings: 2 minutes).
pub fn backoff(receive_count: u32) -> Duration {
    let base = (2.0 * 4f64.powi(receive_count.saturating_sub(1).min(16) as i32)).min(3600.0);
    let jitter = rand::rng().random_range(0.8..1.2);
    Duration::from_secs_f64(base * jitter)
}

/// How long a received message stays hidden while a handler works on it.
pub const VISIBILITY: Duration = Duration::from_secs(60);

/// Who removes a batch's messages from their queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The worker that received them (`drive`, one machine).
    ByWorker,
    /// The event source that invoked the function (Lambda's SQS event
    /// source: it deletes every message not reported failed).
    BySource,
}

/// Carries out the outcomes of one batch on the queue it came from: the
/// one settle routine of every queue on both hosts. A handler that answers
/// too few outcomes gets the rest retried. Answers the ids of the messages
/// that stay queued (for Lambda's partial batch failures).
pub async fn settle(
    queue: &dyn Queue,
    messages: &[QueueMessage],
    outcomes: &[Outcome],
    removal: Removal,
) -> Vec<String> {
    let settle_one = async |i: usize, message: &QueueMessage| {
        let outcome = outcomes
            .get(i)
            .cloned()
            .unwrap_or(Outcome::Retry(backoff(message.receive_count)));
        let (result, stays) = match &outcome {
            Outcome::Done | Outcome::Dead(_) => {
                if let Outcome::Dead(reason) = &outcome {
                    tracing::warn!(message_id = %message.id, reason, "dead letter kept");
                }
                match removal {
                    Removal::ByWorker => (queue.delete(&message.receipt).await, false),
                    Removal::BySource => (Ok(()), false),
                }
            }
            Outcome::Retry(after) => (queue.retry_after(&message.receipt, *after).await, true),
            Outcome::Postpone(after) => (queue.postpone(&message.receipt, *after).await, true),
        };
        if let Err(e) = result {
            // The message comes back after its visibility timeout: nothing is lost.
            tracing::warn!(message_id = %message.id, error = %e, ?outcome, "could not settle message");
        }
        stays.then(|| message.id.clone())
    };
    futures::future::join_all(messages.iter().enumerate().map(|(i, m)| settle_one(i, m)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// `handler.handle`, where a panic that escapes the handler's own care
/// retries the batch (no outcomes: `settle` retries each) instead of ending
/// the loop that feeds it.
pub async fn handle_caught(handler: &dyn Handler, messages: &[QueueMessage]) -> Vec<Outcome> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(handler.handle(messages))
        .catch_unwind()
        .await
        .unwrap_or_else(|p| {
            let what = crate::transforms::pool::panic_message(&*p);
            tracing::error!(panic = %what, "a queue handler panicked; its batch will be retried");
            Vec::new()
        })
}

/// How long a worker pauses after a batch with postponed messages: long
/// enough not to spin through the queue while the storage is away, short
/// enough that a worker whose transform threads were busy is soon back.
const PAUSE: Duration = Duration::from_secs(1);

/// Feeds `handler` from `queue` until `shutdown` turns true; the batch in hand
/// is finished first. After a batch the handler postponed part of (its
/// storage unavailable, its transform threads busy), the worker pauses.
pub async fn drive(
    queue: Arc<dyn Queue>,
    handler: Arc<dyn Handler>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pausing = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let received = tokio::select! {
            r = queue.receive(10, VISIBILITY, Duration::from_secs(1)) => r,
            _ = shutdown.changed() => return,
        };
        match received {
            Ok(messages) if messages.is_empty() => {}
            Ok(messages) => {
                let outcomes = handle_caught(&*handler, &messages).await;
                settle(&*queue, &messages, &outcomes, Removal::ByWorker).await;
                if outcomes.iter().any(|o| matches!(o, Outcome::Postpone(_))) {
                    if !pausing {
                        tracing::warn!("work postponed; the worker pauses between batches");
                    }
                    pausing = true;
                    tokio::select! {
                        _ = tokio::time::sleep(PAUSE) => {}
                        _ = shutdown.changed() => return,
                    }
                } else {
                    pausing = false;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_ceiling() {
        for n in 1..=20 {
            let d = backoff(n).as_secs_f64();
            let base = (2.0 * 4f64.powi(n as i32 - 1)).min(3600.0);
            assert!(d >= base * 0.8 && d <= base * 1.2, "attempt {n}: {d}");
        }
        assert!(backoff(0) <= Duration::from_millis(2400));
        // Before the 8th and last receive: over an hour of waiting in all.
        let waited: f64 = (1..8).map(|n| backoff(n).as_secs_f64()).sum();
        assert!(waited > 3600.0, "{waited}");
    }
}
