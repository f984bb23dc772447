//! The apply queue's dispatcher: each message (`messages::ApplyMessage`)
//! to the domain code that does its work, and the outcomes the queue
//! settles.

use async_trait::async_trait;
use std::sync::Arc;

use crate::Platform;
use crate::collections;
use crate::error::Error;
pub use crate::messages::ApplyMessage;
use crate::platform::APPLY_MAX_RECEIVES;
use crate::ports::QueueMessage;
use crate::ports::store::Progress;
use crate::triggers::pipeline;
use crate::work::{Handler, Outcome, backoff};

pub struct ApplyHandler {
    platform: Arc<Platform>,
    /// Writes through it answer before they are durable (`Platform::deferred`).
    deferred: Arc<Platform>,
    purge_budget: std::time::Duration,
}

/// How long a message waits while the store cannot be written.
pub const POSTPONE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a message waits when the transform threads were all busy (they
/// clear their waiting jobs in well under a second).
pub const BUSY_POSTPONE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long one purge message works before it queues the rest: a third of
/// the apply function's 30 s timeout.
pub const PURGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

impl ApplyHandler {
    pub fn new(platform: Arc<Platform>) -> Self {
        Self::with_purge_budget(platform, PURGE_BUDGET)
    }

    /// With purges that queue their rest after `budget` (at least a page).
    pub fn with_purge_budget(platform: Arc<Platform>, budget: std::time::Duration) -> Self {
        Self {
            deferred: platform.deferred(),
            platform,
            purge_budget: budget,
        }
    }

    async fn apply(&self, message: &ApplyMessage) -> Result<(), Error> {
        // A purge clears page after page: each page is made durable as it
        // goes, so that a crash keeps the progress and the store can reuse
        // the space freed. Past its budget it queues the rest as a new
        // message, so that no purge outlasts a Lambda's time limit.
        let progress = match message {
            ApplyMessage::Inbound(m) => return pipeline::run(&self.deferred, m).await,
            ApplyMessage::FanOut {
                account,
                event,
                after,
            } => {
                let rest =
                    crate::delivery::events::fan_out(&self.platform, account, event, after.clone())
                        .await?;
                if let Some(after) = rest {
                    ApplyMessage::FanOut {
                        account: account.clone(),
                        event: event.clone(),
                        after: Some(after),
                    }
                    .send(&self.platform)
                    .await
                    .map_err(|e| Error::internal("queue the rest of a fan-out", e))?;
                }
                return Ok(());
            }
            ApplyMessage::Purge { kind, account, id } => {
                collections::purge_members(&self.platform, *kind, account, id, self.purge_budget)
                    .await
                    .map_err(waiting(kind.word()))?
            }
            ApplyMessage::PurgeTriggerLog {
                account,
                trigger_id,
            } => crate::triggers::purge_log(&self.platform, account, trigger_id, self.purge_budget)
                .await
                .map_err(waiting("trigger"))?,
            ApplyMessage::PurgeWebhook {
                account,
                webhook_id,
            } => crate::webhooks::purge_attempts(
                &self.platform,
                account,
                webhook_id,
                self.purge_budget,
            )
            .await
            .map_err(waiting("webhook"))?,
            ApplyMessage::PurgeCampaign {
                account,
                campaign_id,
            } => crate::campaigns::purge(&self.platform, account, campaign_id, self.purge_budget)
                .await
                .map_err(waiting("campaign"))?,
            ApplyMessage::PurgeAccount { account } => {
                crate::accounts::purge(&self.platform, account, self.purge_budget)
                    .await
                    .map_err(waiting("account"))?
            }
        };
        if progress == Progress::More {
            message
                .send(&self.platform)
                .await
                .map_err(|e| Error::internal("queue the rest of a purge", e))?;
        }
        Ok(())
    }
}

/// A purge's `Conflict` is its thing not deleted yet (its purge is queued
/// before the delete commits): said so, rather than as a failed write.
fn waiting(what: &'static str) -> impl Fn(crate::ports::StoreError) -> Error {
    move |e| match e {
        crate::ports::StoreError::Conflict => Error::conflict(
            "not_deleted_yet",
            format!(
                "the {what} is not deleted yet (its delete is in flight, or failed): its purge waits"
            ),
        ),
        other => other.into(),
    }
}

#[async_trait]
impl Handler for ApplyHandler {
    /// The batch's messages run concurrently: each waits mostly on store
    /// commits, and concurrent ones share a commit. Two messages about one
    /// contact are safe together (optimistic writes retry). Their writes are
    /// made durable together, by one sync, before any of them counts as
    /// done: a crash before it loses writes whose messages are still queued,
    /// and applying a message again has the effect of once.
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Outcome> {
        let store = &self.deferred.store;
        let generation = store.generation();
        let mut outcomes: Vec<Outcome> =
            futures::future::join_all(messages.iter().map(|m| self.one(m))).await;
        if outcomes.contains(&Outcome::Done) {
            // Writes answered before a reopen of the store may be gone, even
            // when the sync itself works.
            let synced = store.sync().await;
            let reopened = store.generation() != generation;
            if synced.is_err() || reopened {
                tracing::warn!(error = ?synced.err(), reopened, "applied writes could not be made durable; will retry");
                for (outcome, m) in outcomes.iter_mut().zip(messages) {
                    if *outcome == Outcome::Done {
                        // A reopen is the store's doing, never the message's.
                        *outcome = if reopened {
                            Outcome::Postpone(POSTPONE)
                        } else {
                            self.retry(m)
                        };
                    }
                }
            }
        }
        outcomes
    }

    async fn keep_dead(&self, m: &QueueMessage) -> Result<(), String> {
        let attempts = self.platform.apply_queue.max_receives();
        let reason = format!(
            "received {attempts} times and never finished: its worker stopped with it (a crash or a time limit), or the store failed on its last attempt"
        );
        if let Ok(ApplyMessage::Inbound(inbound)) = serde_json::from_str(&m.body) {
            pipeline::give_up(&self.platform, &inbound, attempts)
                .await
                .map_err(|e| format!("the failed request could not be logged: {e}"))?;
        }
        crate::dead_letters::keep_apply(&self.platform, &m.body, &reason, attempts)
            .await
            .map_err(|e| e.to_string())
    }
}

impl ApplyHandler {
    /// `apply`, with a panic made an error of this message alone: it is
    /// retried, then recorded as failed, and its batch-mates are untouched.
    async fn apply_caught(&self, message: &ApplyMessage) -> Result<(), Error> {
        use futures::FutureExt;
        std::panic::AssertUnwindSafe(self.apply(message))
            .catch_unwind()
            .await
            .unwrap_or_else(|p| {
                let what = crate::transforms::pool::panic_message(&*p);
                Err(Error::internal(
                    "apply a message",
                    format!("it panicked: {what}"),
                ))
            })
    }

    /// `decide`, with a dead letter kept in the store before the message
    /// may leave its queue; when it cannot be kept, the message is retried.
    async fn one(&self, m: &QueueMessage) -> Outcome {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "message",
            queue = "apply",
            message_id = %m.id,
            receive_count = m.receive_count,
            kind = tracing::field::Empty,
            account = tracing::field::Empty,
            trigger = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        // Read once: a body may be 256 KiB.
        let parsed = serde_json::from_str::<ApplyMessage>(&m.body).map_err(|e| e.to_string());
        if let Ok(message) = &parsed {
            let (kind, account, trigger, request) = match message {
                ApplyMessage::Inbound(i) => (
                    "inbound",
                    &i.account,
                    Some(&i.trigger_id),
                    Some(&i.request_id),
                ),
                ApplyMessage::Purge { account, .. } => ("purge", account, None, None),
                ApplyMessage::PurgeTriggerLog {
                    account,
                    trigger_id,
                } => ("purge_trigger_log", account, Some(trigger_id), None),
                ApplyMessage::FanOut { account, .. } => ("fan_out", account, None, None),
                ApplyMessage::PurgeWebhook { account, .. } => {
                    ("purge_webhook", account, None, None)
                }
                ApplyMessage::PurgeCampaign { account, .. } => {
                    ("purge_campaign", account, None, None)
                }
                ApplyMessage::PurgeAccount { account } => ("purge_account", account, None, None),
            };
            span.record("kind", kind);
            span.record("account", account.as_str());
            if let Some(t) = trigger {
                span.record("trigger", crate::ids::trigger_ref(t).as_str());
            }
            if let Some(r) = request {
                span.record("request_id", r.as_str());
            }
        }
        self.settled_one(m, parsed).instrument(span).await
    }

    async fn settled_one(&self, m: &QueueMessage, parsed: Result<ApplyMessage, String>) -> Outcome {
        let outcome = self.decide(m, parsed).await;
        if let Outcome::Dead(reason) = &outcome
            && let Err(e) =
                crate::dead_letters::keep_apply(&self.platform, &m.body, reason, m.receive_count)
                    .await
        {
            tracing::error!(message_id = %m.id, error = %e, "the dead letter could not be kept; will retry");
            return self.retry(m);
        }
        outcome
    }

    /// A retry, postponed without using an attempt while the store says it
    /// cannot be written.
    fn retry(&self, m: &QueueMessage) -> Outcome {
        if self.platform.store.trouble().is_some() {
            Outcome::Postpone(POSTPONE)
        } else {
            Outcome::Retry(backoff(m.receive_count))
        }
    }

    async fn decide(&self, m: &QueueMessage, parsed: Result<ApplyMessage, String>) -> Outcome {
        match parsed {
            Err(e) => Outcome::Dead(format!("not an apply message: {e}")),
            Ok(message) => match self.apply_caught(&message).await {
                Ok(()) => Outcome::Done,
                // The store, not the message: its attempts are not used up.
                Err(_) if self.platform.store.trouble().is_some() => self.retry(m),
                // Nor when the transform threads are all busy (a backlog).
                Err(Error::Busy(_)) => Outcome::Postpone(BUSY_POSTPONE),
                Err(e) if m.receive_count >= APPLY_MAX_RECEIVES => {
                    tracing::error!(message_id = %m.id, error = %e, "apply failed on the last attempt; dead-lettered");
                    // Not lost from sight: the request log says it failed. If
                    // even that cannot be written, it comes back once more,
                    // and the queue then gives up on it by itself
                    // (`keep_dead` logs it).
                    if let ApplyMessage::Inbound(inbound) = &message
                        && let Err(e) =
                            pipeline::give_up(&self.platform, inbound, m.receive_count).await
                    {
                        tracing::error!(message_id = %m.id, error = %e, "the failed request could not be logged; will retry");
                        return self.retry(m);
                    }
                    Outcome::Dead(format!("not applied after {} attempts", m.receive_count))
                }
                Err(e) => {
                    tracing::warn!(message_id = %m.id, error = %e, "apply failed; will retry");
                    self.retry(m)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::messages::Inbound;
    use crate::testkit::faulty::{Fault, Faulty};
    use chrono::Utc;

    /// A trigger without a transform or actions, in account `acc_test`.
    async fn trigger(platform: &Platform) -> crate::ids::TriggerId {
        let input = crate::triggers::NewTrigger {
            name: "T".into(),
            ..Default::default()
        };
        let (trigger, _) = crate::triggers::create(platform, "acc_test", input)
            .await
            .unwrap();
        trigger.id
    }

    /// A request to `trigger`: applied, it writes a contact and its record.
    fn message(trigger: &str, request_id: &str) -> QueueMessage {
        let m = ApplyMessage::Inbound(Inbound {
            account: "acc_test".into(),
            trigger_id: crate::ids::TriggerId::parse(trigger).expect("a trigger id"),
            request_id: crate::ids::RequestId::parse(request_id).expect("a request id"),
            received_at: Utc::now(),
            payload: serde_json::json!({"email": format!("{request_id}@example.com")})
                .as_object()
                .unwrap()
                .clone(),
            idempotency_key: None,
            body_sha256: None,
            attempt: 1,
        });
        QueueMessage {
            id: format!("msg_{request_id}"),
            receipt: "receipt".into(),
            body: m.encode(),
            receive_count: 1,
        }
    }

    #[tokio::test]
    async fn a_batch_is_done_only_once_its_writes_are_synced() {
        let (platform, _dir) = crate::testkit::platform().await;
        let handler = ApplyHandler::new(platform.clone());
        let t = trigger(&platform).await;
        let batch = [
            message(&t, "req_0000000000000000000000000a"),
            message(&t, "req_0000000000000000000000000b"),
        ];
        assert_eq!(handler.handle(&batch).await, vec![Outcome::Done; 2]);

        let failing = Platform::new(
            Arc::new(Faulty(platform.store.clone(), Fault::Syncs)),
            platform.queues(),
            platform.clock.clone(),
            Settings::default(),
        );
        let batch = [
            message(&t, "req_0000000000000000000000000c"),
            message(&t, "req_0000000000000000000000000d"),
        ];
        let outcomes = ApplyHandler::new(failing).handle(&batch).await;
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Retry(_))),
            "written but not synced: kept to be applied again, {outcomes:?}"
        );
        // The writes were made (visible), only not known to be durable.
        let record = crate::keys::trigger_request("acc_test", &t, "req_0000000000000000000000000c");
        assert!(platform.store.get(&record).await.unwrap().is_some());
    }

    /// While the store cannot be written (its disk full), even a message on
    /// its last attempt is postponed, not dead-lettered; once the store is
    /// back it is applied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_outage_postpones_instead_of_using_up_attempts() {
        let (store_disk, queue_disk) = (
            crate::testkit::power::Disk::new(),
            crate::testkit::power::Disk::new(),
        );
        let platform = crate::testkit::power::platform_on(
            &store_disk,
            &queue_disk,
            Settings::default(),
            Arc::new(crate::ports::SystemClock),
        )
        .unwrap();
        let t = trigger(&platform).await;
        let handler = ApplyHandler::new(platform.clone());
        let mut last = message(&t, "req_0000000000000000000000full");
        last.receive_count = APPLY_MAX_RECEIVES;

        store_disk.set_full(true);
        for _ in 0..3 {
            let outcome = handler.handle(std::slice::from_ref(&last)).await;
            assert_eq!(outcome, vec![Outcome::Postpone(POSTPONE)]);
        }
        assert!(platform.store.trouble().is_some());

        store_disk.set_full(false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while platform.store.trouble().is_some() {
            assert!(std::time::Instant::now() < deadline, "the store reopened");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(handler.handle(&[last]).await, vec![Outcome::Done]);
        let record = crate::keys::trigger_request("acc_test", &t, "req_0000000000000000000000full");
        let item = platform.store.get(&record).await.unwrap().unwrap();
        assert_eq!(item.body["status"], "applied", "{}", item.body);
    }

    /// Applied, synced, but the store was reopened meanwhile (its writes
    /// may be gone): postponed, even on the last attempt, never done.
    #[tokio::test]
    async fn a_batch_across_a_reopen_of_the_store_is_postponed() {
        let (platform, _dir) = crate::testkit::platform().await;
        let t = trigger(&platform).await;
        let reopening = Platform::new(
            Arc::new(Faulty(platform.store.clone(), Fault::Reopens)),
            platform.queues(),
            platform.clock.clone(),
            Settings::default(),
        );
        let mut last = message(&t, "req_00000000000000000000reopen");
        last.receive_count = APPLY_MAX_RECEIVES;
        let outcome = ApplyHandler::new(reopening).handle(&[last]).await;
        assert_eq!(outcome, vec![Outcome::Postpone(POSTPONE)]);
    }

    #[tokio::test]
    async fn a_request_given_up_on_is_logged_as_failed_and_dead_lettered() {
        let (platform, _dir) = crate::testkit::platform().await;
        let failing = Platform::new(
            Arc::new(Faulty(platform.store.clone(), Fault::DeferredPuts)),
            platform.queues(),
            platform.clock.clone(),
            Settings::default(),
        );
        let t = trigger(&platform).await;
        let handler = ApplyHandler::new(failing);
        let record = |id: &str| crate::keys::trigger_request("acc_test", &t, id);
        // Before the last attempt: retried, nothing logged yet.
        let outcome = handler
            .handle(&[message(&t, "req_0000000000000000000000000e")])
            .await;
        assert!(matches!(outcome[..], [Outcome::Retry(_)]), "{outcome:?}");
        assert!(
            platform
                .store
                .get(&record("req_0000000000000000000000000e"))
                .await
                .unwrap()
                .is_none()
        );
        // The last attempt: dead-lettered, and the request log says why.
        let mut last = message(&t, "req_0000000000000000000000000f");
        last.receive_count = APPLY_MAX_RECEIVES;
        let outcome = handler.handle(&[last]).await;
        assert!(matches!(outcome[..], [Outcome::Dead(_)]), "{outcome:?}");
        let item = platform
            .store
            .get(&record("req_0000000000000000000000000f"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.body["status"], "failed");
        let reason = item.body["reason"].as_str().unwrap();
        assert!(
            reason.contains("8 times") && reason.contains("replay"),
            "{reason}"
        );
        assert!(
            !reason.contains("injected"),
            "the store's error stays in the log"
        );
    }

    #[tokio::test]
    async fn a_request_to_a_deleted_trigger_leaves_no_record() {
        let (platform, _dir) = crate::testkit::platform().await;
        let t = trigger(&platform).await;
        crate::triggers::delete(&platform, "acc_test", &t)
            .await
            .unwrap();
        let handler = ApplyHandler::new(platform.clone());
        assert_eq!(
            handler
                .handle(&[message(&t, "req_0000000000000000000000000g")])
                .await,
            vec![Outcome::Done]
        );
        let record = crate::keys::trigger_request("acc_test", &t, "req_0000000000000000000000000g");
        assert!(platform.store.get(&record).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_message_that_panics_fails_alone() {
        let (platform, _dir) = crate::testkit::platform().await;
        let t = trigger(&platform).await;
        let panicking = Platform::new(
            Arc::new(Faulty(
                platform.store.clone(),
                Fault::DeferredPanics("req_00000000000000000000poison"),
            )),
            platform.queues(),
            platform.clock.clone(),
            Settings::default(),
        );
        let handler = ApplyHandler::new(panicking);
        let batch = [
            message(&t, "req_00000000000000000000poison"),
            message(&t, "req_0000000000000000000000fine"),
        ];
        let outcomes = handler.handle(&batch).await;
        assert!(matches!(outcomes[0], Outcome::Retry(_)), "{outcomes:?}");
        assert_eq!(outcomes[1], Outcome::Done, "its batch-mate is applied");
        let record = |id: &str| crate::keys::trigger_request("acc_test", &t, id);
        assert!(
            platform
                .store
                .get(&record("req_0000000000000000000000fine"))
                .await
                .unwrap()
                .is_some()
        );
        // On its last attempt it is recorded as failed, and dead-lettered.
        let mut last = message(&t, "req_00000000000000000000poison");
        last.receive_count = APPLY_MAX_RECEIVES;
        let outcomes = handler.handle(&[last]).await;
        assert!(matches!(outcomes[..], [Outcome::Dead(_)]), "{outcomes:?}");
        let item = platform
            .store
            .get(&record("req_00000000000000000000poison"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.body["status"], "failed");
    }

    #[tokio::test]
    async fn a_message_whose_worker_stopped_every_time_is_kept_as_a_dead_letter() {
        let (platform, _dir) = crate::testkit::platform().await;
        let t = trigger(&platform).await;
        let queue = platform.apply_queue.clone();
        let sent = message(&t, "req_000000000000000000000crash").body;
        queue
            .send(sent.clone(), std::time::Duration::ZERO)
            .await
            .unwrap();
        // Received and never settled, as by a worker that died with it.
        for _ in 0..APPLY_MAX_RECEIVES {
            let got = queue
                .receive(
                    10,
                    std::time::Duration::from_millis(1),
                    std::time::Duration::from_secs(2),
                )
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let none = queue
            .receive(
                10,
                std::time::Duration::from_secs(30),
                std::time::Duration::from_millis(50),
            )
            .await
            .unwrap();
        assert!(none.is_empty(), "the queue gave up on it");
        let handler = ApplyHandler::new(platform.clone());
        assert_eq!(crate::work::drain_dead(&*queue, &handler).await.unwrap(), 1);
        let kept = platform
            .store
            .query(crate::ports::Query::new(
                crate::keys::dead_letters("acc_test"),
                "",
            ))
            .await
            .unwrap()
            .items;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].body["request_id"], "req_000000000000000000000crash");
        assert_eq!(kept[0].body["attempts"], APPLY_MAX_RECEIVES);
        assert!(
            kept[0].body["reason"]
                .as_str()
                .unwrap()
                .contains("worker stopped")
        );
        assert_eq!(kept[0].body["message"], sent);
        assert_eq!(crate::work::drain_dead(&*queue, &handler).await.unwrap(), 0);
        // The request log says it failed, and why.
        let record = crate::keys::trigger_request("acc_test", &t, "req_000000000000000000000crash");
        let item = platform.store.get(&record).await.unwrap().unwrap();
        assert_eq!(item.body["status"], "failed");
    }

    #[tokio::test]
    async fn the_request_log_keeps_a_request_for_its_retention() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::ports::TestClock::at(Utc::now());
        let settings = Settings {
            request_log_retention: std::time::Duration::from_secs(3600),
            ..Settings::default()
        };
        let platform =
            crate::adapters::embedded::platform(dir.path(), settings, Arc::new(clock.clone()))
                .unwrap();
        let t = trigger(&platform).await;
        let handler = ApplyHandler::new(platform.clone());
        assert_eq!(
            handler
                .handle(&[message(&t, "req_0000000000000000000000kept")])
                .await,
            vec![Outcome::Done]
        );
        let record = crate::keys::trigger_request("acc_test", &t, "req_0000000000000000000000kept");
        assert!(platform.store.get(&record).await.unwrap().is_some());
        clock.advance(std::time::Duration::from_secs(3500));
        assert!(platform.store.get(&record).await.unwrap().is_some());
        clock.advance(std::time::Duration::from_secs(200));
        assert!(
            platform.store.get(&record).await.unwrap().is_none(),
            "expired an hour after it was received"
        );
    }

    #[test]
    fn messages_carry_no_character_sqs_refuses() {
        let mut m = message(
            "trg_00000000000000000000000001",
            "req_0000000000000000000000000h",
        );
        let ApplyMessage::Inbound(mut inbound) = serde_json::from_str(&m.body).unwrap() else {
            unreachable!()
        };
        inbound
            .payload
            .insert("odd\u{ffff}".into(), "a\u{fffe}b\u{ffff}".into());
        let encoded = ApplyMessage::Inbound(inbound.clone()).encode();
        assert!(!encoded.contains(['\u{fffe}', '\u{ffff}']), "{encoded}");
        m.body = encoded;
        let ApplyMessage::Inbound(back) = serde_json::from_str(&m.body).unwrap() else {
            unreachable!()
        };
        assert_eq!(back, inbound);
    }
}
