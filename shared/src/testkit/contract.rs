//! The contract every adapter passes. Each function is one test; the
//! `contract_tests!` macro instantiates all of them for one adapter set, so
//! the suite is written once and run against the embedded and AWS adapters.

use chrono::{TimeDelta, Utc};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ports::{
    Cond, Key, Put, Query, Queue, QueueMessage, Store, StoreError, TestClock, Write,
};

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

pub async fn store_put_get_delete(store: Arc<dyn Store>, _clock: TestClock) {
    let k = key("p", "a");
    assert!(store.get(&k).await.unwrap().is_none());
    let body = json!({"name": "Ada", "n": 3, "nested": {"list": [1, "two", null, true]}});
    let v1 = store.put(Put::new(k.clone(), body.clone())).await.unwrap();
    let item = store.get(&k).await.unwrap().expect("item written");
    assert_eq!(item.body, body);
    assert_eq!(item.version, v1);
    assert_eq!(item.expires_at, None);
    let v2 = store
        .put(Put::new(k.clone(), json!({"name": "Grace"})))
        .await
        .unwrap();
    assert!(v2 > v1, "versions grow: {v1} then {v2}");
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().body,
        json!({"name": "Grace"})
    );
    // A stale version neither deletes nor overwrites.
    assert!(matches!(
        store.delete(&k, Cond::Version(v1)).await,
        Err(StoreError::Conflict)
    ));
    store.delete(&k, Cond::Version(v2)).await.unwrap();
    assert!(store.get(&k).await.unwrap().is_none());
    // Deleting what is absent is not an error, unless a version was expected.
    store.delete(&k, Cond::Any).await.unwrap();
    assert!(matches!(
        store.delete(&k, Cond::Version(v2)).await,
        Err(StoreError::Conflict)
    ));
}

/// Writes through the deferred view (the store itself where every write is
/// durable) are seen at once by the plain store, conditions included, and a
/// sync answers. That they are durable after it is for a crash to show:
/// `applied_work_survives_a_crash` in the end-to-end tests.
pub async fn store_deferred_writes_are_visible_and_synced(
    store: Arc<dyn Store>,
    _clock: TestClock,
) {
    let deferred = store.deferred().unwrap_or_else(|| store.clone());
    let k = key("deferred", "a");
    let v1 = deferred
        .put(Put::new(k.clone(), json!({"n": 1})).when(Cond::Absent))
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap().unwrap().version, v1);
    assert!(matches!(
        deferred
            .put(Put::new(k.clone(), json!({"n": 2})).when(Cond::Absent))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        deferred.add(&key("deferred", "n"), 5, None).await.unwrap(),
        5
    );
    deferred.sync().await.unwrap();
    store.sync().await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().unwrap().body, json!({"n": 1}));
    deferred.delete(&k, Cond::Version(v1)).await.unwrap();
    assert!(store.get(&k).await.unwrap().is_none());
}

pub async fn store_conditional_put_race(store: Arc<dyn Store>, _clock: TestClock) {
    let k = key("race", "absent");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                store
                    .put(Put::new(k, json!({ "writer": i })).when(Cond::Absent))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => won.push(i),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one create wins, got {won:?}");
    let item = store.get(&k).await.unwrap().unwrap();
    assert_eq!(item.body, json!({"writer": won[0]}));

    // Optimistic read-modify-write from 8 writers loses no increment.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let k = key("race", "cas");
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..5 {
                    loop {
                        let (n, cond) = match store.get(&k).await.unwrap() {
                            Some(item) => (
                                item.body["n"].as_i64().unwrap(),
                                Cond::Version(item.version),
                            ),
                            None => (0, Cond::Absent),
                        };
                        match store
                            .put(Put::new(k.clone(), json!({ "n": n + 1 })).when(cond))
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::Conflict) => conflicts += 1,
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let item = store.get(&key("race", "cas")).await.unwrap().unwrap();
    assert_eq!(item.body["n"], 40);
}

pub async fn store_atomic_counters(store: Arc<dyn Store>, clock: TestClock) {
    let k = key("count", "hits");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    store.add(&k, 1, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.add(&k, 0, None).await.unwrap(), 200);
    assert_eq!(store.add(&k, -50, None).await.unwrap(), 150);

    // A counter with an expiry starts again from zero once it has expired.
    let window = key("count", "window");
    let end = clock.now_plus(60);
    assert_eq!(store.add(&window, 5, Some(end)).await.unwrap(), 5);
    assert_eq!(store.add(&window, 2, None).await.unwrap(), 7);
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        store
            .add(&window, 1, Some(clock.now_plus(60)))
            .await
            .unwrap(),
        1
    );
}

