//! Hookline: the whole domain, its ports and its adapters.
//!
//! Layers (checked by `tests/layers.rs`: the base imports only the base, the
//! domain no edge, and no module imports another that imports it back):
//!
//! - base: `ports` (store, queue, clock), `platform` (the ports a host
//!   built, handed to the domain), `config`, `error` (the domain's errors),
//!   `egress` (the one HTTP client allowed to call out), `keys` (the layout
//!   of every stored item), `ids`, `messages` (each queue's messages, plain
//!   types), `patch` (absent, null or a value, in an update), `alloc`;
//! - domain: `accounts`, `collections` (contact lists and sequences),
//!   `contacts`, `transforms`, `triggers`, `webhooks`, `delivery`,
//!   `dead_letters`, `profiles`, `campaigns`;
//! - edges: `http` (the admin and ingest routers: the only code that knows
//!   HTTP), `apply` (the apply queue's dispatcher), `deliver` (the
//!   delivery queue's), `scheduler` (the campaign queue's, and the
//!   campaigns' clock), `work` (feeding any
//!   queue to a handler, and settling the outcomes), `adapters` (embedded:
//!   redb and a log file; AWS: DynamoDB and SQS), `testkit`.
//!
//! Words, one per thing:
//!
//! - **ingest**: the HTTP face trigger URLs are on (`/hooks/{id}`, the
//!   `ingest` function); **accept**: what it does before answering (the
//!   trigger found, its API key checked, the request queued durably);
//! - **apply**: the queue of work done after answering, and doing it; a
//!   request is **run** through its trigger's **pipeline** (transform,
//!   contact, actions) and its outcome written to the **request log**;
//! - **dispatch**: one message to the domain code that does its work
//!   (`apply::ApplyHandler`); **settle**: an outcome carried out on the queue;
//! - **dead letter**: a message given up on, kept in the store until it is
//!   redriven or deleted; **replay**: a failed request run again.

pub mod accounts;
pub mod adapters;
pub mod alloc;
pub mod apply;
pub mod campaigns;
pub mod collections;
pub mod config;
pub mod contacts;
pub mod dead_letters;
pub mod deliver;
pub mod delivery;
pub mod egress;
pub mod error;
pub mod http;
pub mod ids;
pub mod keys;
pub mod messages;
pub mod patch;
pub mod platform;
pub mod ports;
pub mod profiles;
pub mod scheduler;
pub mod transforms;
pub mod triggers;
pub mod webhooks;
pub mod work;

#[cfg(feature = "testkit")]
pub mod testkit;

// The unit tests count allocations as the binaries do, so that a
// transform's memory budget holds in them.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: alloc::Counting<std::alloc::System> = alloc::Counting(std::alloc::System);

pub use platform::Platform;
