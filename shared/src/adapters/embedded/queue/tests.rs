use super::log::GROW_BYTES;
use super::records::replay;
use super::*;
use crate::adapters::embedded::{Embedded, codec};
use crate::ports::{SystemClock, TestClock};

const LONG: Duration = Duration::from_secs(30);

fn open(path: &Path, clock: &TestClock) -> EmbeddedQueue {
    EmbeddedQueue::open(path, 3, Arc::new(clock.clone())).unwrap()
}

async fn bodies(q: &EmbeddedQueue) -> Vec<String> {
    let mut got: Vec<String> = q
        .receive(100, LONG, Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    got.sort();
    got
}

#[tokio::test]
async fn reopening_replays_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let clock = TestClock::at(chrono::Utc::now());
    {
        let q = open(&path, &clock);
        for b in ["a", "b", "c"] {
            q.send(b.into(), Duration::ZERO).await.unwrap();
        }
        q.send("later".into(), Duration::from_secs(10))
            .await
            .unwrap();
        let got = q.receive(10, LONG, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 3);
        let by_body = |b: &str| got.iter().find(|m| m.body == b).unwrap();
        q.delete(&by_body("a").receipt).await.unwrap();
        q.retry_after(&by_body("b").receipt, Duration::ZERO)
            .await
            .unwrap();
        q.dead_letter(by_body("c")).await.unwrap();
    }
    let q = open(&path, &clock);
    let again = q.receive(10, LONG, Duration::ZERO).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("b", 2));
    let dead = q.receive_dead(10, LONG).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "c");
    clock.advance(Duration::from_secs(11));
    assert_eq!(bodies(&q).await, ["later"]);
}

/// What the last process received and never settled is visible at once
/// when the queue is opened again (its worker is gone), its receive
/// still counted; a retry's delay is kept.
#[tokio::test]
async fn messages_in_flight_when_the_process_stopped_come_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let clock = TestClock::at(chrono::Utc::now());
    {
        let q = open(&path, &clock);
        q.send("held".into(), Duration::ZERO).await.unwrap();
        q.send("delayed".into(), Duration::ZERO).await.unwrap();
        let got = q.receive(10, LONG, Duration::ZERO).await.unwrap();
        let delayed = got.iter().find(|m| m.body == "delayed").unwrap();
        q.retry_after(&delayed.receipt, LONG).await.unwrap();
        // Reopened within the same process: nothing else receives.
        assert!(
            q.receive(10, LONG, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let q = open(&path, &clock);
    let again = q.receive(10, LONG, Duration::ZERO).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|m| (m.body.as_str(), m.receive_count))
            .collect::<Vec<_>>(),
        [("held", 2)]
    );
    clock.advance(LONG + Duration::from_secs(1));
    assert!(bodies(&q).await.contains(&"delayed".to_string()));
}

/// A full disk: sends are refused and the queue says why; once there is
/// space again it takes messages by itself (no restart), and what was
/// accepted before is all there, on disk too.
#[tokio::test]
async fn a_full_disk_refuses_then_the_queue_recovers_by_itself() {
    let disk = crate::testkit::power::Disk::new();
    let open = || {
        EmbeddedQueue::open_on(
            Box::new(disk.medium()),
            3,
            Arc::new(SystemClock),
            COMPACT_MIN_BYTES,
        )
        .unwrap()
    };
    let q = open();
    q.send("before".into(), Duration::ZERO).await.unwrap();
    disk.set_full(true);
    assert!(q.send("during".into(), Duration::ZERO).await.is_err());
    assert!(q.trouble().unwrap().contains("no space left"));
    assert!(q.send("refused".into(), Duration::ZERO).await.is_err());
    disk.set_full(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while q.send("after".into(), Duration::ZERO).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(q.trouble().is_none());
    drop(q);
    disk.cut(); // only what is on disk
    let q = open();
    let got = bodies(&q).await;
    assert!(
        got.contains(&"before".to_string()) && got.contains(&"after".to_string()),
        "{got:?}"
    );
    assert!(!got.contains(&"refused".to_string()), "{got:?}");
}

/// A postponed message comes back without the receive that got it
/// counted, across a reopen too; a retried one keeps it.
#[tokio::test]
async fn a_postponed_receive_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let clock = TestClock::default();
    let q = open(&path, &clock);
    q.send("a".into(), Duration::ZERO).await.unwrap();
    let mut receipts = std::collections::HashSet::new();
    for _ in 0..5 {
        let got = q
            .receive(1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got[0].receive_count, 1);
        assert!(
            receipts.insert(got[0].receipt.clone()),
            "a receipt is never reused"
        );
        q.postpone(&got[0].receipt, Duration::ZERO).await.unwrap();
        // Spent: it cannot take back a receive twice.
        assert!(q.postpone(&got[0].receipt, Duration::ZERO).await.is_err());
    }
    drop(q);
    let q = open(&path, &clock);
    let got = q
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got[0].receive_count, 1);
    q.retry_after(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let got = q
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got[0].receive_count, 2);
}

