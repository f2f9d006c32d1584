//! Alerting costs on the write path and in the engine.
//! - publishing an entry to the alerting engine from `Logger::write`: p95 under 1 µs (budget);
//!   measured as the write with the alerting outlet minus the write without it, per call;
//! - rule matching, fingerprinting and suppression with the full built-in rule set: entries/s.
//!
//! `cargo bench --bench alerting`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shiplog::alert::{RuleEvaluator, RuleSet, Suppressor};
use shiplog::log::{Delivery, LogEntry, Logger, Severity, Tier};
use shiplog::metrics::Metrics;

const N: usize = 200_000;

fn entries() -> Vec<LogEntry> {
    (0..N)
        .map(|i| {
            let (tier, severity, event, text) = match i % 50 {
                0 => (
                    Tier::Deploy,
                    Severity::Error,
                    "failed",
                    format!("Deployment dpl_{i:08} of storefront is ERROR"),
                ),
                1 => (
                    Tier::Build,
                    Severity::Error,
                    "stderr",
                    "FATAL ERROR: JavaScript heap out of memory".to_owned(),
                ),
                2 => (
                    Tier::System,
                    Severity::Warn,
                    "line_skipped",
                    format!("Skipped a build log line of {} bytes", 2_000_000 + i),
                ),
                3..=9 => (
                    Tier::Build,
                    Severity::Warn,
                    "stderr",
                    format!("npm warn deprecated pkg-{i}@1.0.{i}"),
                ),
                _ => (
                    Tier::Build,
                    Severity::Info,
                    "stdout",
                    format!(
                        "[build] transformed module {i:07} ./src/lib/module-{}.ts",
                        i % 997
                    ),
                ),
            };
            LogEntry::at(1_795_684_800_000 + i as i64, tier, severity, event, text)
                .with_deployment(format!("vercel-dpl_{:04}-01", i % 40))
        })
        .collect()
}

/// Per-call time of `Logger::write`, sorted.
fn write_times(logger: &Logger, entries: &[LogEntry]) -> Vec<Duration> {
    let mut times: Vec<Duration> = entries
        .iter()
        .map(|entry| {
            let entry = entry.clone();
            let start = Instant::now();
            logger.write(entry);
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn percentile(times: &[Duration], p: usize) -> f64 {
    times[times.len() * p / 100].as_nanos() as f64
}

fn main() {
    let entries = entries();

    // The same write, without and with the alerting outlet (taken in turns to share the noise).
    let bare = Logger::builder().build();
    let (builder, mut outlet) = Logger::builder().channel("alerts", N + 1, Delivery::DropWhenFull);
    let with_alerts = builder.build();
    let mut bare_runs = Vec::new();
    let mut alert_runs = Vec::new();
    for _ in 0..3 {
        bare_runs.push(write_times(&bare, &entries));
        alert_runs.push(write_times(&with_alerts, &entries));
        while outlet.try_recv().is_ok() {}
    }
    let median_of = |runs: &[Vec<Duration>], p: usize| {
        let mut values: Vec<f64> = runs.iter().map(|t| percentile(t, p)).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    for p in [50, 95, 99] {
        let bare = median_of(&bare_runs, p);
        let with = median_of(&alert_runs, p);
        println!(
            "write path p{p}: {bare:.0} ns without alerting, {with:.0} ns with it; publishing adds {:.0} ns",
            (with - bare).max(0.0)
        );
    }
    assert_eq!(with_alerts.dropped(), vec![("alerts".to_owned(), 0)]);

    // The engine: rules, fingerprints and (in-memory) suppression windows.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let shared: Vec<Arc<LogEntry>> = entries.into_iter().map(Arc::new).collect();
    let mut rates = Vec::new();
    for _ in 0..3 {
        let engine = RuleEvaluator::new(
            RuleSet::builtin(),
            Suppressor::replay(),
            Arc::new(Metrics::new()),
        );
        let start = Instant::now();
        runtime.block_on(async {
            for entry in &shared {
                black_box(engine.evaluate(entry.clone()).await);
            }
        });
        rates.push(shared.len() as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "rule matching + fingerprinting + suppression, {} built-in rules: median {:.0} entries/s (of {:?})",
        RuleSet::builtin().rules().len(),
        rates[1],
        rates.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
}
