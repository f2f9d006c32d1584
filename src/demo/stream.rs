//! The body of an NDJSON events response: backlog, live events, keepalives, and faults.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::demo::model::Fault;
use crate::demo::render;
use crate::demo::state::{Progress, SimDeployment};

/// The keepalive line sent on an idle follow stream: an object without `created`.
pub const KEEPALIVE_LINE: &str = "{}\n";

/// Real-time interval between keepalives on an idle follow stream (divided by speed, but never
/// below [`MIN_KEEPALIVE`]).
pub(crate) const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);
pub(crate) const MIN_KEEPALIVE: Duration = Duration::from_millis(50);

/// Backlog is written in chunks of about this size.
const CHUNK: usize = 64 * 1024;

/// Which events a response covers.
pub(crate) struct Plan {
    /// First index (from `since`).
    pub start: usize,
    /// One past the last index (from `until`, and for non-follow the produced count).
    pub end: usize,
    pub limit: Option<usize>,
    pub follow: bool,
    pub backward: bool,
    /// Whether position faults may fire on this response.
    pub faults: bool,
}

enum Step {
    Data(Bytes),
    /// Let the connection flush what was written so far.
    Flush,
    /// Abort the connection (no chunked terminator).
    Abort,
    /// End the response cleanly.
    End,
    /// Write nothing more; wait for the client to go away (or shutdown).
    Stall,
}

enum Next {
    Event(usize),
    Wait,
    Exhausted,
}

pub(crate) struct Streamer {
    dep: Arc<SimDeployment>,
    progress: watch::Receiver<Progress>,
    shutdown: watch::Receiver<bool>,
    keepalive: Duration,
    plan: Plan,
    /// Forward: the next index. Backward: one past the next index.
    cursor: usize,
    remaining: usize,
    queue: VecDeque<Step>,
    done: bool,
    scratch: String,
    open_streams: Arc<watch::Sender<usize>>,
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.open_streams.send_modify(|n| *n -= 1);
    }
}

impl Streamer {
    pub fn new(
        dep: Arc<SimDeployment>,
        shutdown: watch::Receiver<bool>,
        speed: f64,
        plan: Plan,
        open_streams: Arc<watch::Sender<usize>>,
    ) -> Streamer {
        open_streams.send_modify(|n| *n += 1);
        let progress = dep.progress.subscribe();
        let keepalive = KEEPALIVE_EVERY.div_f64(speed).max(MIN_KEEPALIVE);
        let cursor = if plan.backward { plan.end } else { plan.start };
        Streamer {
            dep,
            progress,
            shutdown,
            keepalive,
            cursor,
            remaining: plan.limit.unwrap_or(usize::MAX),
            plan,
            queue: VecDeque::new(),
            done: false,
            scratch: String::new(),
            open_streams,
        }
    }

