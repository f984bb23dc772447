//! The `apply` Lambda function: the apply queue's SQS events.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hookline::apply::ApplyHandler;
use lambda_runtime::{LambdaEvent, service_fn};

// Counted per thread, for the memory budget of transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline::adapters::aws::init_lambda_logs();
    let platform = hookline::adapters::aws::lambda_platform().await?;
    let handler = ApplyHandler::new(platform.clone());
    let handler = &handler;
    let queue = &*platform.apply_queue;
    let dlq = std::env::var("HOOKLINE_APPLY_DLQ_URL").ok();
    let dlq = &dlq;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            hookline::adapters::aws::lambda::process(event.payload, handler, queue, dlq.as_deref())
                .await,
        )
    }))
    .await
}
