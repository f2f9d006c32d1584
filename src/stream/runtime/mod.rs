//! Follows runtime logs for as long as asked: a deployment's, or a project's production
//! deployment's, switching when production moves.
//!
//! Vercel's runtime logs are live only: no cursor, no `since`, and a response ends after the
//! server's limit (a `delimiter` row with an empty `rowId`) or at any time. The follower
//! reconnects at once (after a failure, with a growing pause), drops rows it has already shown
//! (a window of recent `rowId`s, see `seen.rs`), and, when a new connection shows no row of the
//! old one, writes a "possible gap" entry with the time span rows may be missing from, rather
//! than pretend the log is continuous.

pub mod desk;
pub mod entries;
mod productions;
pub mod regression;
mod seen;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::log::runtime::ROW_SKIPPED;
use crate::log::{LogEntry, Logger, Severity};
use crate::shutdown::{stopped, Shutdown};
use crate::store::StateStore;
use crate::vercel::runtime::MalformedRow;
use crate::vercel::{
    parse_runtime_row, Deployment, Line, LineSplitter, RuntimeRow, VercelClient, VercelError,
};
pub use desk::{RuntimeCommand, RuntimeHandle};
use entries::{gap_entry, moved_entry, row_entry, Ended};
pub use productions::follow_productions;
use regression::{RegressionOptions, RegressionWatch};
pub use seen::SeenRows;

use super::entries::EntryContext;

/// Settings of a runtime follower.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Rows remembered to drop repeats after a reconnect.
    pub window: usize,
    /// How often a project's production deployment is looked up.
    pub production_poll: Duration,
    /// The longest pause between reconnects after failures.
    pub max_backoff: Duration,
    /// A connection that brings nothing for this long is reopened.
    pub idle_timeout: Duration,
    /// When a new production deployment counts as a regression.
    pub regression: RegressionOptions,
    /// Where the streaming engine learns production moved (a webhook says so at once): a
    /// move seen there is followed without waiting for the next look-up.
    pub pushed: Option<watch::Receiver<crate::stream::engine::EngineSnapshot>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            window: DEFAULT_WINDOW,
            production_poll: Duration::from_secs(15),
            max_backoff: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            regression: RegressionOptions::default(),
            pushed: None,
        }
    }
}

/// Rows remembered by default: minutes of a busy deployment's traffic, about 400 KB.
pub const DEFAULT_WINDOW: usize = 20_000;

/// The shortest a connection lasts before the next is opened, unless the server's limit
/// ended it (then more rows are waiting).
const MIN_CONNECTION: Duration = Duration::from_secs(1);

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;

/// A response without new rows that lasted this long was a quiet deployment, not a failure.
const QUIET_RESPONSE: Duration = Duration::from_secs(10);

/// Longest runtime row read; a longer one is skipped with a note (Vercel's limit is 256 KB).
const MAX_ROW_BYTES: usize = 1024 * 1024;

/// What to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeTarget {
    /// One deployment, by id or URL.
    Deployment(String),
    /// A project's production deployment, whichever it is at the time.
    Production(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Vercel(#[from] VercelError),
    #[error("project {0} has no production deployment")]
    NoProduction(String),
    #[error(
        "deployment {0} belongs to no project Vercel names, and runtime logs are read per project"
    )]
    NoProject(String),
    #[error("stopped")]
    Interrupted,
}

/// Why following one deployment stopped without an error.
enum Stop {
    /// Production moved to this deployment.
    Moved(String),
}

pub struct RuntimeFollower {
    client: VercelClient,
    /// Per deployment followed, the rows already written: shared by every task of this
    /// follower, so that a deployment followed twice at once (the production, and the one on
    /// screen) still writes each row once.
    windows: Mutex<HashMap<String, SharedRows>>,
    store: StateStore,
    logger: Logger,
    options: RuntimeOptions,
}

impl RuntimeFollower {
    pub fn new(
        client: VercelClient,
        store: StateStore,
        logger: Logger,
        options: RuntimeOptions,
    ) -> Self {
        RuntimeFollower {
            client,
            windows: Mutex::new(HashMap::new()),
            store,
            logger,
            options,
        }
    }