pub async fn store_query_pages(store: Arc<dyn Store>, _clock: TestClock) {
    let mut writes = Vec::new();
    for i in 0..25 {
        writes.push(Write::Put(Put::new(
            key("q", &format!("item#{i:03}")),
            json!({ "i": i }),
        )));
    }
    store.write_all(writes).await.unwrap();
    // Neighbours that the query must not return.
    store
        .put(Put::new(key("q", "other#1"), json!({})))
        .await
        .unwrap();
    store
        .put(Put::new(key("q", "item"), json!({})))
        .await
        .unwrap();
    store
        .put(Put::new(key("qq", "item#000"), json!({})))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let mut q = Query::new("q", "item#");
        q.limit = 10;
        q.cursor = cursor;
        let page = store.query(q).await.unwrap();
        pages.push(page.items.len());
        seen.extend(page.items.iter().map(|i| i.body["i"].as_i64().unwrap()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, vec![10, 10, 5]);
    assert_eq!(seen, (0..25).collect::<Vec<_>>());

    let mut q = Query::new("q", "item#");
    q.reverse = true;
    q.limit = 4;
    let page = store.query(q.clone()).await.unwrap();
    let got: Vec<_> = page
        .items
        .iter()
        .map(|i| i.body["i"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![24, 23, 22, 21]);
    q.cursor = page.next_cursor;
    let page = store.query(q).await.unwrap();
    assert_eq!(page.items[0].body["i"], 20);

    // Exactly 25: no cursor to an empty page.
    let mut q = Query::new("q", "item#");
    q.limit = 25;
    assert!(store.query(q).await.unwrap().next_cursor.is_none());

    let mut q = Query::new("q", "item#");
    q.cursor = Some("not a cursor!".into());
    assert!(matches!(
        store.query(q).await,
        Err(StoreError::InvalidCursor)
    ));
    // A cursor from another prefix is refused rather than followed.
    let mut q = Query::new("q", "other#");
    q.cursor = Some(crate::ports::store::cursor::encode("q", "item#003"));
    assert!(matches!(
        store.query(q).await,
        Err(StoreError::InvalidCursor)
    ));
    // So is one from another partition (another account's list, say).
    let mut q = Query::new("q2", "item#");
    q.cursor = Some(crate::ports::store::cursor::encode("q", "item#003"));
    assert!(matches!(
        store.query(q).await,
        Err(StoreError::InvalidCursor)
    ));
    let mut q = Query::new("q", "item#");
    q.cursor = Some(crate::ports::store::cursor::encode("q", "item#003"));
    assert!(store.query(q).await.is_ok());
}

pub async fn store_query_past_one_megabyte(store: Arc<dyn Store>, _clock: TestClock) {
    // 14 items of ~200 KB: DynamoDB answers a query in pages of at most 1 MB,
    // and the adapter must keep reading until the page the caller asked for is full.
    let blob = "x".repeat(200 * 1024);
    for i in 0..14 {
        store
            .put(Put::new(
                key("big", &format!("b#{i:02}")),
                json!({ "i": i, "blob": blob }),
            ))
            .await
            .unwrap();
    }
    let mut q = Query::new("big", "b#");
    q.limit = 100;
    let page = store.query(q).await.unwrap();
    assert_eq!(page.items.len(), 14);
    assert!(page.next_cursor.is_none());
    let mut q = Query::new("big", "b#");
    q.limit = 6;
    let first = store.query(q.clone()).await.unwrap();
    assert_eq!(first.items.len(), 6);
    q.cursor = first.next_cursor;
    let second = store.query(q.clone()).await.unwrap();
    assert_eq!(second.items.len(), 6);
    assert_eq!(second.items[0].body["i"], 6);
    q.cursor = second.next_cursor;
    let third = store.query(q).await.unwrap();
    assert_eq!(third.items.len(), 2);
    assert!(third.next_cursor.is_none());
}

pub async fn store_item_too_large(store: Arc<dyn Store>, _clock: TestClock) {
    let blob = "x".repeat(450 * 1024);
    let err = store
        .put(Put::new(key("big", "huge"), json!({ "blob": blob })))
        .await;
    assert!(matches!(err, Err(StoreError::TooLarge(_))), "got {err:?}");
    assert!(store.get(&key("big", "huge")).await.unwrap().is_none());
}

/// What DynamoDB refuses is refused by every adapter, before writing, in
/// `put` and in `write_all`: nesting, numbers, key lengths.
pub async fn store_refuses_what_dynamodb_cannot_keep(store: Arc<dyn Store>, _clock: TestClock) {
    let nested = |levels: usize| {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!([v]);
        }
        v
    };
    // The document is level 1: 31 lists inside it are 32 levels.
    let deepest = json!({ "a": nested(31) });
    store
        .put(Put::new(key("shape", "deepest"), deepest.clone()))
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&key("shape", "deepest"))
            .await
            .unwrap()
            .unwrap()
            .body,
        deepest
    );
    let refused = [
        (key("shape", "deep"), json!({ "a": nested(32) })),
        (key("shape", "huge_number"), json!({ "n": 1e200 })),
        (key("shape", "tiny_number"), json!({ "n": [1, 1e-200] })),
        (key(&"p".repeat(2049), "long_pk"), json!({})),
        (key("shape", &"s".repeat(1025)), json!({})),
    ];
    for (k, body) in refused {
        let err = store.put(Put::new(k.clone(), body.clone())).await;
        assert!(
            matches!(err, Err(StoreError::TooLarge(_))),
            "{k:?}: {err:?}"
        );
        let err = store
            .write_all(vec![
                Write::Put(Put::new(key("shape", "beside"), json!({}))),
                Write::Put(Put::new(k.clone(), body)),
            ])
            .await;
        assert!(
            matches!(err, Err(StoreError::TooLarge(_))),
            "{k:?}: {err:?}"
        );
    }
    assert!(store.get(&key("shape", "beside")).await.unwrap().is_none());
    // Zero and the ends of the range are kept.
    let edge = json!({ "n": [0, 1e125, -1e125, 1.5e-130] });
    store
        .put(Put::new(key("shape", "edge"), edge.clone()))
        .await
        .unwrap();
    assert_eq!(
        store
            .get(&key("shape", "edge"))
            .await
            .unwrap()
            .unwrap()
            .body,
        edge
    );
}