/// A record whose checksum holds but that this build cannot read (a
/// newer build's) stops the open; it is not cut off as a torn write.
#[tokio::test]
async fn a_record_this_build_cannot_read_is_not_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let clock = TestClock::at(chrono::Utc::now());
    {
        let q = open(&path, &clock);
        q.send("kept".into(), Duration::ZERO).await.unwrap();
    }
    let end = records_end(&path);
    let mut unknown = vec![9u8; 20];
    unknown[0] = 42; // no such record type
    let mut bytes = std::fs::read(&path).unwrap();
    let crc = crc32fast::hash(&unknown);
    let mut frame = (unknown.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc.to_le_bytes());
    frame.extend_from_slice(&unknown);
    bytes[end..end + frame.len()].copy_from_slice(&frame);
    std::fs::write(&path, &bytes).unwrap();
    let err = EmbeddedQueue::open(&path, 3, Arc::new(clock.clone()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("cannot read"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut off");
}

/// A send wakes one waiting receiver, and a receiver that leaves
/// messages behind wakes the next: 25 messages sent at once reach three
/// of five waiting receivers well before their 20 s wait is up, and the
/// other two are left waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_wakes_as_many_waiting_receivers_as_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let q =
        Arc::new(EmbeddedQueue::open(&dir.path().join("q.log"), 3, Arc::new(SystemClock)).unwrap());
    let receivers: Vec<_> = (0..5)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                q.receive(10, LONG, Duration::from_secs(20))
                    .await
                    .unwrap()
                    .len()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await; // all waiting
    let batch = (0..25).map(|i| (format!("m{i}"), Duration::ZERO)).collect();
    q.send_batch(batch).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut waiting = 0;
    for r in receivers {
        match tokio::time::timeout_at(deadline, r).await {
            Ok(n) => got.push(n.unwrap()),
            Err(_) => waiting += 1,
        }
    }
    got.sort();
    assert_eq!(got, [5, 10, 10], "every message delivered, 10 at most each");
    assert_eq!(
        waiting, 2,
        "receivers with nothing to take are left waiting"
    );
}

/// Where the records of the log at `path` end; what follows is zeros.
fn records_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let end = replay(&bytes, &mut Messages::default());
    assert!(
        bytes[end..].iter().all(|b| *b == 0),
        "garbage after the records"
    );
    end
}

#[tokio::test]
async fn a_record_cut_short_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let clock = TestClock::at(chrono::Utc::now());
    {
        let q = open(&path, &clock);
        q.send("x".into(), Duration::ZERO).await.unwrap();
        q.send("y".into(), Duration::ZERO).await.unwrap();
    }
    let end = records_end(&path);
    // A crash part-way through the next record: its frame and a few bytes.
    let mut torn = Vec::new();
    Record::Put {
        id: 7,
        m: Message {
            lane: Lane::Main,
            visible_at: 0,
            receive_count: 0,
            body: "z".repeat(100).into(),
            in_flight: false,
            receipt: 0,
        },
    }
    .encode(&mut torn);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[end..end + 40].copy_from_slice(&torn[..40]);
    std::fs::write(&path, &bytes).unwrap();
    {
        let q = open(&path, &clock);
        assert_eq!(records_end(&path), end);
        q.send("w".into(), Duration::ZERO).await.unwrap();
    }
    // A flipped bit fails the checksum: that record and what follows go.
    let end = records_end(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[end - 1] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let q = open(&path, &clock);
    assert_eq!(bodies(&q).await, ["x", "y"]);
}

