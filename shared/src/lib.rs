pub mod adapters;
pub mod ports;
#[cfg(feature = "testkit")]
pub mod testkit;
