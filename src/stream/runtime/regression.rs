//! `deploy_regression`: once production moves, does the new deployment fail more than the one
//! it replaced? Both are counted here, from the rows the follower shows: responses (rows with a
//! status) and the 5xx among them, a minute at a time. Rows are counted the same way for both
//! deployments, so the comparison holds even where one request logs several rows.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::Value;

use crate::log::runtime::{status_of, DEPLOY_REGRESSION};
use crate::log::{LogEntry, Severity, Tier};
use crate::stream::entries::EntryContext;

/// When a new production deployment counts as markedly worse.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionOptions {
    /// The old deployment's rate is taken over this long before the move.
    pub baseline: Duration,
    /// The new deployment is watched this long after the move.
    pub window: Duration,
    /// Its 5xx rate must be at least this many times the old one's...
    pub ratio: f64,
    /// ...and at least this rate (0.05: one response in twenty)...
    pub min_rate: f64,
    /// ...over at least this many responses, this many of them 5xx (a rate over a handful of
    /// requests says nothing).
    pub min_responses: u64,
    pub min_errors: u64,
}

impl Default for RegressionOptions {
    fn default() -> Self {
        RegressionOptions {
            baseline: Duration::from_secs(5 * 60),
            window: Duration::from_secs(3 * 60),
            ratio: 2.0,
            min_rate: 0.05,
            min_responses: 30,
            min_errors: 5,
        }
    }
}

/// One minute of one deployment's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Its first millisecond.
    pub start_ms: i64,
    pub responses: u64,
    pub errors: u64,
}

/// Responses and 5xx a minute, for the last hour.
#[derive(Debug, Clone, Default)]
pub struct MinuteCounts {
    minutes: VecDeque<Minute>,
}

const MINUTE_MS: i64 = 60_000;
const MINUTES_KEPT: usize = 60;

impl MinuteCounts {
    pub fn record(&mut self, ts: i64, status: u16) {
        let start_ms = ts - ts.rem_euclid(MINUTE_MS);
        let at = self.minutes.iter().rposition(|m| m.start_ms <= start_ms);
        let minute = match at {
            Some(i) if self.minutes[i].start_ms == start_ms => &mut self.minutes[i],
            _ => {
                let i = at.map_or(0, |i| i + 1);
                self.minutes.insert(
                    i,
                    Minute {
                        start_ms,
                        responses: 0,
                        errors: 0,
                    },
                );
                &mut self.minutes[i]
            }
        };
        minute.responses += 1;
        if status >= 500 {
            minute.errors += 1;
        }
        while self.minutes.len() > MINUTES_KEPT {
            self.minutes.pop_front();
        }
    }

    /// The minutes, oldest first.
    pub fn minutes(&self) -> impl Iterator<Item = &Minute> {
        self.minutes.iter()
    }

    /// (responses, errors) in the minutes that overlap `from..to`.
    fn between(&self, from: i64, to: i64) -> (u64, u64) {
        self.minutes
            .iter()
            .filter(|m| m.start_ms + MINUTE_MS > from && m.start_ms < to)
            .fold((0, 0), |(r, e), m| (r + m.responses, e + m.errors))
    }
}

/// Production moved from one deployment to another: what the old one did before.
struct Comparison {
    from: String,
    to: String,
    moved_at: i64,
    before: (u64, u64),
    said: bool,
}

/// Counts the production deployments' responses and says, once per move, when the new one is
/// markedly worse.
pub struct RegressionWatch {
    options: RegressionOptions,
    counts: HashMap<String, MinuteCounts>,
    comparison: Option<Comparison>,
}

impl RegressionWatch {
    pub fn new(options: RegressionOptions) -> Self {
        RegressionWatch {
            options,
            counts: HashMap::new(),
            comparison: None,
        }
    }