#[tokio::test]
async fn the_log_is_compacted_to_the_live_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let clock = TestClock::at(chrono::Utc::now());
    let kept_hidden;
    {
        let q = EmbeddedQueue::open_with(&path, 3, Arc::new(clock.clone()), 4096).unwrap();
        for i in 0..200 {
            q.send(format!("{i:0>100}"), Duration::ZERO).await.unwrap();
        }
        let grown = records_end(&path);
        assert!(grown > 200 * 100, "{grown}");
        let got = q.receive(200, LONG, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 200);
        // Ids made in the same millisecond are not in order: any one stays.
        kept_hidden = got[0].body.clone();
        for m in &got[1..] {
            q.delete(&m.receipt).await.unwrap();
        }
        q.send("kept".into(), Duration::ZERO).await.unwrap();
        // A log only shrinks by compaction, which may come before the
        // last deletes (once the live messages are a quarter of it).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // (Read while the writer appends: no check of what follows.)
        let now_end = || replay(&std::fs::read(&path).unwrap(), &mut Messages::default());
        while now_end() >= grown {
            assert!(std::time::Instant::now() < deadline, "never compacted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Writes after the snapshot land in the new log.
        q.send("after".into(), Duration::ZERO).await.unwrap();
    }
    let q = open(&path, &clock);
    // The one received before the compaction was kept by it, and with
    // its receiver gone it is back at once.
    assert_eq!(bodies(&q).await, [kept_hidden.as_str(), "after", "kept"]);
}

#[tokio::test]
async fn every_acknowledged_concurrent_send_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.log");
    let q = Arc::new(EmbeddedQueue::open(&path, 3, Arc::new(SystemClock)).unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let q = q.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    q.send(format!("{t}-{i}"), Duration::ZERO).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Read the file as it is, with the queue still open: acknowledged
    // sends must be there without a clean close.
    let mut replayed = Messages::default();
    let bytes = std::fs::read(&path).unwrap();
    let end = replay(&bytes, &mut replayed);
    assert!(bytes[end..].iter().all(|b| *b == 0));
    // Allocated ahead of the records.
    #[cfg(target_os = "linux")]
    assert!(bytes.len() as u64 >= end as u64 + GROW_BYTES / 2);
    assert_eq!(replayed.by_id.len(), 32 * 20);
    assert!(EmbeddedQueue::open(&path, 3, Arc::new(SystemClock)).is_err());
}

#[tokio::test]
async fn messages_of_the_database_file_move_into_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Embedded::open(&dir.path().join("hookline.redb"), Arc::new(SystemClock)).unwrap();
    let legacy = |visible_at: i64, count: u32, body: &str| {
        let mut v = visible_at.to_le_bytes().to_vec();
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(body.as_bytes());
        v
    };
    // A log the queue has had open: allocated ahead past its records.
    let log = dir.path().join("queues/apply.log");
    {
        let q = EmbeddedQueue::open(&log, 3, Arc::new(SystemClock)).unwrap();
        q.send("earlier".into(), Duration::ZERO).await.unwrap();
    }
    assert!(std::fs::metadata(&log).unwrap().len() > GROW_BYTES);
    let (live, dead) = (Ulid::new(), Ulid::new());
    {
        let txn = db.database().unwrap().begin_write().unwrap();
        let mut t = txn.open_table(codec::LEGACY_MESSAGES).unwrap();
        let now = chrono::Utc::now().timestamp_micros();
        for (queue, id, body) in [("apply", live, "queued"), ("apply.dead", dead, "dead")] {
            let key = codec::compound(queue, id.to_string().as_bytes());
            t.insert(key.as_slice(), legacy(now, 1, body).as_slice())
                .unwrap();
        }
        drop(t);
        txn.commit().unwrap();
    }
    assert_eq!(import_legacy(&db, "apply", &log).unwrap(), 2);
    assert_eq!(import_legacy(&db, "apply", &log).unwrap(), 0);
    let q = EmbeddedQueue::open(&log, 3, Arc::new(SystemClock)).unwrap();
    let mut got: Vec<_> = q
        .receive(10, LONG, Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.body, m.id, m.receive_count))
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].2), ("earlier", 1));
    assert_eq!(got[1], ("queued".to_string(), live.to_string(), 2));
    let got = q.receive_dead(10, LONG).await.unwrap();
    assert_eq!(
        (got[0].id.clone(), got[0].body.as_str()),
        (dead.to_string(), "dead")
    );
}
