//! The ports a service runs on (store, queues, clock, egress, settings),
//! built once per process by its host from the adapters it uses
//! (`adapters::embedded::DataDir::platform`, `adapters::aws::platform_from_env`).
//! The domain receives this and nothing of the adapters.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::config::Settings;
use crate::egress::Egress;
use crate::ports::{Clock, Queue, Store};

/// Receives of an apply message before it becomes a dead letter.
pub const APPLY_MAX_RECEIVES: u32 = 8;
/// Receives of a delivery message before the queue gives up on it by
/// itself. A delivery's own attempts are counted in the message, which is
/// sent again for each: a receive that ends without settling is a worker
/// that stopped with it (a crash, a time limit).
pub const DELIVERY_MAX_RECEIVES: u32 = 5;
/// Receives of a campaign message (a segment to match, a batch to post)
/// before it becomes a dead letter.
pub const CAMPAIGN_MAX_RECEIVES: u32 = 5;

pub struct Platform {
    pub store: Arc<dyn Store>,
    /// Accepted work waiting to be applied (inbound requests, event
    /// fan-out, clean-ups).
    pub apply_queue: Arc<dyn Queue>,
    /// Deliveries of events to webhooks, each attempt a message.
    pub delivery_queue: Arc<dyn Queue>,
    /// Campaign runs' work: segments of profiles to match, batches to post.
    pub campaign_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub egress: Egress,
    pub settings: Settings,
    /// What domain modules keep for the life of the process (their caches).
    pub kept: Kept,
}

/// The queues a platform runs on.
pub struct Queues {
    pub apply: Arc<dyn Queue>,
    pub delivery: Arc<dyn Queue>,
    pub campaigns: Arc<dyn Queue>,
}

impl Queues {
    /// One queue for all (tests that deliver nothing).
    pub fn single(queue: Arc<dyn Queue>) -> Self {
        Self {
            apply: queue.clone(),
            delivery: queue.clone(),
            campaigns: queue,
        }
    }
}

/// Per-process state of the domain modules, one value of each type, made
/// on first use and shared by every copy of the platform (`deferred`): the
/// platform holds a module's caches without knowing the module.
#[derive(Clone, Default)]
pub struct Kept(Arc<RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>);

impl Kept {
    /// The value of type `T`, made with `T::default()` the first time.
    pub fn get<T: Any + Default + Send + Sync>(&self) -> Arc<T> {
        let found = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&TypeId::of::<T>())
            .cloned();
        let value = match found {
            Some(value) => value,
            None => self
                .0
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(TypeId::of::<T>())
                .or_insert_with(|| Arc::new(T::default()))
                .clone(),
        };
        value.downcast().expect("kept by its own type")
    }
}

impl Platform {
    pub fn new(
        store: Arc<dyn Store>,
        queues: Queues,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self {
            egress: Egress::new(settings.allow_private_targets, settings.delivery_timeout),
            store,
            apply_queue: queues.apply,
            delivery_queue: queues.delivery,
            campaign_queue: queues.campaigns,
            clock,
            settings,
            kept: Kept::default(),
        })
    }

    /// The queues this platform runs on.
    pub fn queues(&self) -> Queues {
        Queues {
            apply: self.apply_queue.clone(),
            delivery: self.delivery_queue.clone(),
            campaigns: self.campaign_queue.clone(),
        }
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
            delivery_queue: self.delivery_queue.clone(),
            campaign_queue: self.campaign_queue.clone(),
            clock: self.clock.clone(),
            egress: self.egress.clone(),
            settings: self.settings.clone(),
            kept: self.kept.clone(),
        })
    }
}
