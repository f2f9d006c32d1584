//! The logger's fan-out: every entry is redacted once, then offered to each sink through its own
//! bounded buffer. A slow sink never slows the writer: its buffer fills and further entries for
//! that sink are dropped and counted.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::entry::LogEntry;
use super::receiver::EntryReceiver;
use super::redact::{self, Redactor};
use super::sinks::Sink;

/// What happens to an entry when a sink's buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Drop it and count the drop (UI, alerting, files).
    DropWhenFull,
    /// In [`Logger::write_waiting`], wait for room: for the primary output of a headless command,
    /// whose producer can itself slow down (a network stream) without losing anything.
    WaitWhenFull,
}

enum SinkMessage {
    Entry(Arc<LogEntry>),
    Flush(oneshot::Sender<()>),
}

enum Route {
    /// A sink driven by its own thread (blocking I/O: stdout, files).
    Thread(mpsc::Sender<SinkMessage>),
    /// An async consumer in this process (the UI, the alerting engine, tests).
    Channel(Consumer),
}

/// An in-process consumer's buffer, with counts of what went in and what it took out.
struct Consumer {
    tx: mpsc::Sender<Arc<LogEntry>>,
    sent: AtomicU64,
    taken: Arc<AtomicU64>,
}

impl Consumer {
    /// Has it taken everything it was given so far (or is it gone)?
    fn caught_up(&self, sent: u64) -> bool {
        self.taken.load(Ordering::Acquire) >= sent || self.tx.is_closed()
    }
}

struct Outlet {
    name: String,
    delivery: Delivery,
    route: Route,
    dropped: AtomicU64,
}

