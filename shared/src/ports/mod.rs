//! The ports: what the domain needs from the outside world, and nothing more.
//! Every adapter in `crate::adapters` passes the contract suite in
//! `crate::testkit::contract`, so domain code never asks which one it runs on.

pub mod clock;
pub mod queue;
pub mod store;

pub use clock::{Clock, SystemClock, TestClock};
pub use queue::{Queue, QueueError, QueueMessage};
pub use store::{Cond, Item, Key, Page, Put, Query, Store, StoreError, Write};
