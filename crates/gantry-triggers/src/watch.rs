//! One watch of the applied pipelines, shared by every trigger kind. It reads and deserialises
//! the pipelines only when the store's fingerprint of them (one row of aggregates) has moved,
//! whichever process changed them; request paths (a push, a webhook delivery) check the
//! fingerprint before they match, so a pipeline applied a moment ago is seen, and loops that
//! wait (cron, polling) are woken through [`PipelineWatch::subscribe`] when the set changes.
//! [`PipelineWatch::follow`] reads them again when the store says this process changed them
//! (`Store::pipeline_changes`); only on PostgreSQL, where other servers change them unseen,
//! does it also look at the fingerprint once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gantry_config::Pipeline;
use gantry_store::{Backend, PipelinesFingerprint, Store};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

/// How often [`PipelineWatch::follow`] looks for changes another server sharing a PostgreSQL
/// database made, which this process's store cannot tell it about.
const NOTICE_EVERY: Duration = Duration::from_secs(1);

/// The applied pipelines that read, by name, each with only the triggers that may fire
/// (those a person disabled are left out, so no kind sees them); unreadable specs are left
/// out (the engine reports them when one is run).
pub type Pipelines = Arc<Vec<Pipeline>>;

/// Cheap to clone; clones share what was read.
#[derive(Clone)]
pub struct PipelineWatch {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// The fingerprint of what `pipelines` holds; held while reloading, so that concurrent
    /// callers read the store once.
    loaded: Mutex<Option<PipelinesFingerprint>>,
    pipelines: watch::Sender<Pipelines>,
    loads: AtomicU64,
}

impl PipelineWatch {
    /// Nothing is read until the first [`current`](Self::current).
    pub fn new(store: Store) -> PipelineWatch {
        PipelineWatch {
            inner: Arc::new(Inner {
                store,
                loaded: Mutex::new(None),
                pipelines: watch::Sender::new(Arc::default()),
                loads: AtomicU64::new(0),
            }),
        }
    }

    /// The pipelines as applied now: read again only if they changed since the last read.
    /// When the store cannot be asked, the last ones read.
    pub async fn current(&self) -> Pipelines {
        let mut loaded = self.inner.loaded.lock().await;
        let fingerprint = match self.inner.store.pipelines_fingerprint().await {
            Ok(fingerprint) => fingerprint,
            Err(error) => {
                tracing::error!(%error, "cannot look for changed pipelines for triggers");
                return self.latest();
            }
        };
        if *loaded == Some(fingerprint) {
            return self.latest();
        }
        // The fingerprint is taken before the read: a change in between is read again next
        // time rather than missed.
        let pipelines = match self.inner.store.pipelines().await {
            Ok(records) => records
                .into_iter()
                .filter_map(firing_triggers)
                .collect::<Vec<Pipeline>>(),
            Err(error) => {
                tracing::error!(%error, "cannot read pipelines for triggers");
                return self.latest();
            }
        };
        self.inner.loads.fetch_add(1, Ordering::Relaxed);
        *loaded = Some(fingerprint);
        let pipelines = Arc::new(pipelines);
        self.inner.pipelines.send_replace(pipelines.clone());
        pipelines
    }

    /// The pipelines last read, without asking the store.
    pub fn latest(&self) -> Pipelines {
        self.inner.pipelines.borrow().clone()
    }

    /// Wakes (`changed()`) whenever another set of pipelines was read.
    pub fn subscribe(&self) -> watch::Receiver<Pipelines> {
        self.inner.pipelines.subscribe()
    }

    /// How many times the pipelines were read and deserialised.
    pub fn loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Reads the pipelines again whenever the store says they changed, until `shutdown`, for
    /// the loops that wait; on a shared database also every [`NOTICE_EVERY`].
    pub async fn follow(self, shutdown: CancellationToken) {
        let mut changes = self.inner.store.pipeline_changes();
        let shared = self.inner.store.backend() == Backend::Postgres;
        loop {
            self.current().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                // The store outlives this watch, which holds it: the sender is never dropped.
                _ = changes.changed() => {}
                _ = tokio::time::sleep(NOTICE_EVERY), if shared => {}
            }
        }
    }
}

/// The pipeline a record holds, without its disabled triggers.
fn firing_triggers(record: gantry_store::PipelineRecord) -> Option<Pipeline> {
    let mut pipeline: Pipeline = serde_json::from_value(record.spec).ok()?;
    if !record.disabled_triggers.is_empty() {
        let mut position = 0;
        pipeline.triggers.retain(|_| {
            position += 1;
            !record.disabled_triggers.contains(&position)
        });
    }
    Some(pipeline)
}
