//! The AWS adapters: one DynamoDB table for every item, SQS for the queues.
//!
//! Table layout: string keys `pk` (hash) and `sk` (range); the document in `d`
//! (a native DynamoDB map, written by serde_dynamo), its version in `v`,
//! counters in `n`, and the expiry in `ttl` (epoch seconds, the table's TTL
//! attribute). DynamoDB deletes expired items only eventually, so every read
//! filters them out as well.

pub mod apigw;
mod dynamo;
mod http;
pub mod lambda;
pub mod secrets;
mod sqs;

pub use dynamo::{DynamoStore, create_table};
pub use http::https_client;
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

/// The SDK's configuration as Lambda gives it, made once per process: the
/// region and credentials from the environment (Lambda sets both), and
/// `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_<SERVICE>` when set (moto, in
/// tests). Nothing else is looked for: no profile files, instance
/// metadata, SSO or STS, whose code every function would otherwise carry
/// (see `docs/performance.md`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    static CONFIG: std::sync::OnceLock<aws_config::SdkConfig> = std::sync::OnceLock::new();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    CONFIG
        .get_or_init(|| {
            let mut config = aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .credentials_provider(SharedCredentialsProvider::new(
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                ))
                .http_client(https_client())
                .timeout_config(timeouts(ANSWER_WITHIN));
            config.set_region(
                var("AWS_REGION")
                    .or_else(|| var("AWS_DEFAULT_REGION"))
                    .map(aws_config::Region::new),
            );
            config.service_config(EnvironmentOnly).build()
        })
        .clone()
}

/// How long one attempt of a call may wait for its answer. DynamoDB,
/// SQS and Secrets Manager answer in milliseconds; an attempt that a
/// service or a network leaves unanswered is given up after this and tried
/// again (the SDK's standard retries), rather than holding the function
/// until its own timeout. A long poll of SQS gets its wait on top.
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The SDK's timeouts: a connection within 3 s, an answer within `answer`.
pub fn timeouts(answer: std::time::Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(answer)
        .build()
}

/// Settings of one service from the environment alone, as the SDK names
/// them: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`.
#[derive(Debug)]
struct EnvironmentOnly;

impl aws_types::service_config::LoadServiceConfig for EnvironmentOnly {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let service = key.service_id().to_uppercase().replace(' ', "_");
        var(&format!("{}_{service}", key.env())).or_else(|| var(key.env()))
    }
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
