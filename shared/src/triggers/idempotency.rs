//! `Idempotency-Key`: a request sent again with the key it was first sent
//! with is answered with the first one's id and not queued twice, for
//! `IDEMPOTENCY_WINDOW` from its receipt.

use serde_json::json;
use std::time::Duration;

use crate::Platform;
use crate::error::Error;
use crate::keys;
use crate::messages::Inbound;
use crate::ports::{Cond, Put, StoreError};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Marks a key this request claimed (or one whose claim lapsed, under
/// `Cond::Absent`) as queued, for the idempotency window from
/// `received_at`: repeats answer its request id from now on.
pub(super) async fn mark_queued(
    p: &Platform,
    key: crate::ports::Key,
    cond: Cond,
    request_id: &str,
    body_sha256: &str,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let expires = received_at + chrono::TimeDelta::from_std(IDEMPOTENCY_WINDOW).expect("in range");
    let queued = json!({"request_id": request_id, "body_sha256": body_sha256, "state": "queued"});
    let put = Put::new(key, queued).when(cond).expires(expires);
    p.store.put(put).await.map(|_| ())
}

/// Called when a request is applied: should ingest have queued it but failed
/// to mark its `Idempotency-Key` queued (a store error, a timeout between
/// the two), the key would lapse as pending within a minute and a retry
/// after that be taken as a new request. Marked now, it holds for the
/// idempotency window; a lapsed one is made again, unless a retry has
/// claimed it meanwhile (then nothing can tell the two apart).
pub async fn settle_key(p: &Platform, m: &Inbound) -> Result<(), StoreError> {
    let (Some(k), Some(hash)) = (&m.idempotency_key, &m.body_sha256) else {
        return Ok(());
    };
    let key = keys::idempotency(&m.trigger_id, k);
    let cond = match p.store.get(&key).await? {
        None => Cond::Absent,
        Some(item)
            if item.body["state"] == "pending" && item.body["request_id"] == *m.request_id =>
        {
            Cond::Version(item.version)
        }
        Some(_) => return Ok(()),
    };
    let written = mark_queued(p, key, cond, &m.request_id, hash, m.received_at).await;
    match written {
        // Marked meanwhile by ingest or another delivery, or claimed by a retry.
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

/// How long a claimed key may stay pending (claimed, not yet queued) before
/// it lapses, should the process die between the two.
const PENDING_WINDOW: Duration = Duration::from_secs(60);

pub(super) enum Claim {
    /// This request holds the key: the item and its version.
    Ours(crate::ports::Key, u64),
    /// A repeat of a queued request: its id.
    Repeat(String),
}

/// Claims an `Idempotency-Key` for this request, or answers why not.
pub(super) async fn claim_key(
    p: &Platform,
    trigger: &str,
    k: &str,
    request_id: &str,
    hash: &str,
) -> Result<Claim, Error> {
    let key = keys::idempotency(trigger, k);
    let pending_until =
        p.clock.now() + chrono::TimeDelta::from_std(PENDING_WINDOW).expect("in range");
    let pending = json!({"request_id": request_id, "body_sha256": hash, "state": "pending"});
    match p
        .store
        .put(
            Put::new(key.clone(), pending)
                .when(Cond::Absent)
                .expires(pending_until),
        )
        .await
    {
        Ok(version) => return Ok(Claim::Ours(key, version)),
        Err(StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    let first = p.store.get(&key).await?;
    let busy = || {
        Error::conflict(
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is being accepted; retry in a moment",
        )
    };
    let Some(first) = first else {
        return Err(busy());
    };
    if first.body["body_sha256"] != hash {
        return Err(Error::invalid(
            "idempotency_key_reused",
            "this Idempotency-Key came with a different body: use a new key for a new request",
        ));
    }
    match (
        first.body["state"].as_str(),
        first.body["request_id"].as_str(),
    ) {
        (Some("queued"), Some(id)) => Ok(Claim::Repeat(id.to_string())),
        // Our own claim: the put succeeded and its answer was lost, so the
        // store's retry found the claim there (a conflict with itself).
        (Some("pending"), Some(id)) if id == request_id => Ok(Claim::Ours(key, first.version)),
        _ => Err(busy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids;
    use std::sync::Arc;

    /// A put whose answer was lost and which was sent again finds its own
    /// pending claim: it is ours, not another request's (409).
    #[tokio::test]
    async fn a_claim_found_pending_for_this_request_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::adapters::embedded::platform(
            dir.path(),
            crate::config::Settings::default(),
            Arc::new(crate::ports::SystemClock),
        )
        .unwrap();
        let hash = super::super::sha256_hex_bytes(b"{}");
        let request_id = ids::RequestId::new();
        let Claim::Ours(key, first) = claim_key(&p, "trg_x", "k", &request_id, &hash)
            .await
            .unwrap()
        else {
            panic!("a fresh key is ours");
        };
        match claim_key(&p, "trg_x", "k", &request_id, &hash).await {
            Ok(Claim::Ours(again, version)) => assert_eq!((again, version), (key, first)),
            Ok(Claim::Repeat(_)) => panic!("a pending claim is no repeat"),
            Err(e) => panic!("its own claim refused: {e}"),
        }
        // Another request with the key is still told to wait.
        let other = claim_key(&p, "trg_x", "k", &ids::RequestId::new(), &hash).await;
        assert!(
            matches!(&other, Err(e) if e.to_string().contains("being accepted")),
            "{:?}",
            other.map(|_| ())
        );
    }

    #[tokio::test]
    async fn a_key_left_pending_is_marked_queued_when_its_request_is_applied() {
        use crate::ports::TestClock;
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::at(chrono::Utc::now());
        let p = crate::adapters::embedded::platform(
            dir.path(),
            crate::config::Settings::default(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        let (trigger, body) = (
            &crate::ids::TriggerId::parse("trg_01jd0000000000000000000000").unwrap(),
            br#"{"email":"a@example.com"}"#,
        );
        // Claimed and queued, but never marked queued (ingest failed there);
        // applied at once, or only once the pending claim has lapsed.
        let hash = super::super::sha256_hex_bytes(body);
        for (k, applied_after) in [("order-1", 0), ("order-2", 120)] {
            let request_id = crate::ids::RequestId::new();
            let Claim::Ours(..) = claim_key(&p, trigger, k, &request_id, &hash).await.unwrap()
            else {
                panic!("a fresh key is ours");
            };
            let inbound = Inbound {
                account: "acc_test".into(),
                trigger_id: trigger.clone(),
                request_id: request_id.clone(),
                received_at: p.clock.now(),
                payload: serde_json::from_slice(body).unwrap(),
                idempotency_key: Some(k.into()),
                body_sha256: Some(hash.clone()),
                attempt: 1,
            };
            clock.advance(Duration::from_secs(applied_after));
            crate::triggers::pipeline::run(&p, &inbound).await.unwrap();
            // Well past the pending window: a retry is still its repeat.
            clock.advance(Duration::from_secs(600));
            match claim_key(&p, trigger, k, &ids::new_id("req"), &hash).await {
                Ok(Claim::Repeat(first)) => assert_eq!(first, request_id.as_str(), "{k}"),
                Ok(Claim::Ours(..)) => panic!("{k} lapsed: the retry would be a new request"),
                Err(e) => panic!("{k}: {e}"),
            }
        }
    }
}
