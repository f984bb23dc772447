//! The admin face: `/v1/*`, authenticated with the account's admin key.

use super::described::Routes;
use axum::extract::DefaultBodyLimit;

/// Admin bodies are small documents; a megabyte is generous.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub(crate) fn routes() -> Routes {
    Routes::new()
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
        .layered(|r| r.layer(DefaultBodyLimit::max(BODY_LIMIT)))
}