pub async fn store_expiry(store: Arc<dyn Store>, clock: TestClock) {
    let k = key("exp", "session");
    let at = clock.now_plus(30);
    let v1 = store
        .put(Put::new(k.clone(), json!({"a": 1})).expires(at))
        .await
        .unwrap();
    let item = store.get(&k).await.unwrap().expect("live before expiry");
    assert_eq!(item.expires_at.map(|t| t.timestamp()), Some(at.timestamp()));
    let mut q = Query::new("exp", "");
    assert_eq!(store.query(q.clone()).await.unwrap().items.len(), 1);

    clock.advance(Duration::from_secs(31));
    assert!(
        store.get(&k).await.unwrap().is_none(),
        "expired items are not read"
    );
    q.limit = 10;
    assert!(store.query(q).await.unwrap().items.is_empty());
    // An expired item is absent to conditions too.
    assert!(matches!(
        store
            .put(Put::new(k.clone(), json!({"b": 1})).when(Cond::Version(v1)))
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .put(Put::new(k.clone(), json!({"b": 2})).when(Cond::Absent))
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap().unwrap().body, json!({"b": 2}));
}

/// Fields set on a live item keep the rest of it and its expiry, and bump
/// its version; nothing is set where no live item is.
pub async fn store_set_fields(store: Arc<dyn Store>, clock: TestClock) {
    let fields = |v: serde_json::Value| v.as_object().expect("an object").clone();
    let k = key("set", "one");
    let at = clock.now_plus(30);
    let v1 = store
        .put(Put::new(k.clone(), json!({"name": "Ada", "seen": null, "n": 1})).expires(at))
        .await
        .unwrap();
    let v2 = store
        .set_fields(
            &k,
            fields(json!({"seen": "2026-11-26T10:00:00Z", "tags": ["a"]})),
        )
        .await
        .unwrap();
    assert!(v2 > v1, "versions grow: {v1} then {v2}");
    let item = store.get(&k).await.unwrap().expect("still there");
    assert_eq!(
        item.body,
        json!({"name": "Ada", "seen": "2026-11-26T10:00:00Z", "n": 1, "tags": ["a"]})
    );
    assert_eq!(item.version, v2);
    assert_eq!(item.expires_at.map(|t| t.timestamp()), Some(at.timestamp()));
    // A stale version no longer holds.
    assert!(matches!(
        store
            .put(Put::new(k.clone(), json!({})).when(Cond::Version(v1)))
            .await,
        Err(StoreError::Conflict)
    ));
    // Absent, or expired: nothing is written.
    let absent = key("set", "absent");
    assert!(matches!(
        store.set_fields(&absent, fields(json!({"seen": 1}))).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.get(&absent).await.unwrap().is_none());
    clock.advance(Duration::from_secs(31));
    assert!(matches!(
        store.set_fields(&k, fields(json!({"seen": 2}))).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.get(&k).await.unwrap().is_none());
}

pub async fn store_write_all_is_all_or_nothing(store: Arc<dyn Store>, _clock: TestClock) {
    let existing = key("tx", "existing");
    let v = store
        .put(Put::new(existing.clone(), json!({"v": 1})))
        .await
        .unwrap();
    let fresh = key("tx", "fresh");
    // The second write's condition fails: the first must not happen.
    let err = store
        .write_all(vec![
            Write::Put(Put::new(fresh.clone(), json!({"v": 1})).when(Cond::Absent)),
            Write::Put(Put::new(existing.clone(), json!({"v": 2})).when(Cond::Absent)),
        ])
        .await;
    assert!(matches!(err, Err(StoreError::Conflict)), "got {err:?}");
    assert!(store.get(&fresh).await.unwrap().is_none(), "rolled back");
    assert_eq!(
        store.get(&existing).await.unwrap().unwrap().body,
        json!({"v": 1})
    );

    store
        .write_all(vec![
            Write::Put(Put::new(fresh.clone(), json!({"v": 1})).when(Cond::Absent)),
            Write::Delete {
                key: existing.clone(),
                cond: Cond::Version(v),
            },
        ])
        .await
        .unwrap();
    assert!(store.get(&fresh).await.unwrap().is_some());
    assert!(store.get(&existing).await.unwrap().is_none());

    let too_many = (0..101)
        .map(|i| Write::Put(Put::new(key("tx", &format!("n{i}")), json!({}))))
        .collect();
    assert!(matches!(
        store.write_all(too_many).await,
        Err(StoreError::TooLarge(_))
    ));
}

/// Receives until `n` messages came or `within` passed.
async fn receive_n(
    queue: &dyn Queue,
    n: usize,
    visibility: Duration,
    within: Duration,
) -> Vec<QueueMessage> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let wait = Duration::from_secs(1).min(deadline - Instant::now());
        got.extend(queue.receive(10, visibility, wait).await.unwrap());
    }
    got
}

pub async fn queue_send_receive_delete(queue: Arc<dyn Queue>) {
    let id = queue.send("hello".into(), Duration::ZERO).await.unwrap();
    let got = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].body, "hello");
    assert_eq!(got[0].receive_count, 1);
    queue.delete(&got[0].receipt).await.unwrap();
    assert!(
        queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn queue_delay(queue: Arc<dyn Queue>) {
    let start = Instant::now();
    queue
        .send("later".into(), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let got = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(6)).await;
    assert_eq!(got.len(), 1, "the delayed message arrives");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "not before its delay: {:?}",
        start.elapsed()
    );
}