    /// What `name` means: a deployment id (`dpl_…`) or URL is a deployment; a project's name or
    /// id, its production. A name that is no project is tried as a deployment URL.
    pub async fn resolve(&self, name: &str) -> Result<RuntimeTarget, RuntimeError> {
        let name = name.trim();
        if name.starts_with("dpl_") || name.contains("://") {
            return Ok(RuntimeTarget::Deployment(name.to_owned()));
        }
        match self.client.get_project(name).await {
            Ok(_) => Ok(RuntimeTarget::Production(name.to_owned())),
            Err(err) if err.status() == Some(404) && name.contains('.') => {
                Ok(RuntimeTarget::Deployment(name.to_owned()))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Follows `target` until `shutdown` (then `Interrupted`) or an error no retry can mend.
    pub async fn follow(
        &self,
        target: &RuntimeTarget,
        mut shutdown: Shutdown,
    ) -> Result<(), RuntimeError> {
        match target {
            RuntimeTarget::Deployment(id) => {
                let followed = self.look_up(id, &mut shutdown).await?;
                match self
                    .follow_deployment(&followed, &mut shutdown, None, None)
                    .await?
                {
                    Stop::Moved(_) => Ok(()),
                }
            }
            RuntimeTarget::Production(project) => self.follow_production(project, shutdown).await,
        }
    }

    /// Follows one deployment for a screen until `shutdown`, stepping aside while another task
    /// of this follower (production's) follows it.
    pub async fn follow_on_screen(
        &self,
        id: &str,
        mut shutdown: Shutdown,
    ) -> Result<(), RuntimeError> {
        let mut followed = self.look_up(id, &mut shutdown).await?;
        followed.yields = true;
        match self
            .follow_deployment(&followed, &mut shutdown, None, None)
            .await?
        {
            Stop::Moved(_) => Ok(()),
        }
    }

    async fn follow_production(
        &self,
        project: &str,
        mut shutdown: Shutdown,
    ) -> Result<(), RuntimeError> {
        let found = tokio::select! {
            found = self.client.get_project(project) => found?,
            _ = stopped(&mut shutdown) => return Err(RuntimeError::Interrupted),
        };
        let Some(first) = found.production_id().map(str::to_owned) else {
            return Err(RuntimeError::NoProduction(project.to_owned()));
        };
        let (moved, mut production) = watch::channel(first.clone());
        let poller = tokio::spawn(poll_production(
            self.client.clone(),
            found.id.clone(),
            self.options.production_poll,
            moved,
            self.options.pushed.clone(),
        ));
        let _stop_poller = AbortOnDrop(poller);
        let mut current = first;
        let mut previous: Option<String> = None;
        let mut regression = RegressionWatch::new(self.options.regression.clone());
        loop {
            let followed = self.look_up(&current, &mut shutdown).await?;
            if let Some(from) = previous.take() {
                let at = now_ms();
                regression.moved(&from, &current, at);
                self.logger
                    .write_waiting(moved_entry(&followed.ctx, &from, at))
                    .await;
            }
            match self
                .follow_deployment(
                    &followed,
                    &mut shutdown,
                    Some(&mut production),
                    Some(&mut regression),
                )
                .await?
            {
                Stop::Moved(next) => previous = Some(std::mem::replace(&mut current, next)),
            }
        }
    }

    /// Looks the deployment up, again and again while Vercel cannot answer (a move must not
    /// end the following for a network hiccup).
    async fn look_up(&self, id: &str, shutdown: &mut Shutdown) -> Result<Followed, RuntimeError> {
        let mut failures = 0;
        loop {
            let found = tokio::select! {
                found = self.client.get_deployment(id) => found,
                _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
            };
            let err = match found {
                Ok(deployment) => return self.followed(&deployment).await,
                Err(err) if !err.is_retryable() => return Err(err.into()),
                Err(err) => err,
            };
            failures += 1;
            let pause = backoff(failures, self.options.max_backoff)
                .max(err.retry_after().unwrap_or_default());
            tracing::warn!(deployment = %id, %err, "could not look the deployment up; trying again");
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
            }
        }
    }

    async fn followed(&self, deployment: &Deployment) -> Result<Followed, RuntimeError> {
        if deployment.project_id.is_none() {
            return Err(RuntimeError::NoProject(deployment.id.clone()));
        }
        let ctx = EntryContext::of(&self.store, deployment, false).await;
        Ok(Followed {
            ctx,
            target: deployment.target.as_deref().map(Arc::from),
            yields: false,
        })
    }

    /// The rows of `id` already written, shared with any other task following it; forgotten
    /// once no task follows it.
    fn window_of(&self, id: &str) -> SharedRows {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.retain(|_, rows| Arc::strong_count(rows) > 1);
        windows
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(SeenRows::new(self.options.window))))
            .clone()
    }

