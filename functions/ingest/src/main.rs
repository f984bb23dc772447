//! The `ingest` Lambda function: trigger URLs behind API Gateway. Thin: the
//! router is `hookline::http::ingest_router`, the same one `hookline serve` runs.

// Counted per thread, for the memory budget of transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline::adapters::aws::init_lambda_logs();
    let platform = hookline::adapters::aws::lambda_platform().await?;
    hookline::adapters::aws::apigw::run(hookline::http::ingest_router(platform)).await
}