pub async fn queue_visibility_and_redelivery(queue: Arc<dyn Queue>) {
    queue.send("work".into(), Duration::ZERO).await.unwrap();
    let first = receive_n(&*queue, 1, Duration::from_secs(2), Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    assert!(
        queue
            .receive(10, Duration::from_secs(2), Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "hidden while being worked on"
    );
    let again = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(6)).await;
    assert_eq!(again.len(), 1, "back after the visibility timeout");
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].receive_count, 2);

    // An explicit retry hides it for the time asked.
    let start = Instant::now();
    queue
        .retry_after(&again[0].receipt, Duration::from_secs(2))
        .await
        .unwrap();
    let third = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(6)).await;
    assert_eq!(third.len(), 1);
    assert!(start.elapsed() >= Duration::from_millis(1500));
    assert_eq!(third[0].receive_count, 3);
}

pub async fn queue_dead_letter_after_max_receives(queue: Arc<dyn Queue>) {
    assert_eq!(queue.max_receives(), 2);
    let id = queue.send("poison".into(), Duration::ZERO).await.unwrap();
    for n in 1..=2 {
        let got = receive_n(&*queue, 1, Duration::from_secs(1), Duration::from_secs(6)).await;
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
    }
    // The third receive finds it past its last attempt: it is a dead letter now.
    let after = receive_n(&*queue, 1, Duration::from_secs(1), Duration::from_secs(3)).await;
    assert!(after.is_empty(), "not delivered a third time: {after:?}");
    let dead = queue.receive_dead(10, Duration::ZERO).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    assert_eq!(dead[0].body, "poison");

    assert_eq!(queue.redrive(10).await.unwrap(), 1);
    let back = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(5)).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, "poison");
    assert_eq!(back[0].receive_count, 1, "a redriven message starts again");

    // Dead-lettered on purpose, at once.
    queue.dead_letter(&back[0]).await.unwrap();
    let dead = queue
        .receive_dead(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    // Kept elsewhere, it is removed from the dead lane for good.
    queue.delete_dead(&dead[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        queue
            .receive_dead(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue.redrive(10).await.unwrap(), 0);
}

/// 25 messages, two of them 600 KB: more than one SQS batch takes by count
/// (10) and by size (1 MiB).
pub async fn queue_send_batch(queue: Arc<dyn Queue>) {
    let body = |i: usize| {
        if i == 3 || i == 4 {
            format!("m{i}{}", "x".repeat(600_000))
        } else {
            format!("m{i}")
        }
    };
    let bodies: Vec<_> = (0..25).map(|i| (body(i), Duration::ZERO)).collect();
    let ids = queue.send_batch(bodies).await.unwrap();
    assert_eq!(ids.len(), 25);
    let got = receive_n(
        &*queue,
        25,
        Duration::from_secs(30),
        Duration::from_secs(10),
    )
    .await;
    let bodies: HashSet<_> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(got.len(), 25, "each message once");
    assert_eq!(bodies, (0..25).map(body).collect());
    let too_big = "x".repeat(crate::ports::queue::MAX_MESSAGE_BYTES + 1);
    assert!(queue.send(too_big, Duration::ZERO).await.is_err());
}

impl TestClock {
    /// Now plus whole seconds.
    pub fn now_plus(&self, secs: i64) -> chrono::DateTime<Utc> {
        use crate::ports::Clock;
        self.now() + TimeDelta::seconds(secs)
    }
}

/// Instantiates the whole contract suite for one adapter set. `$store` is an
/// async fn (TestClock) -> (Arc<dyn Store>, guard); `$queue` an async fn
/// (max_receives) -> (Arc<dyn Queue>, guard). Guards live as long as the test.
#[macro_export]
macro_rules! contract_tests {
    ($store:path, $queue:path) => {
        $crate::contract_tests!(@store $store;
            store_put_get_delete, store_conditional_put_race, store_atomic_counters,
            store_query_pages, store_query_past_one_megabyte, store_item_too_large,
            store_refuses_what_dynamodb_cannot_keep,
            store_expiry, store_set_fields, store_write_all_is_all_or_nothing,
            store_deferred_writes_are_visible_and_synced);
        $crate::contract_tests!(@queue $queue, 3;
            queue_send_receive_delete, queue_delay, queue_visibility_and_redelivery,
            queue_send_batch);
        $crate::contract_tests!(@queue $queue, 2; queue_dead_letter_after_max_receives);
    };
    (@store $store:path; $($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let clock = $crate::ports::TestClock::default();
            let (store, _guard) = $store(clock.clone()).await;
            $crate::testkit::contract::$name(store, clock).await;
        }
    )*};
    (@queue $queue:path, $max:expr; $($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (queue, _guard) = $queue($max).await;
            $crate::testkit::contract::$name(queue).await;
        }
    )*};
}
