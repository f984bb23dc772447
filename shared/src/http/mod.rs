//! The HTTP faces. Each is one axum router, served by `lambda_http` on AWS
//! and by `hookline serve` on one machine: the same code answers on both.

pub mod admin;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod openapi;

pub use error::ApiError;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use std::sync::Arc;

use crate::Platform;

/// The admin face alone (the `admin` Lambda function).
pub fn admin_router(platform: Arc<Platform>) -> Router {
    finish(admin::routes(), platform)
}

/// The ingest face alone (the `ingest` Lambda function).
pub fn ingest_router(platform: Arc<Platform>) -> Router {
    finish(ingest::routes(), platform)
}

/// Both faces in one router, as `hookline serve` runs them.
pub fn router(platform: Arc<Platform>) -> Router {
    finish(admin::routes().merge(ingest::routes()), platform)
}

/// Unknown routes and methods answer in the contract's error shape too.
fn finish(routes: Router<Arc<Platform>>, platform: Arc<Platform>) -> Router {
    routes
        .route(
            "/openapi.json",
            axum::routing::get(|| async { axum::Json(openapi::document()) }),
        )
        .route(
            "/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(platform)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route {}; see GET /openapi.json", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see GET /openapi.json",
            uri.path()
        ),
    )
}
