//! The `admin` Lambda function: the `/v1` API behind API Gateway. Thin: the
//! router is `hookline::http::admin_router_after`, the admin routes that
//! `hookline serve` runs, with the keys read first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline::Platform;
use hookline::adapters::aws::secrets::{key_from_env, key_in_env};
use hookline::http::ApiError;
use tokio::sync::Mutex;

// Counted per thread, for the memory budget of transforms.
#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline::adapters::aws::init_lambda_logs();
    if !key_in_env("HOOKLINE_ADMIN_KEY") {
        return Err("neither HOOKLINE_ADMIN_KEY_SECRET nor HOOKLINE_ADMIN_KEY is set".into());
    }
    let platform = hookline::adapters::aws::lambda_platform().await?;
    let every = match std::env::var("HOOKLINE_KEYS_READ_EVERY") {
        Ok(secs) => Duration::from_secs(
            secs.parse()
                .map_err(|_| format!("HOOKLINE_KEYS_READ_EVERY is {secs:?}: use whole seconds"))?,
        ),
        Err(_) => KEYS_READ_EVERY,
    };
    let read_at = Arc::new(Mutex::new(None));
    let keyed = platform.clone();
    let router = hookline::http::admin_router_after(platform, move || {
        let (platform, read_at) = (keyed.clone(), read_at.clone());
        async move { ready(platform, &read_at, every).await }
    });
    hookline::adapters::aws::apigw::run(router).await
}

/// How long keys read are used before they are read again: a new
/// `AdminKey` or `OperatorKey` (the secret changed by a deploy) takes
/// effect within it, in every running instance.
const KEYS_READ_EVERY: Duration = Duration::from_secs(300);

/// The keys as of at most `every` ago. The first read is waited for (a
/// `/v1` request answers 503 while it fails); later ones run beside the
/// requests, which keep the keys read before until they succeed.
async fn ready(
    platform: Arc<Platform>,
    read_at: &Mutex<Option<Instant>>,
    every: Duration,
) -> Result<(), ApiError> {
    let mut read_at = read_at.lock().await;
    match *read_at {
        Some(at) if at.elapsed() < every => {}
        Some(_) => {
            *read_at = Some(Instant::now());
            tokio::spawn(async move {
                if let Err(error) = keys(&platform).await {
                    tracing::warn!(%error, "the admin function could not read its keys again: it keeps those it has");
                }
            });
        }
        None => {
            keys(&platform).await.map_err(not_ready)?;
            *read_at = Some(Instant::now());
        }
    }
    Ok(())
}

/// The keys, read from Secrets Manager (the function's environment names
/// the secrets), and the accounts made sure of them: at the first `/v1`
/// request, not before the first poll, and again every few minutes. The
/// default account's key is a stack parameter: never generated here, where
/// printing it would put it in the logs. The operator key likewise
/// (without one, `/v1/operator` answers 401). Read at once, with what the
/// store keeps of them: each is a round trip.
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
