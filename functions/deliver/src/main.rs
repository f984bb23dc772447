//! The `deliver` Lambda function: the delivery queue's SQS events (one
//! attempt per message), its dead-letter queue's, and the schedule's tick
//! that releases parked deliveries when they are due.

use hookline::deliver::DeliveryHandler;
use lambda_runtime::{LambdaEvent, service_fn};

// Counted per thread, for the memory budget of payload transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline::adapters::aws::init_lambda_logs();
    let platform = hookline::adapters::aws::lambda_platform().await?;
    let handler = DeliveryHandler::new(platform.clone());
    let (platform, handler) = (&platform, &handler);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            hookline::adapters::aws::lambda::on_delivery_event(platform, handler, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
