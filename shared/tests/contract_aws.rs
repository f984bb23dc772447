//! The contract suite against the AWS adapters, on a moto_server started by
//! the test (over HTTP, as the SDK talks to AWS).

use hookline::ports::{Queue, Store, TestClock};
use hookline::testkit::moto::aws;
use std::sync::Arc;

async fn store(clock: TestClock) -> (Arc<dyn Store>, ()) {
    let (store, _table) = aws::store(Arc::new(clock)).await;
    (Arc::new(store), ())
}

async fn queue(max_receives: u32) -> (Arc<dyn Queue>, ()) {
    (Arc::new(aws::queue(max_receives).await), ())
}

hookline::contract_tests!(store, queue);
