//! Follows one deployment's build log to the end, whatever the network does.
//!
//! One connection at a time to the events stream (`follow=1`). When it ends, breaks or stalls,
//! the follower asks for the deployment's state and reconnects from where it left off (see
//! [`ResumeState`]). Once the build reached READY, ERROR or CANCELED, a live connection is read
//! until it ends or goes quiet, and then one last request without `follow` fetches whatever is
//! left: a server may keep a live stream open after the build, but a request without `follow`
//! ends when it has sent everything, so its clean end is the only proof of a complete log.
//! After too many failed connections in a row the stream is reported degraded, once, and the
//! CLI fallback takes over when one is configured.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::entries::{build_entry, outcome_entry, EntryContext};
use super::identity::{resume_key, stable_deployment_id, STATE_TTL};
use super::options::{FollowOptions, StreamHealth};
use super::resume::ResumeState;
use crate::clock::now_ms;
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::metrics::{Metrics, RestartReason};
use crate::shutdown::{stopped, Shutdown};
use crate::store::StateStore;
use crate::vercel::event::MalformedLine;
use crate::vercel::{
    parse_event, EventsQuery, Line, LineSplitter, ParsedLine, ReadyState, VercelClient, VercelError,
};

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{0}")]
    Vercel(#[from] VercelError),
    #[error("lost the build log stream of {deployment} after {attempts} failed connections: {last_error}")]
    Degraded {
        deployment: String,
        attempts: u32,
        last_error: String,
        fallback_used: bool,
    },
    #[error("stopped before the build finished")]
    Interrupted,
}

/// One try at the events stream: how the connection went, and what the next try needs.
struct Attempt {
    connection: Connection,
    /// The build was over before this connection was opened (a request without `follow`).
    over_before_connect: ReadyState,
    /// How long the server asked us to wait.
    retry_after: Option<Duration>,
    /// Why the stream could not be opened.
    error: Option<String>,
}

/// What one connection amounted to.
enum Connection {
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

pub struct Follower {
    client: VercelClient,
    store: StateStore,
    logger: Logger,
    metrics: Arc<Metrics>,
    options: FollowOptions,
}

impl Follower {
    pub fn new(
        client: VercelClient,
        store: StateStore,
        logger: Logger,
        metrics: Arc<Metrics>,
        options: FollowOptions,
    ) -> Self {
        Follower {
            client,
            store,
            logger,
            metrics,
            options,
        }
    }

    /// Follows the deployment until its build is over; returns its final state.
    pub async fn follow(
        &self,
        id_or_url: &str,
        mut shutdown: Shutdown,
    ) -> Result<ReadyState, FollowError> {
        let deployment = tokio::select! {
            found = self.client.get_deployment(id_or_url) => found?,
            _ = stopped(&mut shutdown) => return Err(FollowError::Interrupted),
        };
        let ctx = EntryContext {
            deployment_id: stable_deployment_id(&self.store, &deployment.id)
                .await
                .into(),
            vercel_id: deployment.id.as_str().into(),
            project_id: deployment.project_id.as_deref().map(Arc::from),
            project_name: deployment.name.as_deref().map(Arc::from),
        };
        let mut cursor = match self.options.since {
            Some(since) => ResumeState::from_floor(since),
            None => self
                .store
                .get_json::<ResumeState>(&resume_key(&ctx.vercel_id))
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        };

        // The state, as last seen; a background task keeps it fresh while the build runs.
        let state = Arc::new(watch::Sender::new(deployment.ready_state));
        let poller = tokio::spawn(poll_state(
            self.client.clone(),
            ctx.vercel_id.to_string(),
            self.options.status_poll,
            state.clone(),
        ));
        self.metrics.stream_opened();
        let result = self.run(&ctx, &mut cursor, &state, &mut shutdown).await;
        self.metrics.stream_closed();
        match &result {
            Ok(_) => self.report(&ctx, StreamHealth::Finished),
            Err(FollowError::Degraded { .. }) => self.report(&ctx, StreamHealth::Degraded),
            Err(_) => {}
        }
        poller.abort();
        self.persist(&ctx, &cursor).await;
        if let Ok(end) = &result {
            self.logger.write_waiting(outcome_entry(&ctx, *end)).await;
        }
        result
    }

