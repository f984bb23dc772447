//! The `admin` Lambda function: the `/v1` API behind API Gateway. Thin: the
//! router is `hookline::http::admin_router`, the same one `hookline serve` runs.

// Counted per thread, for the memory budget of transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookline::adapters::aws::init_lambda_logs();
    let platform = hookline::adapters::aws::lambda_platform().await?;
    // On AWS the default account's key is a stack parameter kept in Secrets
    // Manager (the function's environment names the secret): it is never
    // generated here, where printing it would put it in the logs.
    // The operator key likewise (without one, `/v1/operator` answers 401).
    // Both read at once, and stored at once: each is a round trip.
    use hookline::adapters::aws::secrets::key_from_env;
    let (key, operator) = tokio::try_join!(
        key_from_env("HOOKLINE_ADMIN_KEY"),
        key_from_env("HOOKLINE_OPERATOR_KEY")
    )?;
    let key = key.ok_or("neither HOOKLINE_ADMIN_KEY_SECRET nor HOOKLINE_ADMIN_KEY is set")?;
    let operator = async {
        match &operator {
            Some(k) => hookline::accounts::ensure_operator(&platform, Some(k))
                .await
                .map(|_| ()),
            None => Ok(()),
        }
    };
    tokio::try_join!(
        hookline::accounts::ensure_default(&platform, Some(&key)),
        operator
    )?;
    lambda_http::run(hookline::http::admin_router(platform)).await
}
