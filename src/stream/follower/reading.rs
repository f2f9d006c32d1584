//! One connection to the events stream: opened from the cursor, read line by line, each new
//! line handed to the logger, the resume state saved as the output catches up.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

use super::{FollowError, Follower, Track};
use crate::clock::now_ms;
use crate::log::{LogEntry, Severity, Tier};
use crate::metrics::RestartReason;
use crate::shutdown::stopped;
use crate::stream::entries::build_entry;
use crate::stream::options::{StreamHealth, CHECKPOINT_GAP};
use crate::stream::resume::ResumeState;
use crate::vercel::event::MalformedLine;
use crate::vercel::{parse_event, EventsQuery, Line, ParsedLine, ReadyState, VercelError};

/// One try at the events stream: how the connection went, and what the next try needs.
pub(super) struct Attempt {
    pub connection: Connection,
    /// The build was over before this connection was opened (a request without `follow`).
    pub over_before_connect: ReadyState,
    /// How long the server asked us to wait.
    pub retry_after: Option<Duration>,
    /// Why the stream could not be opened.
    pub error: Option<String>,
}

/// What one connection amounted to.
pub(super) enum Connection {
    /// The server ended the response.
    Ended {
        delivered: u64,
    },
    /// The connection broke or stalled.
    Broken {
        delivered: u64,
        reason: RestartReason,
    },
    Interrupted,
}

/// At most this many lines are gathered from chunks that are already here before they go to the
/// logger together.
const BATCH_LINES: usize = 1000;

/// How long to wait after a small batch for more lines to arrive (well under what a reader
/// notices).
const COALESCE: Duration = Duration::from_millis(20);

/// Splits a chunk of the body (`None`: its end) into parsed lines.
fn split(
    chunk: Option<Result<bytes::Bytes, reqwest::Error>>,
    track: &mut Track<'_>,
    items: &mut Vec<Item>,
) -> Read {
    match chunk {
        Some(Ok(bytes)) => {
            track
                .splitter
                .push(&bytes, |line| items.push(Item::from(line)));
            Read::More
        }
        None => {
            track.splitter.finish(|line| items.push(Item::from(line)));
            Read::End
        }
        Some(Err(_)) => Read::Broken(RestartReason::Error),
    }
}

/// What one read of a body brought.
enum Read {
    More,
    End,
    Broken(RestartReason),
}

/// A line, parsed as soon as the splitter hands it over (so its bytes need no copy).
enum Item {
    Parsed(Result<ParsedLine, MalformedLine>),
    Oversized(usize),
}

impl From<Line<'_>> for Item {
    fn from(line: Line<'_>) -> Self {
        match line {
            Line::Complete(bytes) => Item::Parsed(parse_event(bytes)),
            Line::Oversized { bytes } => Item::Oversized(bytes),
        }
    }
}

impl Follower {
    /// Opens the events stream from the cursor and reads it; `None` when the circuit breaker
    /// kept us from calling and its trial call is now due (not an attempt).
    pub(super) async fn connect(
        &self,
        track: &mut Track<'_>,
    ) -> Result<Option<Attempt>, FollowError> {
        let over_before_connect = track.status.borrow_and_update().state;
        let query = EventsQuery {
            follow: !over_before_connect.is_terminal(),
            since: track.cursor.since_param(),
            until: None,
        };
        let opened = tokio::select! {
            opened = self.client.open_events(&track.ctx.vercel_id, &query) => opened,
            _ = stopped(track.shutdown) => return Err(FollowError::Interrupted),
        };
        let attempt = match opened {
            Ok(body) => {
                self.report(track.ctx, StreamHealth::Live);
                track.cursor.start_connection();
                Attempt {
                    connection: self.read(body, track, over_before_connect).await,
                    over_before_connect,
                    retry_after: None,
                    error: None,
                }
            }
            Err(err) if !err.is_retryable() => return Err(err.into()),
            Err(VercelError::CircuitOpen { retry_in, .. }) => {
                tokio::select! {
                    _ = tokio::time::sleep(retry_in) => return Ok(None),
                    _ = stopped(track.shutdown) => return Err(FollowError::Interrupted),
                }
            }
            Err(err) => {
                let reason = match err.status() {
                    Some(429) => RestartReason::RateLimited,
                    Some(_) => RestartReason::ServerError,
                    None => RestartReason::Error,
                };
                Attempt {
                    connection: Connection::Broken {
                        delivered: 0,
                        reason,
                    },
                    over_before_connect,
                    retry_after: err.retry_after(),
                    error: Some(err.to_string()),
                }
            }
        };
        Ok(Some(attempt))
    }

