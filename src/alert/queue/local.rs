//! The queue in process: the shared queue's semantics without Redis, persisted to a file after
//! every change so that a restart loses nothing. Jobs a crashed process held count as stalled
//! when the next one opens the file. One process owns the file at a time (an OS lock); another
//! process on the same state directory queues in memory only.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::alert::channels::RateLimit;
use crate::fsutil;

use super::{Ending, Enqueued, FinishedJob, Job, QueueCounts, QueueSettings, Taken, STALLED};

/// What is persisted.
#[derive(Default, Serialize, Deserialize)]
struct Saved {
    /// Jobs with how many times each was taken.
    waiting: VecDeque<(Job, u32)>,
    /// Jobs taken and not finished; back to waiting (as stalled) when the file is reopened.
    #[serde(default)]
    active: BTreeMap<String, (Job, u32)>,
    /// Retries by due time (ms).
    #[serde(default)]
    delayed: Vec<(i64, Job, u32)>,
    #[serde(default)]
    completed: VecDeque<FinishedJob>,
    #[serde(default)]
    dead: VecDeque<FinishedJob>,
    #[serde(default)]
    completed_total: u64,
    #[serde(default)]
    next_ticket: u64,
}

impl Saved {
    /// Every change moves one of these: enough to tell whether there is anything to save.
    fn shape(&self) -> [u64; 6] {
        [
            self.waiting.len() as u64,
            self.active.len() as u64,
            self.delayed.len() as u64,
            self.dead.len() as u64,
            self.completed_total,
            self.next_ticket,
        ]
    }
}

struct State {
    saved: Saved,
    /// Ids of the jobs queued anywhere (waiting, active, delayed).
    live: HashSet<String>,
    /// When each active job's worker was last heard of.
    heard: BTreeMap<String, Instant>,
    /// The current second and how many notifications started in it.
    window: (i64, u32),
    /// When notifications started, per rate-limited scope, within its window.
    scopes: HashMap<String, VecDeque<i64>>,
}

pub struct LocalQueue {
    state: Mutex<State>,
    wake: Notify,
    settings: QueueSettings,
    /// Where it persists, with the lock held on it; none when in memory only.
    file: Option<(PathBuf, File)>,
}

impl LocalQueue {
    /// A queue in memory only.
    pub fn in_memory(settings: QueueSettings) -> Self {
        Self::with(Saved::default(), settings, None)
    }

