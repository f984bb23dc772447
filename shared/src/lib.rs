//! Hookline: the whole domain, its ports and its adapters.
//!
//! - `ports`: what the domain needs (store, queue, clock); `adapters`: the
//!   embedded (redb) and AWS (DynamoDB, SQS) implementations of them.
//! - `egress`: the one HTTP client allowed to call out, with its SSRF guard.
//! - `keys`: the layout of every stored item.
//! - `accounts`, `collections` (contact lists and sequences), `contacts`,
//!   `transforms`, `triggers`: the product, one folder per resource.
//! - `http`: the axum routers (admin and ingest faces); `work`: the queue
//!   face; `apply`: the work done after a request is answered.

pub mod accounts;
pub mod adapters;
pub mod alloc;
pub mod apply;
pub mod collections;
pub mod config;
pub mod contacts;
pub mod dead_letters;
pub mod egress;
pub mod error;
pub mod http;
pub mod ids;
pub mod keys;
pub mod messages;
pub mod platform;
pub mod ports;
pub mod transforms;
pub mod triggers;
pub mod work;

#[cfg(feature = "testkit")]
pub mod testkit;

// The unit tests count allocations as the binaries do, so that a
// transform's memory budget holds in them.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: alloc::Counting<std::alloc::System> = alloc::Counting(std::alloc::System);

pub use platform::Platform;
