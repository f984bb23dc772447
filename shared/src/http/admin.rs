//! The admin face: `/v1/*`, authenticated with the account's admin key.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;

use crate::Platform;

/// Admin bodies are small documents; a megabyte is generous.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> Router<Arc<Platform>> {
    Router::new()
        .merge(super::collections::router(crate::collections::Kind::List))
        .merge(super::collections::router(
            crate::collections::Kind::Sequence,
        ))
        .merge(super::contacts::router())
        .merge(super::triggers::router())
        .merge(super::dead_letters::router())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
