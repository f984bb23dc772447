//! A queue log's bytes, as a crash or a bad disk may leave them: replaying
//! never panics and never reads past what holds whole records. Also the
//! store's cursors, which clients hand back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (used, live) = hookline::adapters::embedded::replay_image(data);
    assert!(used <= data.len());
    // The whole records alone replay to the same messages.
    let (again, same) = hookline::adapters::embedded::replay_image(&data[..used]);
    assert_eq!((again, same), (used, live));
    if let Ok(text) = std::str::from_utf8(data) {
        let (prefix, cursor) = text.split_once('|').unwrap_or(("", text));
        let pk = "fuzz";
        if let Ok(sk) = hookline::ports::store::cursor::decode(cursor, pk, prefix) {
            assert!(sk.starts_with(prefix));
            let round = hookline::ports::store::cursor::encode(pk, &sk);
            assert_eq!(
                hookline::ports::store::cursor::decode(&round, pk, prefix).unwrap(),
                sk
            );
            // Never followed in another partition.
            assert!(hookline::ports::store::cursor::decode(&round, "other", prefix).is_err());
        }
    }
});
