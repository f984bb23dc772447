//! The queue-driven Lambda functions (`apply`, `deliver`): SQS events in,
//! partial batch failures out, through the same settle
//! routine as the one-machine worker (`work::settle`): a retry changes the
//! message's visibility to its backoff and reports it failed; a dead message,
//! kept in the store as a dead letter by the handler, is done as far as SQS
//! is concerned.

use crate::ports::{Queue, QueueMessage};
use crate::work::{Handler, Removal};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

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

/// Whether an event came from the dead-letter queue at `dead_queue_url`
/// (the function is that queue's event source too: what SQS dead-lettered
/// by itself, after the function stopped with it every time, is kept).
pub fn from_dead_letter_queue(event: &SqsEvent, dead_queue_url: Option<&str>) -> bool {
    let Some(name) = dead_queue_url.and_then(|u| u.rsplit('/').next()) else {
        return false;
    };
    event.records.first().is_some_and(|r| {
        r.event_source_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next())
            == Some(name)
    })
}

/// Messages from the dead-letter queue are kept as dead letters (in the
/// store); those that cannot be are reported failed, to come again.
pub async fn keep_dead(event: SqsEvent, handler: &dyn Handler) -> SqsBatchResponse {
    let mut failed = Vec::new();
    for m in messages(event) {
        if let Err(error) = handler.keep_dead(&m).await {
            tracing::error!(message_id = %m.id, %error, "a dead letter could not be kept; will retry");
            failed.push(m.id);
        }
    }
    failures(failed)
}

/// Handles an SQS event of `queue` (or of its dead-letter queue, at
/// `dead_queue_url`, whose messages are kept as dead letters).
pub async fn process(
    event: SqsEvent,
    handler: &dyn Handler,
    queue: &dyn Queue,
    dead_queue_url: Option<&str>,
) -> SqsBatchResponse {
    if from_dead_letter_queue(&event, dead_queue_url) {
        return keep_dead(event, handler).await;
    }
    let messages = messages(event);
    let outcomes = crate::work::handle_caught(handler, &messages).await;
    let stay = crate::work::settle(queue, &messages, &outcomes, Removal::BySource).await;
    failures(stay)
}

/// Reports the messages `ids` failed: SQS keeps them (and deletes the rest).
fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in ids {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// The `deliver` function's event: the delivery queue's (or its dead-letter
/// queue's) SQS records, or the schedule's tick (any other event), which
/// releases parked deliveries that are due.
pub async fn on_delivery_event(
    platform: &crate::Platform,
    handler: &dyn Handler,
    event: serde_json::Value,
) -> Result<serde_json::Value, String> {
    if event.get("Records").is_some() {
        let sqs: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
        let dlq = std::env::var("HOOKLINE_DELIVERY_DLQ_URL").ok();
        let response = process(sqs, handler, &*platform.delivery_queue, dlq.as_deref()).await;
        return serde_json::to_value(response).map_err(|e| e.to_string());
    }
    // Well within the function's 30 s, so that a run is never cut off
    // between a send and its delete.
    let released = crate::delivery::attempt::release(platform, std::time::Duration::from_secs(20))
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "released": released }))
}

/// The campaigns function's events: SQS records of the campaign queue (or
/// its dead-letter queue), or the scheduler's tick, which starts the
/// campaigns that are due.
pub async fn on_campaign_event(
    platform: &crate::Platform,
    handler: &dyn Handler,
    event: serde_json::Value,
) -> Result<serde_json::Value, String> {
    if event.get("Records").is_some() {
        let sqs: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
        let dlq = std::env::var("HOOKLINE_CAMPAIGN_DLQ_URL").ok();
        let response = process(sqs, handler, &*platform.campaign_queue, dlq.as_deref()).await;
        return serde_json::to_value(response).map_err(|e| e.to_string());
    }
    let report = crate::campaigns::run::tick(platform, platform.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(report).map_err(|e| e.to_string())
}
