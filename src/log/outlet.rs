//! One way out of the logger: a sink on its own thread (stdout, a file), a sink written in the
//! writer's own task (the stdout of a one-stream command), or an in-process consumer (the
//! dashboard, the alert rules), each but the second behind its own bounded buffer. Entries go
//! out in batches where the writer has them (a chunk of a build log), so that a busy stream wakes
//! a sink thread once per batch rather than once per line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore, SemaphorePermit};

use super::entry::LogEntry;
use super::fanout::Delivery;
use super::receiver::EntryReceiver;
use super::sinks::Sink;

pub(super) struct Outlet {
    pub name: String,
    pub delivery: Delivery,
    route: Route,
    dropped: AtomicU64,
}

enum Route {
    /// A sink driven by its own thread (blocking I/O: stdout, files).
    Thread(SinkThread),
    /// A sink written by whoever writes to the logger, at once.
    Inline(Mutex<Box<dyn Sink>>),
    /// An async consumer in this process (the UI, the alerting engine, tests).
    Channel(Consumer),
}

enum SinkMessage {
    Entries(Vec<Arc<LogEntry>>),
    /// Answers whether everything so far is out.
    Flush(oneshot::Sender<bool>),
}

/// The way to a sink thread. `room` holds one permit per entry the buffer may still take; the
/// thread gives them back as it writes.
struct SinkThread {
    tx: mpsc::UnboundedSender<SinkMessage>,
    room: Arc<Semaphore>,
    capacity: usize,
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

impl Outlet {
    /// Starts the thread that drives `sink`, buffering up to `capacity` entries.
    pub fn thread(
        name: &str,
        mut sink: Box<dyn Sink>,
        capacity: usize,
        delivery: Delivery,
    ) -> Self {
        let capacity = capacity.max(1);
        let (tx, mut rx) = mpsc::unbounded_channel::<SinkMessage>();
        let room = Arc::new(Semaphore::new(capacity));
        let freed = room.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("shiplog-sink-{name}"))
            .spawn(move || drive(sink.as_mut(), &mut rx, &freed));
        if let Err(err) = spawned {
            tracing::error!(error = %err, sink = name, "could not start log sink thread");
        }
        Outlet::new(
            name,
            delivery,
            Route::Thread(SinkThread { tx, room, capacity }),
        )
    }

    /// A sink written in the writer's own task: no buffer, no thread, no hand-over. For the
    /// primary output of a command that follows one stream, which has nothing better to do while
    /// its output is slow.
    pub fn inline(name: &str, sink: Box<dyn Sink>) -> Self {
        Outlet::new(
            name,
            Delivery::WaitWhenFull,
            Route::Inline(Mutex::new(sink)),
        )
    }

    /// An in-process consumer with a buffer of `capacity` entries, and its receiving end.
    pub fn channel(name: &str, capacity: usize, delivery: Delivery) -> (Self, EntryReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let taken = Arc::new(AtomicU64::new(0));
        let consumer = Consumer {
            tx,
            sent: AtomicU64::new(0),
            taken: taken.clone(),
        };
        let outlet = Outlet::new(name, delivery, Route::Channel(consumer));
        (outlet, EntryReceiver::new(rx, taken))
    }

