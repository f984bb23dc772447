//! SQS events in, partial batch failures out. Outcomes become what SQS
//! understands: a retry changes the message's visibility to its backoff and
//! reports it failed; a dead message, kept in the store as a dead letter by
//! the handler, is done as far as SQS is concerned.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use hookline::ports::{Queue, QueueMessage};
use hookline::work::{Handler, Outcome};

pub fn messages(event: SqsEvent) -> Vec<QueueMessage> {
    event
        .records
        .into_iter()
        .map(|r| QueueMessage {
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            id: r.message_id.unwrap_or_default(),
            receipt: r.receipt_handle.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect()
}

pub async fn process(
    event: SqsEvent,
    handler: &dyn Handler,
    queue: &dyn Queue,
) -> SqsBatchResponse {
    let messages = messages(event);
    let outcomes = hookline::work::handle_caught(handler, &messages).await;
    let mut response = SqsBatchResponse::default();
    for (i, m) in messages.iter().enumerate() {
        let failed = match outcomes.get(i) {
            Some(Outcome::Done) => false,
            Some(Outcome::Retry(after)) => {
                if let Err(e) = queue.retry_after(&m.receipt, *after).await {
                    // It still comes back, after the queue's visibility timeout.
                    tracing::warn!(message_id = %m.id, error = %e, "could not set the retry delay");
                }
                true
            }
            // Kept in the store by the handler: SQS deletes it as done.
            Some(Outcome::Dead(reason)) => {
                tracing::warn!(message_id = %m.id, reason, "dead letter kept");
                false
            }
            None => true,
        };
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = m.id.clone();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