    async fn run(
        &self,
        ctx: &EntryContext,
        cursor: &mut ResumeState,
        state_tx: &watch::Sender<ReadyState>,
        shutdown: &mut Shutdown,
    ) -> Result<ReadyState, FollowError> {
        let mut state = state_tx.subscribe();
        let mut failures: u32 = 0;
        let mut last_error = String::new();
        let mut splitter = LineSplitter::default();
        loop {
            let Some(attempt) = self
                .connect(ctx, cursor, &mut splitter, &mut state, shutdown)
                .await?
            else {
                continue;
            };
            self.persist(ctx, cursor).await;
            if let Some(error) = attempt.error {
                last_error = error;
            }
            let (delivered, reason) = match attempt.connection {
                Connection::Interrupted => return Err(FollowError::Interrupted),
                // The request without `follow`, made after the build ended, got everything.
                Connection::Ended { .. } if attempt.over_before_connect.is_terminal() => {
                    return Ok(attempt.over_before_connect)
                }
                Connection::Ended { delivered } => (delivered, RestartReason::CleanEnd),
                Connection::Broken { delivered, reason } => {
                    if reason == RestartReason::Stall {
                        last_error = format!("no data for {:?}", self.options.idle_timeout);
                    } else if delivered > 0 || last_error.is_empty() {
                        last_error = "the connection broke".to_owned();
                    }
                    (delivered, reason)
                }
            };
            self.metrics.stream_restarted(reason);
            self.report(ctx, StreamHealth::Reconnecting);
            failures = if delivered > 0 { 0 } else { failures + 1 };
            if failures >= self.options.reconnect.max_attempts {
                return Err(self.degrade(ctx, failures, last_error, shutdown).await);
            }
            self.refresh_state(ctx, state_tx, &mut last_error).await?;
            if failures > 0 {
                let wait = self
                    .options
                    .reconnect
                    .delay(failures - 1, attempt.retry_after);
                tracing::debug!(deployment = %ctx.vercel_id, ?wait, reason = reason.as_str(), "reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped(shutdown) => return Err(FollowError::Interrupted),
                }
            }
        }
    }