    /// Follows one deployment until shutdown or, when `production` is given, until production
    /// moves elsewhere.
    async fn follow_deployment(
        &self,
        followed: &Followed,
        shutdown: &mut Shutdown,
        mut production: Option<&mut watch::Receiver<String>>,
        mut regression: Option<&mut RegressionWatch>,
    ) -> Result<Stop, RuntimeError> {
        let ctx = &followed.ctx;
        let project_id = ctx.project_id.as_deref().unwrap_or_default();
        let mut gaps = GapWatch::new(self.window_of(&ctx.vercel_id));
        let mut failures: u32 = 0;
        loop {
            if followed.yields && Arc::strong_count(&gaps.seen) > 2 {
                tokio::select! {
                    _ = tokio::time::sleep(MIN_CONNECTION) => {}
                    _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
                }
                continue;
            }
            let started = tokio::time::Instant::now();
            let opened = tokio::select! {
                opened = self.client.open_runtime_logs(project_id, &ctx.vercel_id) => opened,
                next = moved(&mut production, &ctx.vercel_id) => return Ok(Stop::Moved(next)),
                _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
            };
            let ended = match opened {
                Ok(body) => {
                    let read = tokio::select! {
                        read = self.read(body, followed, &mut gaps, regression.as_deref_mut()) => read,
                        next = moved(&mut production, &ctx.vercel_id) => return Ok(Stop::Moved(next)),
                        _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
                    };
                    if read.rows > 0 {
                        // A response that brought new rows worked. After the server's limit
                        // more rows wait: go straight on. Otherwise a connection is opened at
                        // most once a second, whatever the server does.
                        failures = 0;
                        let limit = matches!(read.ended, Ended::Limit(_));
                        gaps.ended(read.ended);
                        if limit {
                            continue;
                        }
                        let pause = MIN_CONNECTION.saturating_sub(started.elapsed());
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            next = moved(&mut production, &ctx.vercel_id) => return Ok(Stop::Moved(next)),
                            _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
                        }
                        continue;
                    }
                    // Nothing new. A quiet deployment's response that lasted is no failure;
                    // one that ended at once (a server that repeats itself, or closes) is: the
                    // pause grows, so that it is not asked again and again.
                    if started.elapsed() >= QUIET_RESPONSE {
                        failures = 0;
                    }
                    (read.ended, None)
                }
                Err(err) if !err.is_retryable() => return Err(err.into()),
                Err(err) => {
                    let wait = err.retry_after();
                    (Ended::Broken(err.to_string()), wait)
                }
            };
            let (ended, asked) = ended;
            gaps.ended(ended);
            failures = failures.saturating_add(1);
            // A 429's Retry-After, or an open circuit's cool-down, is waited for in full.
            let pause = backoff(failures, self.options.max_backoff).max(asked.unwrap_or_default());
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                next = moved(&mut production, &ctx.vercel_id) => return Ok(Stop::Moved(next)),
                _ = stopped(shutdown) => return Err(RuntimeError::Interrupted),
            }
        }
    }

    /// Reads one response to its end; rows it has not shown before go to the logger, a chunk
    /// at a time.
    async fn read(
        &self,
        body: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>>,
        followed: &Followed,
        gaps: &mut GapWatch,
        mut regression: Option<&mut RegressionWatch>,
    ) -> ReadOutcome {
        let mut body = std::pin::pin!(body);
        let mut splitter = LineSplitter::new(MAX_ROW_BYTES);
        let mut outcome = ReadOutcome {
            rows: 0,
            ended: Ended::Closed,
        };
        let mut limit: Option<String> = None;
        loop {
            let chunk = match tokio::time::timeout(self.options.idle_timeout, body.next()).await {
                Ok(chunk) => chunk,
                Err(_) => {
                    outcome.ended = Ended::Broken(format!(
                        "nothing for {} s",
                        self.options.idle_timeout.as_secs()
                    ));
                    break;
                }
            };
            let mut lines = Vec::new();
            let last = match chunk {
                Some(Ok(bytes)) => {
                    splitter.push(&bytes, |line| lines.push(parsed(line)));
                    false
                }
                Some(Err(err)) => {
                    outcome.ended = Ended::Broken(transport_reason(&err));
                    break;
                }
                None => {
                    splitter.finish(|line| lines.push(parsed(line)));
                    true
                }
            };
            let mut batch = Vec::new();
            for line in lines {
                match take(line, followed, gaps, regression.as_deref_mut(), &mut batch) {
                    Taken::Row => outcome.rows += 1,
                    Taken::Limit(message) => limit = Some(message),
                    Taken::Nothing => {}
                }
            }
            if !batch.is_empty() {
                self.logger.write_all_waiting(batch).await;
            }
            if let Some(message) = limit.take() {
                outcome.ended = Ended::Limit(message);
                break;
            }
            if last {
                break;
            }
        }
        outcome
    }
}

