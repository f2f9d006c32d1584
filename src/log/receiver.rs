//! The receiving end of an in-process outlet (the dashboard, the alert rules): entries as the
//! logger's fan-out hands them over. Every entry it hands out counts as taken, which is what
//! [`Logger::flush`](super::Logger::flush) waits for before a follower saves its place.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TryRecvError};

use super::entry::LogEntry;

pub struct EntryReceiver {
    rx: mpsc::Receiver<Arc<LogEntry>>,
    taken: Arc<AtomicU64>,
}

impl EntryReceiver {
    pub(super) fn new(rx: mpsc::Receiver<Arc<LogEntry>>, taken: Arc<AtomicU64>) -> Self {
        EntryReceiver { rx, taken }
    }

    /// The next entry; `None` once every logger is gone.
    pub async fn recv(&mut self) -> Option<Arc<LogEntry>> {
        let entry = self.rx.recv().await;
        self.count(usize::from(entry.is_some()));
        entry
    }

    /// The next entry if one is waiting.
    pub fn try_recv(&mut self) -> Result<Arc<LogEntry>, TryRecvError> {
        let entry = self.rx.try_recv();
        self.count(usize::from(entry.is_ok()));
        entry
    }

    /// Up to `limit` entries into `buffer`, waiting for the first; 0 once every logger is gone.
    pub async fn recv_many(&mut self, buffer: &mut Vec<Arc<LogEntry>>, limit: usize) -> usize {
        let received = self.rx.recv_many(buffer, limit).await;
        self.count(received);
        received
    }

    fn count(&self, entries: usize) {
        self.taken.fetch_add(entries as u64, Ordering::Release);
    }
}
