//! A transform's source, compiled, then evaluated on a payload: no input
//! may crash, overflow the stack or run without bound. Input: the source,
//! a 0 byte, then the payload's JSON (used when it is an object ingest
//! would accept).
#![no_main]

use hookline::transforms::{Transform, pool};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: hookline::alloc::Counting<std::alloc::System> =
    hookline::alloc::Counting(std::alloc::System);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let (source, payload) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    // Saving refuses a transform over 16 KiB.
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    if source.len() > 16 * 1024 {
        return;
    }
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let Ok(payload) = hookline::http::body::parse_body(&headers, payload) else {
        return;
    };
    runtime().block_on(async {
        let compiled = match Transform::compile_bounded(source.to_string()).await {
            Ok(Ok((t, _))) => t,
            Ok(Err(_)) => return,
            Err(pool::Failed::Panicked(m)) => panic!("compiling panicked: {m}"),
            Err(pool::Failed::Busy) => unreachable!("one job at a time"),
        };
        match compiled.evaluate(&payload).await {
            Ok(_) => {}
            Err(pool::Failed::Panicked(m)) => panic!("evaluating panicked: {m}"),
            Err(pool::Failed::Busy) => unreachable!("one job at a time"),
        }
    });
});
