//! Everything a service needs, built once per process from the adapters of
//! the host it runs on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::embedded::{DataDir, EmbeddedError, EmbeddedStore};
use crate::config::Settings;
use crate::egress::Egress;
use crate::ports::{Clock, Queue, Store};

/// Receives of an apply message before it becomes a dead letter.
pub const APPLY_MAX_RECEIVES: u32 = 8;
/// The longest an outbound call may take, connect to last byte.
pub const EGRESS_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Platform {
    pub store: Arc<dyn Store>,
    /// Accepted work waiting to be applied (inbound requests, clean-ups).
    pub apply_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub egress: Egress,
    pub settings: Settings,
    /// Compiled trigger transforms, kept for the life of the process.
    pub transforms: Arc<crate::triggers::TransformCache>,
    /// Triggers as ingest last read them (see `triggers::TRIGGER_CACHE_TTL`).
    pub triggers: Arc<crate::triggers::TriggerCache>,
}

impl Platform {
    pub fn new(
        store: Arc<dyn Store>,
        apply_queue: Arc<dyn Queue>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self {
            egress: Egress::new(settings.allow_private_targets, EGRESS_TIMEOUT),
            store,
            apply_queue,
            clock,
            settings,
            transforms: Default::default(),
            triggers: Default::default(),
        })
    }

    /// This platform with writes that answer before they are durable, for the
    /// apply queue's handler, which syncs before it deletes what it applied
    /// (see `Store::deferred`). Caches are shared, so an edit seen by one is
    /// seen by both. Where every write is durable anyway, this platform.
    pub fn deferred(self: &Arc<Self>) -> Arc<Self> {
        let Some(store) = self.store.deferred() else {
            return self.clone();
        };
        Arc::new(Self {
            store,
            apply_queue: self.apply_queue.clone(),
            clock: self.clock.clone(),
            egress: self.egress.clone(),
            settings: self.settings.clone(),
            transforms: self.transforms.clone(),
            triggers: self.triggers.clone(),
        })
    }

    /// Under `data_dir`: the items in `hookline.redb`, the apply queue in
    /// `queues/apply.log`.
    pub fn embedded(
        data_dir: &Path,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        let data = DataDir::open(data_dir, APPLY_MAX_RECEIVES, clock.clone())?;
        Ok(Self::on_data_dir(&data, settings, clock))
    }

    /// The platform on an open data directory.
    pub fn on_data_dir(data: &DataDir, settings: Settings, clock: Arc<dyn Clock>) -> Arc<Self> {
        let store = Arc::new(EmbeddedStore::new(data.db.clone()));
        Self::new(store, data.apply.clone(), clock, settings)
    }

    /// An embedded platform on disks that can lose power (`testkit::power`).
    #[cfg(any(test, feature = "testkit"))]
    pub fn on_disks(
        store: &crate::testkit::power::Disk,
        queue: &crate::testkit::power::Disk,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        use crate::adapters::embedded::{Embedded, EmbeddedQueue};
        let db = Embedded::open_on(
            {
                let store = store.clone();
                move || store.backend()
            },
            clock.clone(),
        )?;
        let apply = EmbeddedQueue::open_on(
            Box::new(queue.medium()),
            APPLY_MAX_RECEIVES,
            clock.clone(),
            64 << 20,
        )
        .map_err(|e| EmbeddedError::Db(e.to_string()))?;
        Ok(Self::new(
            Arc::new(EmbeddedStore::new(db)),
            Arc::new(apply),
            clock,
            settings,
        ))
    }

    /// The DynamoDB table and SQS queues named by the environment that
    /// `template.yaml` gives every function.
    #[cfg(feature = "aws")]
    pub async fn aws_from_env(settings: Settings) -> Result<Arc<Self>, String> {
        use crate::adapters::aws::{DynamoStore, SqsQueue};
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        let config = aws_config::load_from_env().await;
        let clock: Arc<dyn Clock> = Arc::new(crate::ports::SystemClock);
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            &var("HOOKLINE_TABLE")?,
            clock.clone(),
        );
        let apply = SqsQueue::new(
            aws_sdk_sqs::Client::new(&config),
            var("HOOKLINE_APPLY_QUEUE_URL")?,
            var("HOOKLINE_APPLY_DLQ_URL")?,
            APPLY_MAX_RECEIVES,
        );
        Ok(Self::new(Arc::new(store), Arc::new(apply), clock, settings))
    }

    /// An embedded platform in a temporary directory, with private targets
    /// allowed (tests talk to loopback receivers).
    #[cfg(any(test, feature = "testkit"))]
    pub async fn for_tests() -> (Arc<Self>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let settings = Settings {
            allow_private_targets: true,
            ..Settings::default()
        };
        let platform = Self::embedded(dir.path(), settings, Arc::new(crate::ports::SystemClock))
            .expect("embedded platform opens");
        (platform, dir)
    }
}

/// JSON logs to stdout, as CloudWatch takes them; `RUST_LOG` filters.
#[cfg(feature = "aws")]
pub fn init_lambda_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time() // CloudWatch stamps each line
        .init();
}

/// The platform of a Lambda function, from the environment `template.yaml` sets.
#[cfg(feature = "aws")]
pub async fn lambda_platform() -> Result<Arc<Platform>, String> {
    let settings = Settings::from_env()?;
    Platform::aws_from_env(settings).await
}