    /// The queue persisted at `path`; opens what a previous run left, whose taken jobs count as
    /// stalled. When another process holds the file, queues in memory only.
    pub fn open(path: &Path, settings: QueueSettings) -> Self {
        // A failure shows when the lock file cannot be made, just below.
        if let Some(dir) = path.parent() {
            let _ = fsutil::private_dir(dir);
        }
        let lock_path = path.with_extension("lock");
        let lock = fsutil::private_file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .and_then(|file| {
                file.try_lock()
                    .map(|()| file)
                    .map_err(std::io::Error::other)
            });
        let lock = match lock {
            Ok(lock) => lock,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "the alert queue file is in use by another shiplog; queueing in memory");
                return Self::in_memory(settings);
            }
        };
        let saved = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                // Kept for a person to look at, not overwritten.
                let aside = path.with_extension("unreadable");
                let _ = std::fs::rename(path, &aside);
                tracing::warn!(path = %aside.display(), %err, "set an unreadable alert queue file aside");
                Saved::default()
            }),
            Err(_) => Saved::default(),
        };
        Self::with(saved, settings, Some((path.to_owned(), lock)))
    }

    fn with(mut saved: Saved, settings: QueueSettings, file: Option<(PathBuf, File)>) -> Self {
        // Whoever held these is gone: they stalled.
        let stalled = std::mem::take(&mut saved.active);
        for (_, (job, deliveries)) in stalled {
            if deliveries > settings.max_stalled {
                dead_letter(&mut saved, &settings, &job, STALLED, crate::clock::now_ms());
            } else {
                saved.waiting.push_front((job, deliveries));
            }
        }
        let live = saved
            .waiting
            .iter()
            .map(|(job, _)| job.id.clone())
            .chain(saved.delayed.iter().map(|(_, job, _)| job.id.clone()))
            .collect();
        let queue = LocalQueue {
            state: Mutex::new(State {
                saved,
                live,
                heard: BTreeMap::new(),
                window: (0, 0),
                scopes: HashMap::new(),
            }),
            wake: Notify::new(),
            settings,
            file,
        };
        if let Ok(state) = queue.state.lock() {
            queue.persist(&state);
        }
        queue
    }

    pub fn enqueue(&self, job: Job) -> Enqueued {
        let added = self.change(|state| {
            if !state.live.insert(job.id.clone()) {
                return Enqueued::Duplicate;
            }
            state.saved.waiting.push_back((job, 0));
            Enqueued::Added
        });
        if added == Some(Enqueued::Added) {
            self.wake.notify_one();
        }
        added.unwrap_or(Enqueued::Duplicate)
    }

    /// The next waiting job, waiting up to `block` for one.
    pub async fn take(&self, block: Duration) -> Option<Taken> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let wake = self.wake.notified();
            if let Some(taken) = self.take_now() {
                return Some(taken);
            }
            if tokio::time::timeout_at(deadline, wake).await.is_err() {
                return None;
            }
        }
    }

    fn take_now(&self) -> Option<Taken> {
        self.change(|state| {
            let (job, deliveries) = state.saved.waiting.pop_front()?;
            state.saved.next_ticket += 1;
            let receipt = state.saved.next_ticket.to_string();
            let deliveries = deliveries + 1;
            state
                .saved
                .active
                .insert(receipt.clone(), (job.clone(), deliveries));
            state.heard.insert(receipt.clone(), Instant::now());
            Some(Taken {
                job,
                receipt,
                deliveries,
            })
        })
        .flatten()
    }

    /// The worker holding `receipt` is alive.
    pub fn heartbeat(&self, receipt: &str) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(heard) = state.heard.get_mut(receipt) {
                *heard = Instant::now();
            }
        }
    }

    /// Takes the job out of the queue, as `ending` says.
    pub fn finish(&self, taken: &Taken, ending: Ending<'_>, at_ms: i64) {
        self.change(|state| {
            if state.saved.active.remove(&taken.receipt).is_none() {
                return;
            }
            state.heard.remove(&taken.receipt);
            state.live.remove(&taken.job.id);
            let record = ending.record(&taken.job, at_ms);
            let (list, keep) = match ending {
                Ending::Dead(_) => (&mut state.saved.dead, self.settings.keep_dead),
                Ending::Sent | Ending::Skipped(_) => {
                    (&mut state.saved.completed, self.settings.keep_completed)
                }
            };
            keep_newest(list, record, keep);
            if ending == Ending::Sent {
                state.saved.completed_total += 1;
            }
        });
    }

    /// Back in the queue at `due_ms`, as `job` (its attempts counted).
    pub fn retry_at(&self, taken: &Taken, job: Job, due_ms: i64) {
        self.change(|state| {
            if state.saved.active.remove(&taken.receipt).is_none() {
                return;
            }
            state.heard.remove(&taken.receipt);
            state.saved.delayed.push((due_ms, job, 0));
        });
    }

    /// Moves retries that are due back to waiting; how many.
    pub fn promote_due(&self, now_ms: i64) -> usize {
        let moved = self
            .change(|state| {
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.saved.delayed)
                    .into_iter()
                    .partition(|(at, _, _)| *at <= now_ms);
                state.saved.delayed = later;
                let moved = due.len();
                for (_, job, deliveries) in due {
                    state.saved.waiting.push_back((job, deliveries));
                }
                moved
            })
            .unwrap_or(0);
        if moved > 0 {
            self.wake.notify_one();
        }
        moved
    }

    /// Jobs whose worker was not heard of for the stall interval go back to waiting, or to the
    /// dead letters after `max_stalled` takeovers. How many were recovered.
    pub fn recover_stalled(&self, at_ms: i64) -> usize {
        let stall = self.settings.stall_interval;
        let recovered = self
            .change(|state| {
                let stalled: Vec<String> = state
                    .heard
                    .iter()
                    .filter(|(_, heard)| heard.elapsed() >= stall)
                    .map(|(receipt, _)| receipt.clone())
                    .collect();
                let mut recovered = 0;
                for receipt in stalled {
                    state.heard.remove(&receipt);
                    let Some((job, deliveries)) = state.saved.active.remove(&receipt) else {
                        continue;
                    };
                    if deliveries > self.settings.max_stalled {
                        state.live.remove(&job.id);
                        dead_letter(&mut state.saved, &self.settings, &job, STALLED, at_ms);
                    } else {
                        state.saved.waiting.push_front((job, deliveries));
                        recovered += 1;
                    }
                }
                recovered
            })
            .unwrap_or(0);
        if recovered > 0 {
            self.wake.notify_one();
        }
        recovered
    }

    /// None when a notification may start now, else how long until it may (the rate limit).
    pub fn rate_slot(&self, now_ms: i64) -> Option<Duration> {
        let mut state = self.state.lock().ok()?;
        let second = now_ms.div_euclid(1000);
        if state.window.0 != second {
            state.window = (second, 0);
        }
        if state.window.1 < self.settings.rate_per_second {
            state.window.1 += 1;
            None
        } else {
            Some(Duration::from_millis(
                (1000 - now_ms.rem_euclid(1000)) as u64,
            ))
        }
    }

    /// None when one more notification within `limit` may start now (it is counted), else how
    /// long until one may; in this process.
    pub fn window_slot(&self, limit: &RateLimit, now_ms: i64) -> Option<Duration> {
        let mut state = self.state.lock().ok()?;
        let window = limit.window.as_millis() as i64;
        let starts = state.scopes.entry(limit.scope.clone()).or_default();
        while starts.front().is_some_and(|&t| t <= now_ms - window) {
            starts.pop_front();
        }
        if starts.len() < limit.limit as usize {
            starts.push_back(now_ms);
            return None;
        }
        let oldest = starts.front().copied().unwrap_or(now_ms);
        Some(Duration::from_millis(
            (oldest + window - now_ms).max(1) as u64
        ))
    }

    pub fn counts(&self) -> QueueCounts {
        let Ok(state) = self.state.lock() else {
            return QueueCounts::default();
        };
        QueueCounts {
            waiting: state.saved.waiting.len() as u64,
            in_flight: state.saved.active.len() as u64,
            retrying: state.saved.delayed.len() as u64,
            dead_lettered: state.saved.dead.len() as u64,
            completed: state.saved.completed_total,
        }
    }

    pub fn recent_dead(&self, limit: usize) -> Vec<FinishedJob> {
        self.state
            .lock()
            .map(|state| state.saved.dead.iter().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// Applies a change, and persists it if it changed anything.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> T) -> Option<T> {
        let mut state = self.state.lock().ok()?;
        let before = state.saved.shape();
        let result = change(&mut state);
        if state.saved.shape() != before {
            self.persist(&state);
        }
        Some(result)
    }

    /// Writes the queue to its file.
    fn persist(&self, state: &State) {
        let Some((path, _lock)) = &self.file else {
            return;
        };
        let written = serde_json::to_vec(&state.saved)
            .map_err(std::io::Error::other)
            .and_then(|bytes| fsutil::replace(path, &bytes));
        if let Err(err) = written {
            tracing::warn!(path = %path.display(), %err, "could not save the alert queue");
        }
    }
}

fn dead_letter(saved: &mut Saved, settings: &QueueSettings, job: &Job, reason: &str, at_ms: i64) {
    let record = FinishedJob::of(job, at_ms, Some(reason.to_owned()));
    keep_newest(&mut saved.dead, record, settings.keep_dead);
}

/// Puts `record` first in a list of finished jobs that keeps the newest `keep`.
fn keep_newest(list: &mut VecDeque<FinishedJob>, record: FinishedJob, keep: usize) {
    list.push_front(record);
    list.truncate(keep);
}
