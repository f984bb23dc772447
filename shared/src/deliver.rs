//! The delivery queue's dispatcher: each message (`messages::Delivery`)
//! to `delivery::attempt`, and the outcomes the queue settles. Deliveries
//! settle themselves (the next attempt is a new message): a message is
//! retried only when the store or a queue failed it.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

use crate::Platform;
use crate::delivery::attempt::{deliver, keep_dead_message, release};
use crate::messages::Delivery;
use crate::ports::QueueMessage;
use crate::work::{Handler, Outcome, backoff};

pub struct DeliveryHandler {
    platform: Arc<Platform>,
}

impl DeliveryHandler {
    pub fn new(platform: Arc<Platform>) -> Self {
        Self { platform }
    }
}

#[async_trait]
impl Handler for DeliveryHandler {
    /// A batch's deliveries go out at once: each waits on its endpoint.
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Outcome> {
        futures::future::join_all(messages.iter().map(|m| self.one(m))).await
    }

    async fn keep_dead(&self, m: &QueueMessage) -> Result<(), String> {
        let reason = format!(
            "received {} times and never finished: its worker stopped with it (a crash or a time limit)",
            self.platform.delivery_queue.max_receives()
        );
        keep_dead_message(&self.platform, &m.body, &reason)
            .await
            .map_err(|e| e.to_string())
    }
}

impl DeliveryHandler {
    async fn one(&self, m: &QueueMessage) -> Outcome {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "message",
            queue = "delivery",
            message_id = %m.id,
            receive_count = m.receive_count,
            account = tracing::field::Empty,
            webhook = tracing::field::Empty,
            event_id = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        async {
            let d = match serde_json::from_str::<Delivery>(&m.body) {
                Ok(d) => d,
                Err(e) => {
                    let reason = format!("not a delivery message: {e}");
                    return match keep_dead_message(&self.platform, &m.body, &reason).await {
                        Ok(()) => Outcome::Dead(reason),
                        Err(_) => Outcome::Retry(backoff(m.receive_count)),
                    };
                }
            };
            let current = tracing::Span::current();
            current.record("account", d.account.as_str());
            current.record("webhook", d.webhook_id.as_str());
            current.record("event_id", event_id(&d.event));
            current.record("attempt", d.attempt);
            let delivered = std::panic::AssertUnwindSafe(deliver(&self.platform, &d));
            match futures::FutureExt::catch_unwind(delivered).await {
                Ok(Ok(())) => Outcome::Done,
                Ok(Err(error)) => {
                    // The store or a queue, not the endpoint: the message
                    // comes back without using an attempt of the delivery.
                    tracing::warn!(%error, "delivery could not be settled; will retry");
                    Outcome::Retry(backoff(m.receive_count))
                }
                Err(panic) => {
                    let what = crate::transforms::pool::panic_message(&*panic);
                    tracing::error!(panic = %what, "a delivery panicked; it will be retried");
                    Outcome::Retry(backoff(m.receive_count))
                }
            }
        }
        .instrument(span)
        .await
    }
}

fn event_id(event: &serde_json::Map<String, serde_json::Value>) -> &str {
    event.get("id").and_then(|v| v.as_str()).unwrap_or_default()
}

/// `release` every `period` until `shutdown` (one machine).
pub async fn release_forever(
    p: Arc<Platform>,
    period: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        match release(&p, Duration::from_secs(10)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(released = n, "parked deliveries released"),
            Err(error) => {
                tracing::warn!(%error, "parked deliveries could not be released; will retry")
            }
        }
    }
}
