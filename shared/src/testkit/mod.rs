//! Test helpers for every crate of the workspace (feature `testkit`).

pub mod contract;
pub mod moto;

pub use moto::MotoServer;