/// What one line of a response was.
enum Taken {
    /// A row not shown before.
    Row,
    /// The server's limit row, with its message.
    Limit(String),
    /// A repeat, or a line that is no row.
    Nothing,
}

/// Adds what `line` shows to `batch`: a new row (after a possible-gap marker when it is the
/// first of a response that continued nothing, and before a regression note when it shows
/// one), or a note that a row was too long.
fn take(
    line: Option<Result<RuntimeRow, MalformedRow>>,
    followed: &Followed,
    gaps: &mut GapWatch,
    regression: Option<&mut RegressionWatch>,
    batch: &mut Vec<LogEntry>,
) -> Taken {
    let ctx = &followed.ctx;
    let Some(parsed) = line else {
        batch.push(ctx.entry(
            now_ms(),
            crate::log::Tier::Runtime,
            Severity::Warn,
            ROW_SKIPPED,
            format!("Skipped a runtime row over {MAX_ROW_BYTES} bytes"),
        ));
        return Taken::Nothing;
    };
    let mut row = match parsed {
        Ok(row) if row.is_limit_marker() => return Taken::Limit(row.message),
        Ok(row) => row,
        Err(_) => {
            // The parser's message may quote the line: it is not logged.
            tracing::warn!(deployment = %ctx.vercel_id, "skipped a runtime line that is no JSON object");
            return Taken::Nothing;
        }
    };
    let Admitted::New { gap } = gaps.admit(&row, ctx) else {
        return Taken::Nothing;
    };
    batch.extend(gap.map(|gap| *gap));
    let now = now_ms();
    if !(now - YEAR_MS..=now + DAY_MS).contains(&row.timestamp_ms) {
        // No usable time from Vercel (none, or years away): when it arrived is the best there
        // is, and counts a minute at a time stay in order.
        row.timestamp_ms = now;
    }
    let entry = row_entry(row, ctx, followed.target.as_deref());
    let note = regression.and_then(|watch| watch.observe(ctx, &entry));
    batch.push(entry);
    batch.extend(note);
    Taken::Row
}

/// The deployment followed: its entries' context, and its target (`production`), which its
/// rows carry so that rules can tell production's rows from a preview's.
struct Followed {
    ctx: EntryContext,
    target: Option<Arc<str>>,
    /// Followed for a screen: it steps aside while another task (production's) follows the
    /// same deployment, whose rows reach the screen too, so that every row is read by one
    /// task and counted (for `deploy_regression`) by the task that needs it.
    yields: bool,
}

struct ReadOutcome {
    /// Rows shown that were not shown before.
    rows: usize,
    ended: Ended,
}

/// A line parsed as the splitter hands it over (its bytes need no copy); `None` for one over
/// the limit.
fn parsed(line: Line<'_>) -> Option<Result<RuntimeRow, MalformedRow>> {
    match line {
        Line::Complete(bytes) => Some(parse_runtime_row(bytes)),
        Line::Oversized { .. } => None,
    }
}

fn transport_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_decode() {
        "unreadable body".to_owned()
    } else {
        "cut off".to_owned()
    }
}