    /// Reads one connection's body until it ends, breaks, stalls, or (live connection, build
    /// over) goes quiet.
    async fn read(
        &self,
        body: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>>,
        track: &mut Track<'_>,
        over_before_connect: ReadyState,
    ) -> Connection {
        let mut body = std::pin::pin!(body);
        let mut delivered = 0u64;
        let live = !over_before_connect.is_terminal();
        let mut build_over = !live;
        let mut items = Vec::new();
        loop {
            // Once the build is over, a quiet live connection has nothing more to say.
            let idle = if live && build_over {
                self.options.drain_idle
            } else {
                self.options.idle_timeout
            };
            let chunk = tokio::select! {
                chunk = tokio::time::timeout(idle, body.next()) => chunk,
                changed = track.status.changed(), if !build_over => {
                    if changed.is_ok() && track.status.borrow().state.is_terminal() {
                        build_over = true;
                    }
                    continue;
                }
                _ = stopped(track.shutdown) => return Connection::Interrupted,
            };
            let mut read = match chunk {
                Ok(chunk) => split(chunk, track, &mut items),
                Err(_) if live && build_over => Read::End,
                Err(_) => Read::Broken(RestartReason::Stall),
            };
            // Chunks already here join this batch: one hand-over to the logger for all of them.
            while matches!(read, Read::More) && items.len() < BATCH_LINES {
                let mut chunk = body.next().now_or_never();
                if chunk.is_none() {
                    // The connection's own task hands the body over a chunk at a time: let it
                    // read what the socket holds.
                    tokio::task::yield_now().await;
                    chunk = body.next().now_or_never();
                }
                let Some(chunk) = chunk else { break };
                read = split(chunk, track, &mut items);
            }
            let gathered = items.len();
            if !self.emit(&mut items, track, &mut delivered).await {
                return Connection::Interrupted;
            }
            match read {
                // A short pause after a small batch lets what follows arrive together: a build
                // that prints a line at a time then costs a few wake-ups a second, not one a line.
                Read::More if gathered > 0 && gathered < BATCH_LINES => {
                    tokio::select! {
                        _ = tokio::time::sleep(COALESCE) => {}
                        _ = stopped(track.shutdown) => return Connection::Interrupted,
                    }
                }
                Read::More => {}
                Read::End => {
                    track.splitter.reset();
                    return Connection::Ended { delivered };
                }
                Read::Broken(reason) => {
                    track.splitter.reset();
                    return Connection::Broken { delivered, reason };
                }
            }
            if track.unsaved > 0 && track.checkpointed.elapsed() >= self.options.persist_every {
                self.checkpoint(track).await;
            }
        }
    }

    /// Turns a chunk's lines into entries and hands them to the logger together, saving the
    /// resume state whenever `checkpoint_lines` lines went out since the last save (and
    /// [`CHECKPOINT_GAP`] has passed); false when interrupted.
    async fn emit(
        &self,
        items: &mut Vec<Item>,
        track: &mut Track<'_>,
        delivered: &mut u64,
    ) -> bool {
        // Sized once: growing a vector of entries copies every entry each time it doubles.
        let mut batch = Vec::with_capacity(items.len());
        let mut before = track.cursor.clone();
        // The clock is read once a batch, not once a line: for the lag, and for the gap
        // between saves (a batch takes well under that gap).
        let now = now_ms();
        let mut gap_passed = track.checkpointed.elapsed() >= CHECKPOINT_GAP;
        for item in items.drain(..) {
            let Some(entry) = self.take(item, track, delivered, now) else {
                continue;
            };
            batch.push(entry);
            if gap_passed && track.unsaved + batch.len() as u64 >= self.options.checkpoint_lines {
                if !self
                    .hand_over(std::mem::take(&mut batch), before, track)
                    .await
                {
                    return false;
                }
                self.checkpoint(track).await;
                before = track.cursor.clone();
                gap_passed = false;
            }
        }
        batch.is_empty() || self.hand_over(batch, before, track).await
    }

    /// Gives the logger a batch of new lines. Interrupted, the cursor goes back to where it was
    /// before them (`before`): some may be printed again after a restart, none is skipped.
    async fn hand_over(
        &self,
        batch: Vec<LogEntry>,
        before: ResumeState,
        track: &mut Track<'_>,
    ) -> bool {
        let count = batch.len() as u64;
        tokio::select! {
            _ = self.logger.write_all_waiting(batch) => {
                track.unsaved += count;
                true
            }
            _ = stopped(track.shutdown) => {
                *track.cursor = before;
                false
            }
        }
    }

    /// One line: the entry to emit when it is a new event (the cursor then counts it as
    /// emitted); skipped lines are counted and reported.
    fn take(
        &self,
        item: Item,
        track: &mut Track<'_>,
        delivered: &mut u64,
        now: i64,
    ) -> Option<LogEntry> {
        let ctx = track.ctx;
        let event = match item {
            Item::Oversized(bytes) => {
                self.metrics.line_skipped();
                self.logger.write(self.system_entry(
                    ctx,
                    Severity::Warn,
                    "line_skipped",
                    format!("Skipped a build log line of {bytes} bytes (limit 1 MiB)"),
                ));
                return None;
            }
            Item::Parsed(Ok(ParsedLine::Event(event))) => event,
            Item::Parsed(Ok(ParsedLine::Keepalive)) => return None,
            Item::Parsed(Err(err)) => {
                self.metrics.line_skipped();
                tracing::warn!(deployment = %ctx.vercel_id, %err, "skipped a malformed event line");
                return None;
            }
        };
        *delivered += 1;
        self.metrics.event_received();
        if !track.cursor.is_new(event.created) {
            return None;
        }
        let lag = now - event.created;
        if lag >= 0 {
            self.metrics.observe_lag(lag as u64);
        }
        track.cursor.record(event.created, &event.id);
        let entry = build_entry(event, ctx);
        if entry.tier == Tier::Build && entry.severity >= Severity::Error {
            track.first_error.offer(&entry.message);
        }
        Some(entry)
    }
}
