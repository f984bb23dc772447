//! The ingest face: trigger URLs that external systems POST to.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use std::sync::Arc;

use crate::Platform;
use crate::triggers::ingest::{BODY_LIMIT, hook};

pub fn routes() -> Router<Arc<Platform>> {
    Router::new()
        .route("/hooks/{id}", post(hook))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
