//! The AWS adapters: one DynamoDB table for every item, SQS for the queues.
//!
//! Table layout: string keys `pk` (hash) and `sk` (range); the document in `d`
//! (a native DynamoDB map, written by serde_dynamo), its version in `v`,
//! counters in `n`, and the expiry in `ttl` (epoch seconds, the table's TTL
//! attribute). DynamoDB deletes expired items only eventually, so every read
//! filters them out as well.

mod dynamo;
mod sqs;

pub use dynamo::{DynamoStore, create_table};
pub use sqs::{SqsQueue, create_queue};
