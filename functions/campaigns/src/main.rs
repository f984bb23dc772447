//! The `campaigns` Lambda function: EventBridge Scheduler's tick (every
//! minute: start the campaigns that are due), and the campaign queue's SQS
//! events (a page of a segment to match, a batch to post) and its
//! dead-letter queue's.

use hookline::scheduler::CampaignHandler;
use lambda_runtime::{LambdaEvent, service_fn};

// Counted per thread, for the memory budget of `where` expressions.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline::adapters::aws::init_lambda_logs();
    let platform = hookline::adapters::aws::lambda_platform().await?;
    let handler = CampaignHandler::new(platform.clone());
    let (platform, handler) = (&platform, &handler);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            hookline::adapters::aws::lambda::on_campaign_event(platform, handler, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
