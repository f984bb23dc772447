//! Inbound triggers (Mixmax rules with a webhook trigger, Heymarket
//! automations): a URL that external systems POST to, a transform that turns
//! the payload into a contact, and actions run on that contact.
//!
//! - `model.rs`, `validation.rs`, `storage.rs`, `cache.rs`: the trigger, its
//!   checks, its copies in the store, and what a process keeps of it;
//! - `accept.rs`: accepting a request at its URL (before answering), with
//!   `idempotency.rs`, the `Idempotency-Key` protocol;
//! - `pipeline.rs`: running an accepted request through the trigger (on the
//!   apply queue);
//! - `requests.rs`: the request log; `preview.rs`: a transform tried on a sample.
//!
//! The HTTP routes are in `http/triggers.rs` and `http/ingest.rs`.

pub mod accept;
mod idempotency;
pub mod pipeline;
mod preview;
pub mod requests;

mod cache;
mod model;
mod storage;
mod validation;

pub use cache::*;
pub use model::*;
pub use preview::{LeafPath, Preview, PreviewContact, preview, preview_new};
pub use storage::*;
pub use validation::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Platform;
    use crate::collections::Kind;
    use crate::testkit::faulty::{Fault, Faulty};
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_store_that_cannot_answer_is_a_503_not_a_bad_action() {
        let (healthy, _dir) = crate::testkit::platform().await;
        let platform = Platform::new(
            Arc::new(Faulty(healthy.store.clone(), Fault::Everything)),
            healthy.queues(),
            healthy.clock.clone(),
            crate::config::Settings::default(),
        );
        let list = crate::ids::new_id(Kind::List.id_prefix());
        let raw = [json!({"type": "add_to_list", "list_id": list})];
        let err: crate::http::ApiError = parse_actions(&platform, "acct", &raw)
            .await
            .unwrap_err()
            .into();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (503, "storage_unavailable")
        );
        assert!(!err.message.contains("injected"));
        // A list that is not there is the request's fault.
        let err: crate::http::ApiError = parse_actions(&healthy, "acct", &raw)
            .await
            .unwrap_err()
            .into();
        assert_eq!((err.status.as_u16(), err.code), (422, "invalid_actions"));
    }

    #[test]
    fn templates() {
        assert!(
            check_template("Hi {{first_name}}, your order {{fields.order_id}} shipped").is_ok()
        );
        assert!(check_template("no placeholders").is_ok());
        assert!(check_template("Hi {{ name }}").is_ok());
        assert!(
            check_template("Hi {{nme}}")
                .unwrap_err()
                .contains("unknown placeholder {{nme}}")
        );
        assert!(check_template("Hi {{name").is_err());
        assert!(check_template("  ").is_err());
        assert!(check_template(&"x".repeat(1601)).is_err());
    }

    #[test]
    fn event_names() {
        assert!(crate::webhooks::check_event_name("candidate.hired").is_ok());
        assert!(crate::webhooks::check_event_name("Bad Name").is_err());
        assert!(crate::webhooks::check_event_name("").is_err());
    }

    #[tokio::test]
    async fn cache_recompiles_an_edited_transform() {
        let cache = TransformCache::default();
        let a = cache.get("trg_1", "email = a").await.unwrap().unwrap();
        let b = cache.get("trg_1", "email = b").await.unwrap().unwrap();
        let payload = serde_json::json!({"a": "x@example.com", "b": "y@example.com"});
        assert_eq!(
            a.apply(payload.as_object().unwrap())
                .unwrap()
                .email
                .as_deref(),
            Some("x@example.com")
        );
        assert_eq!(
            b.apply(payload.as_object().unwrap())
                .unwrap()
                .email
                .as_deref(),
            Some("y@example.com")
        );
    }
}