    /// The body as a stream of chunks; an `Err` item aborts the connection.
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        futures_util::stream::unfold(self, |mut s| async move {
            s.next_item().await.map(|item| (item, s))
        })
    }

    async fn next_item(&mut self) -> Option<Result<Bytes, io::Error>> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                match step {
                    Step::Data(b) => return Some(Ok(b)),
                    Step::Flush => {
                        // Returning Pending makes hyper flush its write buffer to the socket
                        // before it polls the body again; the short sleep leaves the kernel time
                        // to hand the bytes over before a following abort.
                        tokio::task::yield_now().await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Step::Abort => {
                        self.done = true;
                        self.queue.clear();
                        return Some(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "simulated connection drop",
                        )));
                    }
                    Step::End => {
                        self.done = true;
                        self.queue.clear();
                        return None;
                    }
                    Step::Stall => {
                        let _ = self.shutdown.wait_for(|s| *s).await;
                        self.done = true;
                        self.queue.clear();
                        return Some(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "simulator shut down",
                        )));
                    }
                }
            }
            if self.done {
                return None;
            }
            self.fill().await;
        }
    }

    fn peek(&self, p: &Progress) -> Next {
        if self.remaining == 0 {
            return Next::Exhausted;
        }
        if self.plan.backward {
            if self.cursor > self.plan.start {
                Next::Event(self.cursor - 1)
            } else {
                Next::Exhausted
            }
        } else if self.cursor >= self.plan.end {
            Next::Exhausted
        } else if self.cursor < p.produced {
            Next::Event(self.cursor)
        } else if self.plan.follow && !p.state.is_terminal() {
            Next::Wait
        } else {
            Next::Exhausted
        }
    }

    fn advance(&mut self) {
        if self.plan.backward {
            self.cursor -= 1;
        } else {
            self.cursor += 1;
        }
        self.remaining = self.remaining.saturating_sub(1);
    }

    /// Queues the next steps.
    async fn fill(&mut self) {
        let mut buf = BytesMut::new();
        loop {
            let p = *self.progress.borrow_and_update();
            match self.peek(&p) {
                Next::Event(i) => {
                    if self.plan.faults {
                        let fired = self.dep.take_event_faults(i);
                        if !fired.is_empty() {
                            self.push_data(buf);
                            self.apply_faults(i, fired);
                            return;
                        }
                    }
                    render::write_event_line(&self.dep, i, &mut self.scratch, &mut buf);
                    self.advance();
                    if buf.len() >= CHUNK {
                        self.push_data(buf);
                        return;
                    }
                }
                Next::Exhausted => {
                    self.push_data(buf);
                    self.queue.push_back(Step::End);
                    return;
                }
                Next::Wait => {
                    if !buf.is_empty() {
                        self.push_data(buf);
                        return;
                    }
                    tokio::select! {
                        changed = self.progress.changed() => {
                            if changed.is_err() {
                                self.queue.push_back(Step::End);
                                return;
                            }
                        }
                        _ = tokio::time::sleep(self.keepalive) => {
                            self.queue.push_back(Step::Data(Bytes::from_static(KEEPALIVE_LINE.as_bytes())));
                            return;
                        }
                        _ = self.shutdown.wait_for(|s| *s) => {
                            self.queue.push_back(Step::Abort);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn push_data(&mut self, buf: BytesMut) {
        if !buf.is_empty() {
            self.queue.push_back(Step::Data(buf.freeze()));
        }
    }

    fn apply_faults(&mut self, index: usize, fired: Vec<Fault>) {
        for fault in fired {
            tracing::debug!(deployment = %self.dep.id, ?fault, "simulator fault fires");
            match fault {
                Fault::OversizedLineBefore { bytes, .. } => {
                    let line = render::oversized_line(&self.dep, index, bytes);
                    self.queue.push_back(Step::Data(line.freeze()));
                }
                Fault::LoneSurrogateBefore { .. } => {
                    let line = render::lone_surrogate_line(&self.dep, index);
                    self.queue.push_back(Step::Data(Bytes::from(line)));
                }
                Fault::MalformedLineBefore { .. } => {
                    let lines = render::malformed_lines(&self.dep, index);
                    self.queue.push_back(Step::Data(Bytes::from(lines)));
                }
                Fault::DropBefore { .. } => {
                    self.queue.push_back(Step::Flush);
                    self.queue.push_back(Step::Abort);
                }
                Fault::DropMidLine { .. } => {
                    let line = render::event_line(&self.dep, index).freeze();
                    let cut = render::mid_line_cut(&line);
                    self.queue.push_back(Step::Data(line.slice(..cut)));
                    self.queue.push_back(Step::Flush);
                    self.queue.push_back(Step::Abort);
                }
                Fault::CleanEndBefore { .. } => {
                    self.queue.push_back(Step::End);
                }
                Fault::StallBefore { .. } => {
                    self.queue.push_back(Step::Flush);
                    self.queue.push_back(Step::Stall);
                }
                Fault::RateLimitNextRequest { .. }
                | Fault::ServerErrorNextRequests { .. }
                | Fault::LateTail { .. } => {}
            }
        }
    }
}
