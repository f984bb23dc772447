//! The `admin` Lambda function: the `/v1` API behind API Gateway. Thin: the
//! router is `hookline::http::admin_router`, the same one `hookline serve` runs.

use std::sync::Arc;

use hookline::Platform;
use hookline::adapters::aws::secrets::{key_from_env, key_in_env};
use hookline::http::ApiError;
use tokio::sync::OnceCell;

// Counted per thread, for the memory budget of transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookline::adapters::aws::init_lambda_logs();
    if !key_in_env("HOOKLINE_ADMIN_KEY") {
        return Err("neither HOOKLINE_ADMIN_KEY_SECRET nor HOOKLINE_ADMIN_KEY is set".into());
    }
    let platform = hookline::adapters::aws::lambda_platform().await?;
    let ready = Arc::new(OnceCell::new());
    let keyed = platform.clone();
    let router = hookline::http::admin_router_after(platform, move || {
        let (platform, ready) = (keyed.clone(), ready.clone());
        async move {
            match ready.get_or_try_init(|| keys(&platform)).await {
                Ok(()) => Ok(()),
                Err(error) => Err(not_ready(error)),
            }
        }
    });
    lambda_http::run(router).await
}

/// The keys, read from Secrets Manager (the function's environment names
/// the secrets), and the accounts made sure of them: at the first `/v1`
/// request, not before the first poll. The default account's key is a
/// stack parameter: never generated here, where printing it would put it
/// in the logs. The operator key likewise (without one, `/v1/operator`
/// answers 401). Read at once, with what the store keeps of them: each is
/// a round trip.
async fn keys(platform: &Platform) -> Result<(), String> {
    use hookline::accounts::{ensure_default_with, ensure_operator_with};
    let key = async {
        match key_from_env("HOOKLINE_ADMIN_KEY").await? {
            Some(key) => Ok(Some(key)),
            None => Err("HOOKLINE_ADMIN_KEY is not set".to_string()),
        }
    };
    let admin = async {
        ensure_default_with(platform, key)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let operator = async {
        // Without one, nothing is kept (and none generated).
        if !key_in_env("HOOKLINE_OPERATOR_KEY") {
            return Ok(());
        }
        ensure_operator_with(platform, key_from_env("HOOKLINE_OPERATOR_KEY"))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tokio::try_join!(admin, operator).map(|_| ())
}

/// A `/v1` request answers 503 while the keys cannot be read (the next one
/// tries again), and the log says why.
fn not_ready(error: String) -> ApiError {
    tracing::error!(%error, "the admin function cannot set up its keys");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the admin API cannot read its keys now: the function's log says why",
    )
}
