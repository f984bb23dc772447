//! Events into webhooks: publishing, fan-out (on the apply queue), and
//! delivery (the delivery queue): what is sent, signed, retried, logged.
//!
//! - `events.rs`: an event checked and published; its fan-out to the
//!   account's matching webhooks, a page at a time;
//! - `request.rs`: the payload, shaped for the channel and signed;
//! - `deliver.rs`: one attempt per message and what follows it (the retry
//!   schedule, parking long waits, 410, disabling, dead letters, rate
//!   limits, endpoints that fail every call);
//! - `attempts.rs`: the attempt log.

pub mod attempts;
pub mod deliver;
pub mod events;
pub mod request;

pub use deliver::DeliveryHandler;
