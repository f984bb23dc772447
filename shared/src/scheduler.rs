//! The campaign queue's dispatcher (`messages::CampaignMessage` to
//! `campaigns::run`), and the campaigns' clock: `campaigns::run::tick`
//! every `HOOKLINE_SCHEDULER_TICK` on one machine (EventBridge Scheduler
//! calls the campaigns function every minute on AWS).

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

use crate::Platform;
use crate::campaigns::run;
use crate::messages::CampaignMessage;
use crate::ports::QueueMessage;
use crate::work::{Handler, Outcome, backoff};

pub struct CampaignHandler {
    platform: Arc<Platform>,
}

impl CampaignHandler {
    pub fn new(platform: Arc<Platform>) -> Self {
        Self { platform }
    }

    async fn one(&self, m: &QueueMessage) -> Outcome {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "message",
            queue = "campaigns",
            message_id = %m.id,
            receive_count = m.receive_count,
            account = tracing::field::Empty,
            campaign = tracing::field::Empty,
            run = tracing::field::Empty,
        );
        async {
            let message = match serde_json::from_str::<CampaignMessage>(&m.body) {
                Ok(message) => message,
                Err(e) => {
                    let reason = format!("not a campaign message: {e}");
                    return match crate::dead_letters::keep_unreadable(
                        &self.platform,
                        "campaigns",
                        &m.body,
                        &reason,
                    )
                    .await
                    {
                        Ok(()) => Outcome::Dead(reason),
                        Err(_) => Outcome::Retry(backoff(m.receive_count)),
                    };
                }
            };
            let p = &self.platform;
            let current = tracing::Span::current();
            let done = match &message {
                CampaignMessage::Segment {
                    account,
                    campaign_id,
                    run_id,
                    segment,
                    after,
                    carry,
                } => {
                    current.record("account", account.as_str());
                    current.record("campaign", campaign_id.as_str());
                    current.record("run", run_id.as_str());
                    let work = run::segment(
                        p,
                        account,
                        campaign_id,
                        run_id,
                        *segment,
                        after.clone(),
                        carry.clone(),
                    );
                    futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work)).await
                }
                CampaignMessage::Batch {
                    account,
                    campaign_id,
                    run_id,
                    users,
                } => {
                    current.record("account", account.as_str());
                    current.record("campaign", campaign_id.as_str());
                    current.record("run", run_id.as_str());
                    let work = run::batch(p, account, campaign_id, run_id, users);
                    futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work)).await
                }
            };
            match done {
                Ok(Ok(())) => Outcome::Done,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "campaign work failed; will retry");
                    Outcome::Retry(backoff(m.receive_count))
                }
                Err(panic) => {
                    let what = crate::transforms::pool::panic_message(&*panic);
                    tracing::error!(panic = %what, "campaign work panicked; it will be retried");
                    Outcome::Retry(backoff(m.receive_count))
                }
            }
        }
        .instrument(span)
        .await
    }
}

#[async_trait]
impl Handler for CampaignHandler {
    async fn handle(&self, messages: &[QueueMessage]) -> Vec<Outcome> {
        futures::future::join_all(messages.iter().map(|m| self.one(m))).await
    }

    async fn keep_dead(&self, m: &QueueMessage) -> Result<(), String> {
        let reason = format!(
            "received {} times and never finished (a crash, a time limit, or the store failing each time)",
            self.platform.campaign_queue.max_receives()
        );
        match serde_json::from_str::<CampaignMessage>(&m.body) {
            Ok(message) => {
                crate::dead_letters::keep_campaign(
                    &self.platform,
                    &message,
                    &reason,
                    m.receive_count,
                )
                .await
            }
            Err(_) => {
                crate::dead_letters::keep_unreadable(&self.platform, "campaigns", &m.body, &reason)
                    .await
            }
        }
        .map_err(|e| e.to_string())
    }
}

/// `campaigns::run::tick` every `period` until `shutdown` (one machine).
pub async fn tick_forever(
    p: Arc<Platform>,
    period: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        match run::tick(&p, p.clock.now()).await {
            Ok(r) if r.due == 0 => {}
            Ok(r) => tracing::info!(
                due = r.due,
                started = r.started,
                waiting = r.waiting,
                "campaign tick"
            ),
            Err(error) => tracing::warn!(%error, "campaign tick failed; next tick"),
        }
    }
}
