//! The logger's fan-out: every entry is redacted once, then offered to each sink through its own
//! bounded buffer. A slow sink never slows the writer: its buffer fills and further entries for
//! that sink are dropped and counted.

use std::sync::Arc;
use std::time::Duration;

use super::entry::LogEntry;
use super::outlet::Outlet;
use super::receiver::EntryReceiver;
use super::redact::{self, scrub::Scrubber};
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

/// How long [`Logger::flush`] waits for sinks and consumers that do not keep up.
const FLUSH_PATIENCE: Duration = Duration::from_secs(5);

struct Inner {
    scrubber: Scrubber,
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
        sink: Box<dyn Sink>,
        capacity: usize,
        delivery: Delivery,
    ) -> Self {
        self.outlets
            .push(Outlet::thread(name, sink, capacity, delivery));
        self
    }

    /// A sink written at once by whoever writes to the logger (see `Outlet::inline`); it never
    /// drops an entry.
    pub fn inline_sink(mut self, name: &str, sink: Box<dyn Sink>) -> Self {
        self.outlets.push(Outlet::inline(name, sink));
        self
    }

    /// An in-process consumer: returns the receiving end of a buffer of `capacity` entries.
    pub fn channel(
        mut self,
        name: &str,
        capacity: usize,
        delivery: Delivery,
    ) -> (Self, EntryReceiver) {
        let (outlet, receiver) = Outlet::channel(name, capacity, delivery);
        self.outlets.push(outlet);
        (self, receiver)
    }

    pub fn build(self) -> Logger {
        Logger {
            inner: Arc::new(Inner {
                scrubber: Scrubber::new(redact::global()),
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
        let entry = self.inner.scrubber.scrub(vec![entry]);
        for outlet in &self.inner.outlets {
            outlet.offer(&entry);
        }
    }

    /// Like [`Logger::write`], but waits for room in sinks marked [`Delivery::WaitWhenFull`].
    pub async fn write_waiting(&self, entry: LogEntry) {
        self.write_all_waiting(vec![entry]).await;
    }

    /// Like [`Logger::write_waiting`] for several entries at once, in order: each sink gets them
    /// in one hand-over.
    pub async fn write_all_waiting(&self, entries: Vec<LogEntry>) {
        let entries = self.inner.scrubber.scrub(entries);
        for outlet in &self.inner.outlets {
            match outlet.delivery {
                Delivery::DropWhenFull => outlet.offer(&entries),
                Delivery::WaitWhenFull => outlet.deliver(&entries).await,
            }
        }
    }

    /// Waits until every thread sink has written and flushed what it was given so far, and every
    /// in-process consumer has taken it. False when one of them did not within a few seconds (a
    /// stuck consumer) or could not (a closed pipe, a full disk): what was given is then not
    /// known to be out.
    pub async fn flush(&self) -> bool {
        let all = async {
            let mut out = true;
            for outlet in &self.inner.outlets {
                out &= outlet.flush().await;
            }
            out
        };
        tokio::time::timeout(FLUSH_PATIENCE, all)
            .await
            .unwrap_or(false)
    }

    /// Entries dropped so far, per sink name.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        self.inner
            .outlets
            .iter()
            .map(|o| (o.name.clone(), o.dropped()))
            .collect()
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