    /// Opens the events stream from the cursor and reads it; `None` when the circuit breaker
    /// kept us from calling and its trial call is now due (not an attempt).
    async fn connect(
        &self,
        ctx: &EntryContext,
        cursor: &mut ResumeState,
        splitter: &mut LineSplitter,
        state: &mut watch::Receiver<ReadyState>,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Attempt>, FollowError> {
        let over_before_connect = *state.borrow_and_update();
        let query = EventsQuery {
            follow: !over_before_connect.is_terminal(),
            since: cursor.since_param(),
            until: None,
        };
        let opened = tokio::select! {
            opened = self.client.open_events(&ctx.vercel_id, &query) => opened,
            _ = stopped(shutdown) => return Err(FollowError::Interrupted),
        };
        let attempt = match opened {
            Ok(body) => {
                self.report(ctx, StreamHealth::Live);
                cursor.start_connection();
                let connection = self
                    .read(
                        body,
                        ctx,
                        cursor,
                        splitter,
                        state,
                        over_before_connect,
                        shutdown,
                    )
                    .await;
                Attempt {
                    connection,
                    over_before_connect,
                    retry_after: None,
                    error: None,
                }
            }
            Err(err) if !err.is_retryable() => return Err(err.into()),
            Err(VercelError::CircuitOpen { retry_in, .. }) => {
                tokio::select! {
                    _ = tokio::time::sleep(retry_in) => return Ok(None),
                    _ = stopped(shutdown) => return Err(FollowError::Interrupted),
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

    /// Is the build still running? Asks now rather than wait for the poller.
    async fn refresh_state(
        &self,
        ctx: &EntryContext,
        state_tx: &watch::Sender<ReadyState>,
        last_error: &mut String,
    ) -> Result<(), FollowError> {
        if state_tx.borrow().is_terminal() {
            return Ok(());
        }
        match self.client.get_deployment(&ctx.vercel_id).await {
            Ok(d) => set_state(state_tx, d.ready_state),
            Err(err) if !err.is_retryable() => return Err(err.into()),
            Err(err) => *last_error = err.to_string(),
        }
        Ok(())
    }

    /// Reads one connection's body until it ends, breaks, stalls, or (live connection, build
    /// over) goes quiet.
    #[allow(clippy::too_many_arguments)]
    async fn read(
        &self,
        body: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>>,
        ctx: &EntryContext,
        cursor: &mut ResumeState,
        splitter: &mut LineSplitter,
        state: &mut watch::Receiver<ReadyState>,
        over_before_connect: ReadyState,
        shutdown: &mut Shutdown,
    ) -> Connection {
        let mut body = std::pin::pin!(body);
        let mut delivered = 0u64;
        let mut last_persist = Instant::now();
        let live = !over_before_connect.is_terminal();
        let mut build_over = !live;
        loop {
            // Once the build is over, a quiet live connection has nothing more to say.
            let idle = if live && build_over {
                self.options.drain_idle
            } else {
                self.options.idle_timeout
            };
            let chunk = tokio::select! {
                chunk = tokio::time::timeout(idle, body.next()) => chunk,
                changed = state.changed(), if !build_over => {
                    if changed.is_ok() && state.borrow().is_terminal() {
                        build_over = true;
                    }
                    continue;
                }
                _ = stopped(shutdown) => return Connection::Interrupted,
            };
            let bytes = match chunk {
                Ok(Some(Ok(bytes))) => bytes,
                Ok(None) => {
                    let mut items = Vec::new();
                    splitter.finish(|line| items.push(Item::from(line)));
                    for item in items {
                        if !self.take(item, ctx, cursor, &mut delivered, shutdown).await {
                            return Connection::Interrupted;
                        }
                    }
                    return Connection::Ended { delivered };
                }
                Ok(Some(Err(_))) => {
                    splitter.reset();
                    return Connection::Broken {
                        delivered,
                        reason: RestartReason::Error,
                    };
                }
                Err(_) if live && build_over => {
                    splitter.reset();
                    return Connection::Ended { delivered };
                }
                Err(_) => {
                    splitter.reset();
                    return Connection::Broken {
                        delivered,
                        reason: RestartReason::Stall,
                    };
                }
            };
            let mut items = Vec::new();
            splitter.push(&bytes, |line| items.push(Item::from(line)));
            for item in items {
                if !self.take(item, ctx, cursor, &mut delivered, shutdown).await {
                    return Connection::Interrupted;
                }
            }
            if last_persist.elapsed() >= self.options.persist_every {
                self.persist(ctx, cursor).await;
                last_persist = Instant::now();
            }
        }
    }

    /// Handles one line; false when interrupted while waiting to emit.
    async fn take(
        &self,
        item: Item,
        ctx: &EntryContext,
        cursor: &mut ResumeState,
        delivered: &mut u64,
        shutdown: &mut Shutdown,
    ) -> bool {
        let event = match item {
            Item::Oversized(bytes) => {
                self.metrics.line_skipped();
                self.logger.write(self.system_entry(
                    ctx,
                    Severity::Warn,
                    "line_skipped",
                    format!("Skipped a build log line of {bytes} bytes (limit 1 MiB)"),
                ));
                return true;
            }
            Item::Parsed(Ok(ParsedLine::Event(event))) => event,
            Item::Parsed(Ok(ParsedLine::Keepalive)) => return true,
            Item::Parsed(Err(err)) => {
                self.metrics.line_skipped();
                tracing::warn!(deployment = %ctx.vercel_id, %err, "skipped a malformed event line");
                return true;
            }
        };
        *delivered += 1;
        self.metrics.event_received();
        if !cursor.is_new(event.created) {
            return true;
        }
        let lag = now_ms() - event.created;
        if lag >= 0 {
            self.metrics.observe_lag(lag as u64);
        }
        let (created, id) = (event.created, event.id.clone());
        let entry = build_entry(event, ctx);
        tokio::select! {
            _ = self.logger.write_waiting(entry) => {}
            _ = stopped(shutdown) => return false,
        }
        cursor.record(created, id);
        true
    }

    fn system_entry(
        &self,
        ctx: &EntryContext,
        severity: Severity,
        event: &str,
        message: String,
    ) -> LogEntry {
        ctx.entry(now_ms(), Tier::System, severity, event, message)
    }

    /// Reports the stream as degraded (once), then runs the CLI fallback when configured.
    async fn degrade(
        &self,
        ctx: &EntryContext,
        attempts: u32,
        last_error: String,
        shutdown: &mut Shutdown,
    ) -> FollowError {
        let fallback_note = match &self.options.cli_fallback {
            Some(fallback) => format!("; falling back to `{}`", fallback.describe(&ctx.vercel_id)),
            None => String::new(),
        };
        self.logger.write(self.system_entry(
            ctx,
            Severity::Error,
            "degraded",
            format!(
                "Lost the build log stream of {} after {attempts} failed connections ({last_error}){fallback_note}",
                ctx.vercel_id
            ),
        ));
        let mut fallback_used = false;
        if let Some(fallback) = &self.options.cli_fallback {
            let run = fallback.run(&ctx.vercel_id, |text| {
                let mut entry = ctx.entry(now_ms(), Tier::Build, Severity::Info, "stdout", text);
                entry.metadata.vercel_type = Some("cli-fallback".to_owned());
                self.logger.write_waiting(entry)
            });
            tokio::select! {
                result = run => match result {
                    Ok(()) => fallback_used = true,
                    Err(err) => self.logger.write(self.system_entry(
                        ctx,
                        Severity::Error,
                        "fallback_failed",
                        format!("The CLI fallback failed: {err}"),
                    )),
                },
                _ = stopped(shutdown) => {}
            }
        }
        FollowError::Degraded {
            deployment: ctx.vercel_id.to_string(),
            attempts,
            last_error,
            fallback_used,
        }
    }

    fn report(&self, ctx: &EntryContext, health: StreamHealth) {
        if let Some(hook) = &self.options.on_health {
            hook(&ctx.vercel_id, health);
        }
    }

    async fn persist(&self, ctx: &EntryContext, cursor: &ResumeState) {
        if let Err(err) = self
            .store
            .put_json(&resume_key(&ctx.vercel_id), cursor, STATE_TTL)
            .await
        {
            tracing::warn!(error = %err, "could not save the resume state");
        }
    }
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

fn set_state(state: &watch::Sender<ReadyState>, new: ReadyState) {
    state.send_if_modified(|s| {
        let changed = *s != new;
        *s = new;
        changed
    });
}

/// Keeps the deployment's state fresh while its build runs.
async fn poll_state(
    client: VercelClient,
    vercel_id: String,
    every: Duration,
    state: Arc<watch::Sender<ReadyState>>,
) {
    loop {
        if state.borrow().is_terminal() {
            return;
        }
        tokio::time::sleep(every).await;
        match client.get_deployment(&vercel_id).await {
            Ok(d) => set_state(&state, d.ready_state),
            Err(err) => tracing::debug!(%err, "state poll failed"),
        }
    }
}
