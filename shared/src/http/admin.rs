//! The admin face: `/v1/*`, authenticated with the account's admin key.

use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

use crate::Platform;

/// Admin bodies are small documents; a megabyte is generous.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .merge(super::collections::routes())
        .merge(super::contacts::routes())
        .merge(super::triggers::routes())
        .merge(super::webhooks::routes())
        .merge(super::events::routes())
        .merge(super::profiles::routes())
        .merge(super::campaigns::routes())
        .merge(super::console::routes())
        .merge(super::dead_letters::routes())
        .merge(super::accounts::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
