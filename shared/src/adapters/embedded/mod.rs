//! The embedded adapters: items in one redb file, each queue in a log file.
//!
//! Every item write goes through one writer thread that commits whatever
//! writes are waiting in one transaction (group commit): a durable commit
//! costs a disk sync, and sharing it is what lets many concurrent writers go
//! faster than the disk syncs. Reads use redb's snapshots and never wait for
//! the writer. Queues do the same with appends to their log (`queue`).

mod codec;
mod data_dir;
pub mod media;
mod queue;
mod store;
mod writer;

pub use data_dir::{APPLY_LOG, Copied, DataDir, STORE_FILE, platform};
pub use queue::{EmbeddedQueue, import_legacy, replay_image};
pub use store::EmbeddedStore;
pub use writer::{Embedded, EmbeddedError};
