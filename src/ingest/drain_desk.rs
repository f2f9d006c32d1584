//! Takes the drained batches the listener acknowledged: each record once (a window of record
//! ids, as Vercel may send a batch again), build records joined to their deployment's build log
//! unless the events API already gives that log here, runtime records as runtime log rows, so
//! the same rules see them. Records stream from a blocking reader into the logger in chunks:
//! a batch costs a chunk's memory beyond its compressed bytes.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use super::drain::{for_each_record, DrainRecord};
use crate::log::{LogEntry, Logger};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::StateStore;
use crate::stream::engine::EngineSnapshot;
use crate::stream::entries::{build_entry, EntryContext};
use crate::stream::identity::stable_deployment_id;
use crate::stream::options::StreamHealth;
use crate::stream::runtime::entries::row_entry;
use crate::stream::runtime::SeenRows;
use crate::vercel::VercelEvent;

/// The route batches come in on, as the metrics name it.
pub const DRAIN_ROUTE: &str = "/vercel/drain";

/// Record ids remembered, to drop a batch's records sent again.
const SEEN_RECORDS: usize = 100_000;

/// Entries handed to the logger together.
const CHUNK: usize = 1000;

/// A batch the listener checked (signature, shape) and acknowledged.
pub struct DrainBatch {
    pub body: Bytes,
    pub gzip: bool,
    /// Its share of the bytes the queue may hold, given back once it is taken.
    pub room: OwnedSemaphorePermit,
}

/// The batch's records as bytes to read: the body itself, or gunzipped within `limit` bytes.
pub fn decoded(body: Bytes, gzip: bool, limit: u64) -> Box<dyn Read + Send> {
    let raw = std::io::Cursor::new(body);
    if gzip {
        Box::new(flate2::read::GzDecoder::new(raw).take(limit))
    } else {
        Box::new(raw)
    }
}

pub struct DrainDesk {
    store: StateStore,
    logger: Logger,
    metrics: Arc<Metrics>,
    /// Which deployments the streaming engine follows (their build logs come from the events
    /// API) and which project it watches.
    engine: watch::Receiver<EngineSnapshot>,
    project: Option<String>,
    seen: SeenRows,
    contexts: HashMap<String, EntryContext>,
    decoded_limit: u64,
}

impl DrainDesk {
    pub fn new(
        store: StateStore,
        logger: Logger,
        metrics: Arc<Metrics>,
        engine: watch::Receiver<EngineSnapshot>,
        project: Option<String>,
        decoded_limit: u64,
    ) -> Self {
        DrainDesk {
            store,
            logger,
            metrics,
            engine,
            project,
            seen: SeenRows::new(SEEN_RECORDS),
            contexts: HashMap::new(),
            decoded_limit,
        }
    }

    /// Takes batches from `queue` until `shutdown` (then those still queued) or until the
    /// listener is gone.
    pub async fn run(mut self, mut queue: mpsc::Receiver<DrainBatch>, mut shutdown: Shutdown) {
        let mut stopping = false;
        while let Some(batch) = super::next_queued(&mut queue, &mut shutdown, &mut stopping).await {
            self.take(batch).await;
        }
    }

    pub async fn take(&mut self, batch: DrainBatch) {
        let (records, mut incoming) = mpsc::channel(CHUNK);
        let reader = decoded(batch.body, batch.gzip, self.decoded_limit);
        // The batch was read whole before it was acknowledged: it reads again the same.
        let reading = tokio::task::spawn_blocking(move || {
            for_each_record(reader, |record| {
                let _ = records.blocking_send(record);
            })
        });
        let mut entries = Vec::with_capacity(CHUNK);
        while let Some(record) = incoming.recv().await {
            if let Some(entry) = self.entry(record).await {
                entries.push(entry);
            }
            if entries.len() == CHUNK {
                self.logger
                    .write_all_waiting(std::mem::take(&mut entries))
                    .await;
            }
        }
        if !entries.is_empty() {
            self.logger.write_all_waiting(entries).await;
        }
        let _ = reading.await;
        drop(batch.room);
    }

    /// The entry a record makes; `None` when it is one already taken, of a deployment whose
    /// build log the events API gives here, or of a project not watched.
    async fn entry(&mut self, record: DrainRecord) -> Option<LogEntry> {
        let first = if record.id.is_empty() {
            self.seen.insert_key((
                &record.deployment_id,
                record.timestamp_ms,
                &record.message,
                &record.path,
            ))
        } else {
            self.seen.insert_key((&record.deployment_id, &record.id))
        };
        let kind = if !first {
            "repeated"
        } else if !self.watched(&record) {
            "other_project"
        } else if record.is_build() && self.followed(&record.deployment_id) {
            "covered"
        } else if record.is_build() {
            "build"
        } else {
            "runtime"
        };
        self.metrics.drain_record(kind);
        if record.timestamp_ms > 0 {
            let lag = crate::clock::now_ms() - record.timestamp_ms;
            self.metrics.observe_ingest_lag(lag.max(0) as u64);
        }
        if !matches!(kind, "build" | "runtime") {
            return None;
        }
        let ctx = self.context(&record).await;
        Some(if record.is_build() {
            let event = VercelEvent {
                created: record.timestamp_ms,
                kind: record.kind.clone().unwrap_or_else(|| "stdout".to_owned()),
                text: record.message,
                level: (record.level != "info").then_some(record.level),
                id: record.id,
            };
            build_entry(event, &ctx)
        } else {
            let target = record.environment.clone();
            row_entry(record.into_runtime_row(), &ctx, target.as_deref())
        })
    }

    fn watched(&self, record: &DrainRecord) -> bool {
        self.project.as_ref().is_none_or(|watched| {
            [&record.project_id, &record.project_name]
                .into_iter()
                .flatten()
                .any(|p| p == watched)
        })
    }

    /// Whether the streaming engine follows (or followed to its end) the deployment in this
    /// run: a follower that gave up (degraded) leaves the drain to tell the log.
    fn followed(&self, deployment: &str) -> bool {
        self.engine
            .borrow()
            .health
            .get(deployment)
            .is_some_and(|health| *health != StreamHealth::Degraded)
    }

    async fn context(&mut self, record: &DrainRecord) -> EntryContext {
        if let Some(ctx) = self.contexts.get(&record.deployment_id) {
            return ctx.clone();
        }
        let ctx = EntryContext {
            deployment_id: stable_deployment_id(&self.store, &record.deployment_id)
                .await
                .into(),
            vercel_id: record.deployment_id.as_str().into(),
            project_id: record.project_id.as_deref().map(Arc::from),
            project_name: record.project_name.as_deref().map(Arc::from),
            git: None,
            replayed: false,
        };
        // A few deployments drain at once; the map is emptied now and then, not grown forever.
        if self.contexts.len() >= 1024 {
            self.contexts.clear();
        }
        self.contexts
            .insert(record.deployment_id.clone(), ctx.clone());
        ctx
    }
}