/// The rows of one deployment already written.
type SharedRows = Arc<Mutex<SeenRows>>;

/// Tells new rows from repeats across connections, and a continued log from a possible gap.
struct GapWatch {
    seen: SharedRows,
    /// The newest row time shown.
    last_shown: Option<i64>,
    /// How the previous connection ended, until this one shows whether it continued it.
    pending: Option<Ended>,
}

enum Admitted {
    /// Shown before.
    Repeat,
    /// New; after a possible gap, the entry that says so.
    New { gap: Option<Box<LogEntry>> },
}

impl GapWatch {
    fn new(seen: SharedRows) -> Self {
        GapWatch {
            seen,
            last_shown: None,
            pending: None,
        }
    }

    /// A connection ended: the next one must show that it continues where this one stopped.
    fn ended(&mut self, ended: Ended) {
        if self.last_shown.is_some() {
            self.pending = Some(ended);
        }
    }

    /// Looks at a row. The first new row of a connection that repeated none of the rows before
    /// it comes with a possible-gap entry.
    fn admit(&mut self, row: &RuntimeRow, ctx: &EntryContext) -> Admitted {
        let new = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row);
        if !new {
            // The new connection overlaps the old one: nothing was skipped.
            self.pending = None;
            return Admitted::Repeat;
        }
        let at = row.timestamp_ms;
        let gap = match (self.pending.take(), self.last_shown) {
            (Some(ended), Some(from)) => Some(Box::new(gap_entry(ctx, from, at.max(from), &ended))),
            _ => None,
        };
        self.last_shown = Some(self.last_shown.map_or(at, |t| t.max(at)));
        Admitted::New { gap }
    }
}

/// Resolves when production moved away from `current` (never when not following production).
async fn moved(production: &mut Option<&mut watch::Receiver<String>>, current: &str) -> String {
    match production {
        Some(rx) => loop {
            {
                let now = rx.borrow_and_update();
                if now.as_str() != current {
                    return now.clone();
                }
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        },
        None => std::future::pending().await,
    }
}

/// Looks a project's production deployment up every `every`, and says when it changed.
async fn poll_production(
    client: VercelClient,
    project_id: String,
    every: Duration,
    production: watch::Sender<String>,
    mut pushed: Option<watch::Receiver<crate::stream::engine::EngineSnapshot>>,
) {
    let mut last_pushed = pushed.as_mut().and_then(|pushed| {
        pushed
            .borrow_and_update()
            .production
            .get(&project_id)
            .cloned()
    });
    loop {
        let looked = tokio::select! {
            _ = tokio::time::sleep(every) => None,
            Some(id) = pushed_move(&mut pushed, &project_id, &mut last_pushed) => Some(id),
        };
        let id = match looked {
            Some(id) => id,
            None => match client.get_project(&project_id).await {
                Ok(project) => match project.production_id() {
                    Some(id) => id.to_owned(),
                    None => continue,
                },
                Err(err) => {
                    tracing::warn!(project = %project_id, %err, "could not look production up");
                    continue;
                }
            },
        };
        production.send_if_modified(|current| {
            let changed = *current != id;
            if changed {
                current.clone_from(&id);
            }
            changed
        });
    }
}

/// The next deployment `pushed` says the project's production moved to: only a change of
/// that project's entry counts (`last` is the entry seen before), not every change of the
/// snapshot, so an old push never undoes a later look-up. `None` when nothing pushes (the
/// caller's branch is then off).
async fn pushed_move(
    pushed: &mut Option<watch::Receiver<crate::stream::engine::EngineSnapshot>>,
    project_id: &str,
    last: &mut Option<String>,
) -> Option<String> {
    let pushed = pushed.as_mut()?;
    loop {
        if pushed.changed().await.is_err() {
            // The engine is gone: only the look-ups are left.
            return std::future::pending().await;
        }
        let now = pushed
            .borrow_and_update()
            .production
            .get(project_id)
            .cloned();
        if now.is_some() && now != *last {
            last.clone_from(&now);
            return now;
        }
    }
}

/// The pause before the `failures`th reconnect in a row: 0.5 s, doubling, at most `max`.
fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(10);
    (Duration::from_millis(500) * 2u32.pow(exp)).min(max)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
