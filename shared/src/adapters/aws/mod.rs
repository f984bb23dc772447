//! The AWS adapters: one DynamoDB table for every item, SQS for the queues.
//!
//! Table layout: string keys `pk` (hash) and `sk` (range); the document in `d`
//! (a native DynamoDB map, written by serde_dynamo), its version in `v`,
//! counters in `n`, and the expiry in `ttl` (epoch seconds, the table's TTL
//! attribute). DynamoDB deletes expired items only eventually, so every read
//! filters them out as well.

mod dynamo;
pub mod lambda;
pub mod secrets;
mod sqs;

pub use dynamo::{DynamoStore, create_table};
pub use sqs::{SqsQueue, create_queue};

use std::sync::Arc;

use crate::Platform;
use crate::config::Settings;
use crate::platform::{APPLY_MAX_RECEIVES, CAMPAIGN_MAX_RECEIVES, DELIVERY_MAX_RECEIVES};
use crate::ports::Clock;

/// The platform on the DynamoDB table and SQS queues named by the
/// environment that `template.yaml` gives every function.
pub async fn platform_from_env(settings: Settings) -> Result<Arc<Platform>, String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let config = sdk_config().await;
    let clock: Arc<dyn Clock> = Arc::new(crate::ports::SystemClock);
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        &var("HOOKLINE_TABLE")?,
        clock.clone(),
    );
    let apply = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        var("HOOKLINE_APPLY_QUEUE_URL")?,
        var("HOOKLINE_APPLY_DLQ_URL")?,
        APPLY_MAX_RECEIVES,
    );
    let delivery = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        var("HOOKLINE_DELIVERY_QUEUE_URL")?,
        var("HOOKLINE_DELIVERY_DLQ_URL")?,
        DELIVERY_MAX_RECEIVES,
    );
    let campaigns = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        var("HOOKLINE_CAMPAIGN_QUEUE_URL")?,
        var("HOOKLINE_CAMPAIGN_DLQ_URL")?,
        CAMPAIGN_MAX_RECEIVES,
    );
    Ok(Platform::new(
        Arc::new(store),
        crate::platform::Queues {
            apply: Arc::new(apply),
            delivery: Arc::new(delivery),
            campaigns: Arc::new(campaigns),
        },
        clock,
        settings,
    ))
}

/// The SDK's configuration from the environment (region, credentials,
/// endpoints), loaded once per process.
pub async fn sdk_config() -> aws_config::SdkConfig {
    static CONFIG: tokio::sync::OnceCell<aws_config::SdkConfig> =
        tokio::sync::OnceCell::const_new();
    CONFIG
        .get_or_init(|| {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(https_client())
                .load()
        })
        .await
        .clone()
}

/// The SDK's HTTPS client: rustls with ring, as the egress client's (the
/// SDK's default, aws-lc, would add megabytes to every function).
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The platform of a Lambda function, from the environment `template.yaml` sets.
pub async fn lambda_platform() -> Result<Arc<Platform>, String> {
    platform_from_env(Settings::from_env()?).await
}

/// JSON logs to stdout, as CloudWatch takes them; `RUST_LOG` filters.
pub fn init_lambda_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // Each line with the ids of its request or message (`http::traced`,
        // `apply::ApplyHandler`).
        .with_current_span(true)
        .with_span_list(false)
        .without_time() // CloudWatch stamps each line
        .init();
}
