use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use std::time::Duration;

use crate::ports::queue::{
    MAX_DELAY, MAX_MESSAGE_BYTES, MAX_VISIBILITY, Queue, QueueError, QueueMessage,
};

/// An SQS queue whose redrive policy sends a message to `dead_url` after
/// `max_receives` receives.
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_url: String,
    max_receives: u32,
}

/// SQS's ceilings on one `SendMessageBatch`: entries, and their bodies' bytes.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = MAX_MESSAGE_BYTES;

/// `messages` cut into batches SQS takes: at most 10 entries and 1 MiB each.
fn batches(messages: &[(String, Duration)]) -> Vec<&[(String, Duration)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (body, _)) in messages.iter().enumerate() {
        if i > start && (i - start == BATCH_ENTRIES || bytes + body.len() > BATCH_BYTES) {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// Times the entries SQS failed on its side are sent again.
const BATCH_RETRIES: usize = 3;

impl SqsQueue {
    /// Sends one batch; entries SQS fails on its side are sent again (up to
    /// 3 times). Answers the ids in order.
    async fn send_chunk(&self, chunk: &[(String, Duration)]) -> Result<Vec<String>, QueueError> {
        let mut ids: Vec<Option<String>> = vec![None; chunk.len()];
        for _ in 0..=BATCH_RETRIES {
            let entries = chunk
                .iter()
                .enumerate()
                .filter(|(i, _)| ids[*i].is_none())
                .map(|(i, (body, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(secs(*delay, MAX_DELAY))
                        .build()
                        .map_err(|e| QueueError::Backend(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(backend)?;
            for sent in out.successful {
                if let Some(slot) = sent.id.parse::<usize>().ok().and_then(|i| ids.get_mut(i)) {
                    *slot = Some(sent.message_id);
                }
            }
            if let Some(refused) = out.failed.iter().find(|f| f.sender_fault) {
                return Err(QueueError::Backend(format!(
                    "batch entry refused: {} {}",
                    refused.code,
                    refused.message.clone().unwrap_or_default()
                )));
            }
            if ids.iter().all(Option::is_some) {
                return Ok(ids.into_iter().flatten().collect());
            }
        }
        Err(QueueError::Backend(format!(
            "SQS failed part of a batch {} times",
            BATCH_RETRIES + 1
        )))
    }

    pub fn new(client: Client, url: String, dead_url: String, max_receives: u32) -> Self {
        Self {
            client,
            url,
            dead_url,
            max_receives,
        }
    }
}

/// Creates a queue and its dead-letter queue the way `template.yaml` does.
pub async fn create_queue(
    client: &Client,
    name: &str,
    max_receives: u32,
) -> Result<(String, String), QueueError> {
    let dead = client
        .create_queue()
        .queue_name(format!("{name}-dead"))
        .attributes(
            QueueAttributeName::MaximumMessageSize,
            MAX_MESSAGE_BYTES.to_string(),
        )
        .send()
        .await
        .map_err(backend)?;
    let dead_url = dead.queue_url.unwrap_or_default();
    let attrs = client
        .get_queue_attributes()
        .queue_url(&dead_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(backend)?;
    let dead_arn = attrs
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let policy =
        serde_json::json!({"deadLetterTargetArn": dead_arn, "maxReceiveCount": max_receives})
            .to_string();
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .attributes(
            QueueAttributeName::MaximumMessageSize,
            MAX_MESSAGE_BYTES.to_string(),
        )
        .send()
        .await
        .map_err(backend)?;
    Ok((queue.queue_url.unwrap_or_default(), dead_url))
}

fn backend<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> QueueError {
    match e.code() {
        Some("ReceiptHandleIsInvalid" | "InvalidParameterValue" | "MessageNotInflight") => {
            QueueError::StaleReceipt
        }
        Some(code) => QueueError::Backend(format!("{code}: {}", e.message().unwrap_or_default())),
        None => QueueError::Backend(format!("{e:?}")),
    }
}

/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

fn secs(d: Duration, max: Duration) -> i32 {
    d.min(max).as_secs() as i32
}

fn check_size(body: &str) -> Result<(), QueueError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(QueueError::TooLarge(body.len()));
    }
    Ok(())
}

impl SqsQueue {
    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        let wait = wait.min(MAX_WAIT);
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(secs(visibility, MAX_VISIBILITY))
            .wait_time_seconds(secs(wait, MAX_WAIT))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default()
                    .timeout_config(super::timeouts(wait + super::ANSWER_WITHIN)),
            )
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| QueueMessage {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: String, delay: Duration) -> Result<String, QueueError> {
        check_size(&body)?;
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(secs(delay, MAX_DELAY))
            .send()
            .await
            .map_err(backend)?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn send_batch(
        &self,
        messages: Vec<(String, Duration)>,
    ) -> Result<Vec<String>, QueueError> {
        for (body, _) in &messages {
            check_size(body)?;
        }
        let mut ids = Vec::with_capacity(messages.len());
        for chunk in batches(&messages) {
            ids.extend(self.send_chunk(chunk).await?);
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        self.receive_from(&self.url, max, visibility, wait).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(after, MAX_VISIBILITY))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn dead_letter(&self, message: &QueueMessage) -> Result<(), QueueError> {
        // Copy first, then delete: a crash between the two leaves a duplicate,
        // never a loss.
        self.client
            .send_message()
            .queue_url(&self.dead_url)
            .message_body(&message.body)
            .send()
            .await
            .map_err(backend)?;
        self.delete(&message.receipt).await
    }

    async fn receive_dead(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        self.receive_from(&self.dead_url, max, visibility, Duration::ZERO)
            .await
    }

    async fn delete_dead(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.dead_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn redrive(&self, max: usize) -> Result<usize, QueueError> {
        // SQS's StartMessageMoveTask moves everything and is asynchronous; a
        // bounded copy-then-delete works the same on moto and on AWS.
        let mut moved = 0;
        while moved < max {
            let batch = self
                .receive_from(
                    &self.dead_url,
                    (max - moved).min(10),
                    Duration::from_secs(30),
                    Duration::ZERO,
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                self.client
                    .send_message()
                    .queue_url(&self.url)
                    .message_body(&m.body)
                    .send()
                    .await
                    .map_err(backend)?;
                self.client
                    .delete_message()
                    .queue_url(&self.dead_url)
                    .receipt_handle(&m.receipt)
                    .send()
                    .await
                    .map_err(backend)?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    fn max_receives(&self) -> u32 {
        self.max_receives
    }
}