    /// Production moved at `at` (ms): the new deployment is compared with the old one's last
    /// minutes, when shiplog saw the old one serve enough of them.
    pub fn moved(&mut self, from: &str, to: &str, at: i64) {
        let baseline = self.options.baseline.as_millis() as i64;
        let before = self
            .counts
            .get(from)
            .map_or((0, 0), |c| c.between(at - baseline, at));
        self.counts.retain(|id, _| id == from || id == to);
        // A baseline of a handful of responses says nothing: no comparison then.
        self.comparison = (before.0 >= self.options.min_responses).then(|| Comparison {
            from: from.to_owned(),
            to: to.to_owned(),
            moved_at: at,
            before,
            said: false,
        });
    }

    /// Counts a shown row; the `deploy_regression` note when it shows the new production
    /// markedly worse than the old.
    pub fn observe(&mut self, ctx: &EntryContext, row: &LogEntry) -> Option<LogEntry> {
        let status = status_of(row)?;
        let deployment = row.build_id.as_deref()?;
        self.counts
            .entry(deployment.to_owned())
            .or_default()
            .record(row.ts, status);
        let options = &self.options;
        let comparison = self.comparison.as_mut()?;
        let window = options.window.as_millis() as i64;
        if comparison.said
            || comparison.to != deployment
            || row.ts < comparison.moved_at
            || row.ts > comparison.moved_at + window
        {
            return None;
        }
        let after = self
            .counts
            .get(deployment)?
            .between(comparison.moved_at, row.ts + 1);
        let (rate_after, rate_before) = (rate(after), rate(comparison.before));
        let worse = after.0 >= options.min_responses
            && after.1 >= options.min_errors
            && rate_after >= options.min_rate
            && rate_after >= rate_before * options.ratio;
        if !worse {
            return None;
        }
        comparison.said = true;
        Some(regression_entry(ctx, comparison, after, row.ts, options))
    }
}

fn rate((responses, errors): (u64, u64)) -> f64 {
    if responses == 0 {
        0.0
    } else {
        errors as f64 / responses as f64
    }
}

