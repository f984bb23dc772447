//! Events into webhooks: publishing, fan-out (on the apply queue), and
//! delivery (the delivery queue): what is sent, signed, retried, logged.
//!
//! - `events.rs`: an event checked and published; its fan-out to the
//!   account's matching webhooks, a page at a time;
//! - `request.rs`: the payload, shaped for the channel and signed;
//! - `attempt.rs`: one attempt of a delivery and what follows it (the retry
//!   schedule, parking long waits, 410, disabling, dead letters, rate
//!   limits, endpoints that fail every call); the queue's dispatcher is
//!   the edge `crate::deliver`;
//! - `attempts.rs`: the attempt log.

pub mod attempt;
pub mod attempts;
pub mod events;
pub mod request;
