//! The metrics registry: the plan's counters, read by the dashboard and a later `/metrics` endpoint.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (ms) of the event-lag histogram buckets.
const LAG_BUCKETS_MS: [u64; 10] = [10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 60_000];

/// Why a stream was restarted (`logs_vercel_stream_restarts_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RestartReason {
    /// The stream ended cleanly while the build still ran.
    CleanEnd,
    /// The connection broke (reset, cut mid-line).
    Error,
    /// No bytes for the idle timeout.
    Stall,
    /// The server answered 429.
    RateLimited,
    /// The server answered 5xx.
    ServerError,
}

impl RestartReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::CleanEnd => "clean_end",
            RestartReason::Error => "error",
            RestartReason::Stall => "stall",
            RestartReason::RateLimited => "rate_limited",
            RestartReason::ServerError => "server_error",
        }
    }
}

/// One registry per process; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    events_received: AtomicU64,
    lines_skipped: AtomicU64,
    active_streams: AtomicI64,
    restarts: Mutex<BTreeMap<RestartReason, u64>>,
    lag_buckets: [AtomicU64; LAG_BUCKETS_MS.len() + 1],
    lag_sum_ms: AtomicU64,
    lag_count: AtomicU64,
    /// `logs_alerts_triggered_total{rule,channel}`
    alerts_triggered: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// `logs_alerts_suppressed_total{rule}`
    alerts_suppressed: Mutex<BTreeMap<String, u64>>,
    /// `logs_alerts_enqueued_total`
    alerts_enqueued: AtomicU64,
    /// `logs_alert_queue_depth`
    alert_queue_depth: AtomicU64,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    pub fn event_received(&self) {
        self.events_received.fetch_add(1, Ordering::Relaxed);
    }

    /// A line that could not be used (too long, not JSON, wrong shape).
    pub fn line_skipped(&self) {
        self.lines_skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_opened(&self) {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.active_streams.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn stream_restarted(&self, reason: RestartReason) {
        if let Ok(mut restarts) = self.restarts.lock() {
            *restarts.entry(reason).or_default() += 1;
        }
    }

    /// How long after Vercel created an event shiplog received it.
    pub fn observe_lag(&self, lag_ms: u64) {
        let bucket = LAG_BUCKETS_MS
            .iter()
            .position(|&bound| lag_ms <= bound)
            .unwrap_or(LAG_BUCKETS_MS.len());
        self.lag_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.lag_sum_ms.fetch_add(lag_ms, Ordering::Relaxed);
        self.lag_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn alert_triggered(&self, rule: &str, channel: &'static str) {
        if let Ok(mut triggered) = self.alerts_triggered.lock() {
            *triggered.entry((rule.to_owned(), channel)).or_default() += 1;
        }
    }

    pub fn alert_suppressed(&self, rule: &str) {
        if let Ok(mut suppressed) = self.alerts_suppressed.lock() {
            *suppressed.entry(rule.to_owned()).or_default() += 1;
        }
    }

    /// A notification job was added to the queue.
    pub fn alert_enqueued(&self) {
        self.alerts_enqueued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn alerts_enqueued(&self) -> u64 {
        self.alerts_enqueued.load(Ordering::Relaxed)
    }

    pub fn alert_queue_depth(&self) -> u64 {
        self.alert_queue_depth.load(Ordering::Relaxed)
    }

    pub fn set_alert_queue_depth(&self, depth: u64) {
        self.alert_queue_depth.store(depth, Ordering::Relaxed);
    }

    pub fn alerts_suppressed(&self, rule: &str) -> u64 {
        self.alerts_suppressed
            .lock()
            .map(|s| s.get(rule).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn events_received(&self) -> u64 {
        self.events_received.load(Ordering::Relaxed)
    }

    pub fn lines_skipped(&self) -> u64 {
        self.lines_skipped.load(Ordering::Relaxed)
    }

    pub fn active_streams(&self) -> i64 {
        self.active_streams.load(Ordering::Relaxed)
    }

    pub fn restarts(&self, reason: RestartReason) -> u64 {
        self.restarts
            .lock()
            .map(|r| r.get(&reason).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Prometheus text exposition of every metric.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE logs_vercel_events_received_total counter");
        let _ = writeln!(
            out,
            "logs_vercel_events_received_total {}",
            self.events_received()
        );
        let _ = writeln!(out, "# TYPE logs_vercel_lines_skipped_total counter");
        let _ = writeln!(
            out,
            "logs_vercel_lines_skipped_total {}",
            self.lines_skipped()
        );
        let _ = writeln!(out, "# TYPE logs_vercel_stream_restarts_total counter");
        if let Ok(restarts) = self.restarts.lock() {
            for (reason, n) in restarts.iter() {
                let _ = writeln!(
                    out,
                    "logs_vercel_stream_restarts_total{{reason=\"{}\"}} {n}",
                    reason.as_str()
                );
            }
        }
        let _ = writeln!(out, "# TYPE logs_active_vercel_streams gauge");
        let _ = writeln!(out, "logs_active_vercel_streams {}", self.active_streams());
        let _ = writeln!(out, "# TYPE logs_vercel_event_lag_ms histogram");
        let mut cumulative = 0;
        for (i, bound) in LAG_BUCKETS_MS.iter().enumerate() {
            cumulative += self.lag_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "logs_vercel_event_lag_ms_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.lag_buckets[LAG_BUCKETS_MS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "logs_vercel_event_lag_ms_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "logs_vercel_event_lag_ms_sum {}",
            self.lag_sum_ms.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "logs_vercel_event_lag_ms_count {}",
            self.lag_count.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE logs_alerts_triggered_total counter");
        if let Ok(triggered) = self.alerts_triggered.lock() {
            for ((rule, channel), n) in triggered.iter() {
                let _ = writeln!(
                    out,
                    "logs_alerts_triggered_total{{rule=\"{rule}\",channel=\"{channel}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# TYPE logs_alerts_suppressed_total counter");
        if let Ok(suppressed) = self.alerts_suppressed.lock() {
            for (rule, n) in suppressed.iter() {
                let _ = writeln!(out, "logs_alerts_suppressed_total{{rule=\"{rule}\"}} {n}");
            }
        }
        let _ = writeln!(out, "# TYPE logs_alerts_enqueued_total counter");
        let _ = writeln!(out, "logs_alerts_enqueued_total {}", self.alerts_enqueued());
        let _ = writeln!(out, "# TYPE logs_alert_queue_depth gauge");
        let _ = writeln!(out, "logs_alert_queue_depth {}", self.alert_queue_depth());
        out
    }
}

/// Writes the exposition to `path` every `every`, after a random start delay of up to
/// `start_jitter` (the plan's 0-30 s, so that instances started together do not report
/// together), until `shutdown`. The file suits Prometheus' node exporter (textfile collector).
pub async fn report_periodically(
    metrics: std::sync::Arc<Metrics>,
    path: std::path::PathBuf,
    every: std::time::Duration,
    start_jitter: std::time::Duration,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let delay = start_jitter.mul_f64(rand::random::<f64>());
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = crate::shutdown::stopped(&mut shutdown) => return,
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
        let text = metrics.render_prometheus();
        let written = crate::fsutil::replace(&path, text.as_bytes());
        match written {
            Ok(()) => tracing::info!(
                events = metrics.events_received(),
                active_streams = metrics.active_streams(),
                alerts_enqueued = metrics.alerts_enqueued(),
                alert_queue_depth = metrics.alert_queue_depth(),
                path = %path.display(),
                "metrics report"
            ),
            Err(err) => {
                tracing::warn!(%err, path = %path.display(), "could not write the metrics report")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_plan_names() {
        let m = Metrics::new();
        m.event_received();
        m.stream_opened();
        m.stream_restarted(RestartReason::Stall);
        m.observe_lag(70);
        m.observe_lag(100_000);
        let text = m.render_prometheus();
        assert!(text.contains("logs_vercel_events_received_total 1"));
        assert!(text.contains("logs_vercel_stream_restarts_total{reason=\"stall\"} 1"));
        assert!(text.contains("logs_active_vercel_streams 1"));
        assert!(text.contains("logs_vercel_event_lag_ms_bucket{le=\"50\"} 0"));
        assert!(text.contains("logs_vercel_event_lag_ms_bucket{le=\"100\"} 1"));
        assert!(text.contains("logs_vercel_event_lag_ms_bucket{le=\"+Inf\"} 2"));
    }
}

#[cfg(test)]
mod reporting {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Nothing before the start jitter ends; then a report every interval.
    #[tokio::test(start_paused = true)]
    async fn reports_start_within_the_jitter_then_repeat() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("metrics.prom");
        let metrics = Arc::new(Metrics::new());
        metrics.alert_enqueued();
        metrics.set_alert_queue_depth(4);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let reporting = tokio::spawn(report_periodically(
            metrics.clone(),
            path.clone(),
            Duration::from_secs(60),
            Duration::from_secs(30),
            shutdown,
        ));
        tokio::task::yield_now().await;
        assert!(!path.exists(), "nothing before the jitter");
        tokio::time::sleep(Duration::from_secs(31)).await;
        let first = std::fs::read_to_string(&path).expect("a report within 30 s");
        assert!(first.contains("logs_alerts_enqueued_total 1"), "{first}");
        assert!(first.contains("logs_alert_queue_depth 4"), "{first}");
        metrics.alert_enqueued();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let second = std::fs::read_to_string(&path).expect("report");
        assert!(second.contains("logs_alerts_enqueued_total 2"), "{second}");
        let _ = stop.send(true);
        reporting.await.expect("stops");
    }
}