fn regression_entry(
    ctx: &EntryContext,
    comparison: &Comparison,
    after: (u64, u64),
    at: i64,
    options: &RegressionOptions,
) -> LogEntry {
    let since = Duration::from_millis((at - comparison.moved_at).max(0) as u64);
    let project = ctx.project_name.as_deref().unwrap_or("the project");
    let mut entry = ctx.entry(
        at,
        Tier::Runtime,
        Severity::Critical,
        DEPLOY_REGRESSION,
        format!(
            "{project}: 5xx rate {:.1}% ({} of {} responses) in the {} s since production moved \
             to {}, against {:.1}% ({} of {}) on {} in the {} min before; roll back with \
             `shiplog deployments rollback {project} --to {}`",
            rate(after) * 100.0,
            after.1,
            after.0,
            since.as_secs(),
            comparison.to,
            rate(comparison.before) * 100.0,
            comparison.before.1,
            comparison.before.0,
            comparison.from,
            options.baseline.as_secs() / 60,
            comparison.from,
        ),
    );
    let extra = &mut entry.metadata.extra;
    for (key, value) in [
        ("previous_deployment", Value::from(comparison.from.as_str())),
        ("responses_after", Value::from(after.0)),
        ("errors_after", Value::from(after.1)),
        ("responses_before", Value::from(comparison.before.0)),
        ("errors_before", Value::from(comparison.before.1)),
    ] {
        extra.insert(key.to_owned(), value);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ctx(id: &str) -> EntryContext {
        EntryContext {
            deployment_id: format!("vercel-{id}-01J").into(),
            vercel_id: id.into(),
            project_id: Some(Arc::from("prj_1")),
            project_name: Some(Arc::from("storefront")),
            git: None,
            replayed: false,
        }
    }

    fn row(id: &str, ts: i64, status: u16) -> LogEntry {
        let mut entry = ctx(id).entry(ts, Tier::Runtime, Severity::Info, "request", "GET /");
        entry
            .metadata
            .extra
            .insert("status".to_owned(), Value::from(status));
        entry
    }

    /// 600 responses of `old` over the five minutes before `at`, `errors_per_100` of them 5xx.
    fn baseline(watch: &mut RegressionWatch, at: i64, errors_per_100: u64) {
        for i in 0..600 {
            let status = if i % 100 < errors_per_100 { 502 } else { 200 };
            assert!(watch
                .observe(
                    &ctx("dpl_old"),
                    &row("dpl_old", at - 300_000 + i as i64 * 500, status)
                )
                .is_none());
        }
    }

    #[test]
    fn a_new_production_failing_far_more_than_the_old_is_said_once() {
        let mut watch = RegressionWatch::new(RegressionOptions::default());
        let at = 1_800_000_000_000;
        baseline(&mut watch, at, 1);
        watch.moved("dpl_old", "dpl_new", at);
        let mut said = Vec::new();
        for i in 0..100 {
            let status = if i % 4 == 0 { 500 } else { 200 };
            said.extend(watch.observe(
                &ctx("dpl_new"),
                &row("dpl_new", at + 1_000 + i * 500, status),
            ));
        }
        assert_eq!(said.len(), 1, "one note per move");
        let note = &said[0];
        assert_eq!(note.event, DEPLOY_REGRESSION);
        assert_eq!(note.severity, Severity::Critical);
        assert_eq!(note.build_id.as_deref(), Some("dpl_new"));
        assert_eq!(
            note.metadata.get_str("previous_deployment"),
            Some("dpl_old")
        );
        assert!(
            note.message.contains("against 1.0% (6 of 600) on dpl_old"),
            "{}",
            note.message
        );
        assert!(
            note.message
                .contains("shiplog deployments rollback storefront --to dpl_old"),
            "{}",
            note.message
        );
    }

    #[test]
    fn a_healthy_move_and_too_little_traffic_say_nothing() {
        let at = 1_800_000_000_000;
        // As healthy as before.
        let mut watch = RegressionWatch::new(RegressionOptions::default());
        baseline(&mut watch, at, 1);
        watch.moved("dpl_old", "dpl_new", at);
        for i in 0..200 {
            let status = if i % 100 == 0 { 500 } else { 200 };
            assert!(watch
                .observe(&ctx("dpl_new"), &row("dpl_new", at + i * 500, status))
                .is_none());
        }
        // Worse, but on too few responses to tell.
        let mut watch = RegressionWatch::new(RegressionOptions::default());
        baseline(&mut watch, at, 1);
        watch.moved("dpl_old", "dpl_new", at);
        for i in 0..29 {
            assert!(watch
                .observe(&ctx("dpl_new"), &row("dpl_new", at + i * 500, 500))
                .is_none());
        }
        // Worse, but after the watched window.
        let mut watch = RegressionWatch::new(RegressionOptions::default());
        baseline(&mut watch, at, 1);
        watch.moved("dpl_old", "dpl_new", at);
        for i in 0..100 {
            assert!(watch
                .observe(&ctx("dpl_new"), &row("dpl_new", at + 181_000 + i, 500))
                .is_none());
        }
        // No baseline: shiplog did not see the old one serve.
        let mut watch = RegressionWatch::new(RegressionOptions::default());
        watch.moved("dpl_old", "dpl_new", at);
        for i in 0..100 {
            assert!(watch
                .observe(&ctx("dpl_new"), &row("dpl_new", at + i * 500, 500))
                .is_none());
        }
    }

    #[test]
    fn minutes_hold_responses_and_errors_in_order_for_an_hour() {
        let mut counts = MinuteCounts::default();
        counts.record(120_500, 200);
        counts.record(60_100, 503);
        counts.record(120_900, 500);
        let minutes: Vec<_> = counts.minutes().copied().collect();
        assert_eq!(
            minutes,
            [
                Minute {
                    start_ms: 60_000,
                    responses: 1,
                    errors: 1
                },
                Minute {
                    start_ms: 120_000,
                    responses: 2,
                    errors: 1
                },
            ]
        );
        for minute in 0..100 {
            counts.record(minute * 60_000, 200);
        }
        assert_eq!(counts.minutes().count(), MINUTES_KEPT);
    }
}