impl Outlet {
    fn offer(&self, entry: &Arc<LogEntry>) {
        let sent = match &self.route {
            Route::Thread(tx) => tx.try_send(SinkMessage::Entry(entry.clone())).is_ok(),
            // A consumer that is gone (or was not wanted after all) is not one that could not
            // keep up: only a full channel counts.
            Route::Channel(consumer) => match consumer.tx.try_send(entry.clone()) {
                Ok(()) => {
                    consumer.sent.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => false,
                Err(mpsc::error::TrySendError::Closed(_)) => true,
            },
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn deliver(&self, entry: &Arc<LogEntry>) {
        let sent = match &self.route {
            Route::Thread(tx) => tx.send(SinkMessage::Entry(entry.clone())).await.is_ok(),
            // Fails only when the consumer is gone: see `offer`.
            Route::Channel(consumer) => {
                if consumer.tx.send(entry.clone()).await.is_ok() {
                    consumer.sent.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn flush(&self) {
        match &self.route {
            Route::Thread(tx) => {
                let (done, wait) = oneshot::channel();
                if tx.send(SinkMessage::Flush(done)).await.is_ok() {
                    let _ = wait.await;
                }
            }
            // Polled: the consumer's side only counts, so that taking an entry stays cheap.
            Route::Channel(consumer) => {
                let sent = consumer.sent.load(Ordering::Relaxed);
                while !consumer.caught_up(sent) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

/// How long [`Logger::flush`] waits for sinks and consumers that do not keep up.
const FLUSH_PATIENCE: Duration = Duration::from_secs(5);

struct Inner {
    redactor: &'static Redactor,
    outlets: Vec<Outlet>,
}

/// The unified logger. Cheap to clone; all clones share the same sinks.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.inner.outlets.iter().map(|o| o.name.as_str()).collect();
        f.debug_struct("Logger").field("sinks", &names).finish()
    }
}

/// Builds a [`Logger`] from its sinks.
#[derive(Default)]
pub struct LoggerBuilder {
    outlets: Vec<Outlet>,
}

impl LoggerBuilder {
    /// A sink that writes on its own thread (stdout, a file), buffering up to `capacity` entries.
    pub fn sink(
        mut self,
        name: &str,
        mut sink: Box<dyn Sink>,
        capacity: usize,
        delivery: Delivery,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<SinkMessage>(capacity.max(1));
        let thread_name = format!("shiplog-sink-{name}");
        let spawned = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                while let Some(message) = rx.blocking_recv() {
                    match message {
                        SinkMessage::Entry(entry) => {
                            if let Err(err) = sink.write(&entry) {
                                tracing::warn!(error = %err, "log sink write failed");
                            }
                            // Flush when the buffer runs dry: batches writes under load, stays live when quiet.
                            if rx.is_empty() {
                                let _ = sink.flush();
                            }
                        }
                        SinkMessage::Flush(done) => {
                            let _ = sink.flush();
                            let _ = done.send(());
                        }
                    }
                }
                let _ = sink.flush();
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, sink = name, "could not start log sink thread");
        }
        self.outlets.push(Outlet {
            name: name.to_owned(),
            delivery,
            route: Route::Thread(tx),
            dropped: AtomicU64::new(0),
        });
        self
    }

    /// An in-process consumer: returns the receiving end of a buffer of `capacity` entries.
    pub fn channel(
        mut self,
        name: &str,
        capacity: usize,
        delivery: Delivery,
    ) -> (Self, EntryReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let taken = Arc::new(AtomicU64::new(0));
        self.outlets.push(Outlet {
            name: name.to_owned(),
            delivery,
            route: Route::Channel(Consumer {
                tx,
                sent: AtomicU64::new(0),
                taken: taken.clone(),
            }),
            dropped: AtomicU64::new(0),
        });
        (self, EntryReceiver::new(rx, taken))
    }

    pub fn build(self) -> Logger {
        Logger {
            inner: Arc::new(Inner {
                redactor: redact::global(),
                outlets: self.outlets,
            }),
        }
    }
}

impl Logger {
    pub fn builder() -> LoggerBuilder {
        LoggerBuilder::default()
    }

    /// Redact and offer an entry to every sink; never waits.
    pub fn write(&self, entry: LogEntry) {
        let entry = Arc::new(self.redact(entry));
        for outlet in &self.inner.outlets {
            outlet.offer(&entry);
        }
    }

    /// Like [`Logger::write`], but waits for room in sinks marked [`Delivery::WaitWhenFull`].
    pub async fn write_waiting(&self, entry: LogEntry) {
        let entry = Arc::new(self.redact(entry));
        for outlet in &self.inner.outlets {
            match outlet.delivery {
                Delivery::DropWhenFull => outlet.offer(&entry),
                Delivery::WaitWhenFull => outlet.deliver(&entry).await,
            }
        }
    }

    /// Waits until every thread sink has written and flushed what it was given so far, and every
    /// in-process consumer has taken it. False when one of them did not within a few seconds (a
    /// stuck consumer): what was given is then not known to be out.
    pub async fn flush(&self) -> bool {
        let all = async {
            for outlet in &self.inner.outlets {
                outlet.flush().await;
            }
        };
        tokio::time::timeout(FLUSH_PATIENCE, all).await.is_ok()
    }

    /// Entries dropped so far, per sink name.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        self.inner
            .outlets
            .iter()
            .map(|o| (o.name.clone(), o.dropped.load(Ordering::Relaxed)))
            .collect()
    }

    fn redact(&self, mut entry: LogEntry) -> LogEntry {
        let redactor = self.inner.redactor;
        redact_string(redactor, &mut entry.message);
        let meta = &mut entry.metadata;
        for text in [
            &mut meta.vercel_event_id,
            &mut meta.vercel_type,
            &mut meta.level,
        ]
        .into_iter()
        .flatten()
        {
            redact_string(redactor, text);
        }
        for shared in [&mut meta.vercel_deployment_id, &mut meta.project]
            .into_iter()
            .flatten()
        {
            if let Cow::Owned(clean) = redactor.redact(shared) {
                *shared = clean.into();
            }
        }
        for value in meta.extra.values_mut() {
            redactor.redact_value(value);
        }
        entry
    }
}

fn redact_string(redactor: &Redactor, text: &mut String) {
    if let Cow::Owned(clean) = redactor.redact(text) {
        *text = clean;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Severity, Tier};

    fn line(text: &str) -> LogEntry {
        LogEntry::new(Tier::Build, Severity::Info, "stdout", text)
    }

    #[tokio::test]
    async fn secrets_are_redacted_before_any_sink_sees_them() {
        let (builder, mut rx) = Logger::builder().channel("test", 8, Delivery::DropWhenFull);
        let logger = builder.build();
        let mut entry = line("token vcp_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij")
            .with_meta("header", "Authorization: Bearer abcdef0123456789");
        entry.metadata.project = Some("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB".into());
        logger.write(entry);
        let got = rx.recv().await.expect("entry delivered");
        assert!(!got.message.contains("vcp_aBcDeFgHiJ"), "{}", got.message);
        assert!(got.message.contains("[REDACTED]"));
        let header = got.metadata.get_str("header").unwrap_or_default();
        assert!(!header.contains("abcdef0123456789"), "{header}");
        assert_eq!(got.metadata.project.as_deref(), Some("[REDACTED]"));
    }

    #[tokio::test]
    async fn a_full_sink_drops_and_counts_without_blocking_the_writer() {
        let (builder, mut slow) = Logger::builder().channel("slow", 2, Delivery::DropWhenFull);
        let (builder, mut fast) = builder.channel("fast", 100, Delivery::DropWhenFull);
        let logger = builder.build();
        for i in 0..10 {
            logger.write(line(&format!("line {i}")));
        }
        assert_eq!(
            logger.dropped(),
            vec![("slow".to_owned(), 8), ("fast".to_owned(), 0)]
        );
        let mut fast_seen = 0;
        while fast.try_recv().is_ok() {
            fast_seen += 1;
        }
        assert_eq!(fast_seen, 10);
        assert_eq!(
            slow.recv().await.map(|e| e.message.clone()).as_deref(),
            Some("line 0")
        );
    }

    #[tokio::test]
    async fn a_consumer_that_is_gone_is_not_counted_as_falling_behind() {
        let (builder, gone) = Logger::builder().channel("gone", 2, Delivery::DropWhenFull);
        let (builder, waited) = builder.channel("waited", 2, Delivery::WaitWhenFull);
        let logger = builder.build();
        drop((gone, waited));
        for i in 0..10 {
            logger.write_waiting(line(&format!("line {i}"))).await;
        }
        assert_eq!(
            logger.dropped(),
            vec![("gone".to_owned(), 0), ("waited".to_owned(), 0)]
        );
    }

    #[tokio::test]
    async fn waiting_delivery_loses_nothing() {
        let (builder, mut rx) = Logger::builder().channel("primary", 1, Delivery::WaitWhenFull);
        let logger = builder.build();
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while let Some(_entry) = rx.recv().await {
                n += 1;
                if n == 50 {
                    break;
                }
            }
            n
        });
        for i in 0..50 {
            logger.write_waiting(line(&format!("line {i}"))).await;
        }
        assert_eq!(reader.await.expect("reader finished"), 50);
        assert_eq!(logger.dropped(), vec![("primary".to_owned(), 0)]);
    }

    #[tokio::test]
    async fn flush_waits_until_a_consumer_took_everything_without_crowding_other_writers() {
        let (builder, mut rx) = Logger::builder().channel("ui", 4, Delivery::DropWhenFull);
        let logger = builder.build();
        logger.write(line("one"));
        logger.write(line("two"));
        let flushing = logger.flush();
        tokio::pin!(flushing);
        assert!(
            futures_util::FutureExt::now_or_never(flushing.as_mut()).is_none(),
            "two entries not taken yet"
        );
        // Another writer meanwhile finds room as before.
        logger.write(line("three"));
        logger.write(line("four"));
        assert_eq!(logger.dropped(), vec![("ui".to_owned(), 0)]);
        for _ in 0..2 {
            rx.recv().await.expect("entry");
        }
        assert!(flushing.await, "taken: flushed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_consumer_that_never_takes_makes_flush_give_up() {
        let (builder, _stuck) = Logger::builder().channel("stuck", 4, Delivery::DropWhenFull);
        let logger = builder.build();
        logger.write(line("one"));
        assert!(!logger.flush().await);
    }
}