    fn new(name: &str, delivery: Delivery, route: Route) -> Self {
        Outlet {
            name: name.to_owned(),
            delivery,
            route,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands the entries over if there is room for them; drops and counts them otherwise.
    pub fn offer(&self, entries: &[Arc<LogEntry>]) {
        let dropped = match &self.route {
            Route::Thread(sink) => entries
                .chunks(sink.capacity)
                .map(|part| sink.send(part, sink.room.try_acquire_many(part.len() as u32).ok()))
                .sum(),
            Route::Channel(consumer) => entries
                .iter()
                // A consumer that is gone (or was not wanted after all) is not one that could
                // not keep up: only a full channel counts.
                .filter(|entry| match consumer.tx.try_send(Arc::clone(entry)) {
                    Ok(()) => {
                        consumer.sent.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                })
                .count(),
            Route::Inline(sink) => write_inline(sink, entries),
        };
        self.count_dropped(dropped);
    }

    /// Hands the entries over, waiting for room.
    pub async fn deliver(&self, entries: &[Arc<LogEntry>]) {
        let dropped = match &self.route {
            Route::Thread(sink) => {
                let mut dropped = 0;
                for part in entries.chunks(sink.capacity) {
                    let room = sink.room.acquire_many(part.len() as u32).await.ok();
                    dropped += sink.send(part, room);
                }
                dropped
            }
            // Fails only when the consumer is gone: see `offer`.
            Route::Channel(consumer) => {
                for entry in entries {
                    if consumer.tx.send(Arc::clone(entry)).await.is_ok() {
                        consumer.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                0
            }
            Route::Inline(sink) => write_inline(sink, entries),
        };
        self.count_dropped(dropped);
    }

    /// Waits until the sink has written and flushed what it was given, or the consumer has
    /// taken it; false when the sink could not (what it was given is not known to be out).
    pub async fn flush(&self) -> bool {
        match &self.route {
            Route::Thread(sink) => {
                let (done, wait) = oneshot::channel();
                sink.tx.send(SinkMessage::Flush(done)).is_ok() && wait.await.unwrap_or(false)
            }
            Route::Inline(sink) => lock(sink).sync().is_ok(),
            // Polled: the consumer's side only counts, so that taking an entry stays cheap.
            Route::Channel(consumer) => {
                let sent = consumer.sent.load(Ordering::Relaxed);
                while !consumer.caught_up(sent) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                true
            }
        }
    }

    fn count_dropped(&self, entries: usize) {
        if entries > 0 && self.dropped.fetch_add(entries as u64, Ordering::Relaxed) == 0 {
            // Once: further losses are counted (see `dropped`), not each written to the log.
            tracing::warn!(sink = %self.name, "a log sink lost entries; further losses are only counted");
        }
    }
}

/// How long a sink thread that ran dry waits for more before it sleeps on its channel: under
/// load (a team's builds) it then wakes every few milliseconds, not once per batch, and the
/// output still appears at once (it is flushed first).
const LINGER: Duration = Duration::from_millis(5);

/// A sink thread's life: write what comes, flush when the channel runs dry, until every sender
/// is gone.
fn drive(sink: &mut dyn Sink, rx: &mut mpsc::UnboundedReceiver<SinkMessage>, freed: &Semaphore) {
    while let Some(message) = rx.blocking_recv() {
        write_message(sink, message, freed);
        loop {
            match rx.try_recv() {
                Ok(message) => write_message(sink, message, freed),
                Err(mpsc::error::TryRecvError::Empty) => {
                    let _ = sink.flush();
                    std::thread::sleep(LINGER);
                    if rx.is_empty() {
                        break;
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
    }
    let _ = sink.flush();
}

fn write_message(sink: &mut dyn Sink, message: SinkMessage, freed: &Semaphore) {
    match message {
        SinkMessage::Entries(entries) => {
            // Said once per batch: a sink that fails (a full disk) fails for every entry.
            let mut failed = entries.iter().filter_map(|entry| sink.write(entry).err());
            if let Some(err) = failed.next() {
                let count = 1 + failed.count();
                tracing::warn!(error = %err, count, "log sink write failed");
            }
            freed.add_permits(entries.len());
        }
        SinkMessage::Flush(done) => {
            let _ = done.send(sink.sync().is_ok());
        }
    }
}

fn lock(sink: &Mutex<Box<dyn Sink>>) -> std::sync::MutexGuard<'_, Box<dyn Sink>> {
    sink.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes entries to an inline sink and flushes them out (one write for the batch); returns how
/// many could not be written (all of a batch whose flush failed: a closed pipe, a full disk).
fn write_inline(sink: &Mutex<Box<dyn Sink>>, entries: &[Arc<LogEntry>]) -> usize {
    let mut sink = lock(sink);
    let mut failed = entries
        .iter()
        .filter(|entry| sink.write(entry).is_err())
        .count();
    if sink.flush().is_err() {
        failed = entries.len();
    }
    failed
}

impl SinkThread {
    /// Sends `part` to the thread when `room` was found for it (the thread gives the room back
    /// once written); returns how many entries were lost: all of them without room, or when the
    /// thread is gone.
    fn send(&self, part: &[Arc<LogEntry>], room: Option<SemaphorePermit<'_>>) -> usize {
        let Some(room) = room else {
            return part.len();
        };
        room.forget();
        match self.tx.send(SinkMessage::Entries(part.to_vec())) {
            Ok(()) => 0,
            Err(_) => part.len(),
        }
    }
}
