//! The ingest face: trigger URLs that external systems POST to.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::routing::post;
use std::sync::Arc;

use super::ApiError;
use crate::Platform;

/// What one inbound request may carry (CONTRACT: 256 KiB, 413 beyond).
pub const INGEST_BODY_LIMIT: usize = 256 * 1024;

pub fn routes() -> Router<Arc<Platform>> {
    Router::new()
        .route("/hooks/{id}", post(hook))
        .layer(DefaultBodyLimit::max(INGEST_BODY_LIMIT))
}

/// No triggers exist until the trigger resource lands; every id is unknown.
async fn hook(Path(_id): Path<String>) -> ApiError {
    ApiError::not_found("trigger")
}
