//! The metrics registry: the plan's counters and the listener's, kept by `prometheus-client`,
//! served on `serve --listen`'s `/metrics` and written to `metrics.prom` for node exporter.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (ms) of the lag histograms' buckets.
const LAG_BUCKETS_MS: [f64; 10] = [
    10.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 60_000.0,
];

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

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RuleChannelLabels {
    rule: String,
    channel: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteStatusLabels {
    route: &'static str,
    status: u16,
}

/// `metric`, registered under `name`; the registry keeps a handle to the same values.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// One registry per process; share it behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events_received: Counter,
    lines_skipped: Counter,
    active_streams: Gauge,
    restarts: Family<ReasonLabel, Counter>,
    lag: Histogram,
    alerts_triggered: Family<RuleChannelLabels, Counter>,
    alerts_suppressed: Family<RuleLabel, Counter>,
    alerts_enqueued: Counter,
    alert_queue_depth: Gauge,
    listener: ListenerMetrics,
}

/// The listener's (`serve --listen`).
#[derive(Debug)]
struct ListenerMetrics {
    requests: Family<RouteStatusLabels, Counter>,
    signature_failures: Family<RouteLabel, Counter>,
    duplicates: Family<RouteLabel, Counter>,
    ingest_lag: Histogram,
    drain_records: Family<KindLabel, Counter>,
}

impl ListenerMetrics {
    fn registered(r: &mut Registry) -> Self {
        ListenerMetrics {
            requests: registered(
                r,
                "shiplog_listener_requests",
                "Requests to the listener, by route and answer",
                Family::default(),
            ),
            signature_failures: registered(
                r,
                "shiplog_listener_signature_failures",
                "Requests refused for a missing or wrong signature, by route",
                Family::default(),
            ),
            duplicates: registered(
                r,
                "shiplog_listener_duplicates",
                "Deliveries taken before (a retry, a repeat), by route",
                Family::default(),
            ),
            ingest_lag: registered(
                r,
                "shiplog_listener_ingest_lag_ms",
                "How long after Vercel created a delivered event the listener took it (ms)",
                Histogram::new(LAG_BUCKETS_MS),
            ),
            drain_records: registered(
                r,
                "shiplog_listener_drain_records",
                "Drained log records, by what became of them",
                Family::default(),
            ),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::default();
        Metrics {
            // The plan's names (counters get their `_total` from the encoder).
            events_received: registered(
                &mut r,
                "logs_vercel_events_received",
                "Build log events received from Vercel",
                Counter::default(),
            ),
            lines_skipped: registered(
                &mut r,
                "logs_vercel_lines_skipped",
                "Build log lines that could not be used (too long, not JSON, wrong shape)",
                Counter::default(),
            ),
            restarts: registered(
                &mut r,
                "logs_vercel_stream_restarts",
                "Build log streams opened again, by why",
                Family::default(),
            ),
            active_streams: registered(
                &mut r,
                "logs_active_vercel_streams",
                "Build log streams open now",
                Gauge::default(),
            ),
            lag: registered(
                &mut r,
                "logs_vercel_event_lag_ms",
                "How long after Vercel created an event shiplog received it (ms)",
                Histogram::new(LAG_BUCKETS_MS),
            ),
            alerts_triggered: registered(
                &mut r,
                "logs_alerts_triggered",
                "Alert notifications sent, by rule and channel",
                Family::default(),
            ),
            alerts_suppressed: registered(
                &mut r,
                "logs_alerts_suppressed",
                "Alerts not sent again inside their rule's window, by rule",
                Family::default(),
            ),
            alerts_enqueued: registered(
                &mut r,
                "logs_alerts_enqueued",
                "Notification jobs added to the alert queue",
                Counter::default(),
            ),
            alert_queue_depth: registered(
                &mut r,
                "logs_alert_queue_depth",
                "Notification jobs waiting in the alert queue",
                Gauge::default(),
            ),
            listener: ListenerMetrics::registered(&mut r),
            registry: r,
        }
    }

    pub fn event_received(&self) {
        self.events_received.inc();
    }

    /// A line that could not be used (too long, not JSON, wrong shape).
    pub fn line_skipped(&self) {
        self.lines_skipped.inc();
    }

    pub fn stream_opened(&self) {
        self.active_streams.inc();
    }

    pub fn stream_closed(&self) {
        self.active_streams.dec();
    }

    pub fn stream_restarted(&self, reason: RestartReason) {
        self.restarts
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// How long after Vercel created an event shiplog received it.
    pub fn observe_lag(&self, lag_ms: u64) {
        self.lag.observe(lag_ms as f64);
    }

    pub fn alert_triggered(&self, rule: &str, channel: &'static str) {
        self.alerts_triggered
            .get_or_create(&RuleChannelLabels {
                rule: rule.to_owned(),
                channel,
            })
            .inc();
    }

    pub fn alert_suppressed(&self, rule: &str) {
        self.alerts_suppressed
            .get_or_create(&RuleLabel {
                rule: rule.to_owned(),
            })
            .inc();
    }

    /// A notification job was added to the queue.
    pub fn alert_enqueued(&self) {
        self.alerts_enqueued.inc();
    }

    pub fn alerts_enqueued(&self) -> u64 {
        self.alerts_enqueued.get()
    }

    pub fn alert_queue_depth(&self) -> u64 {
        self.alert_queue_depth.get().max(0) as u64
    }

    pub fn set_alert_queue_depth(&self, depth: u64) {
        self.alert_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub fn alerts_suppressed(&self, rule: &str) -> u64 {
        // Read without adding a series for a rule that never suppressed.
        let label = RuleLabel {
            rule: rule.to_owned(),
        };
        self.alerts_suppressed.get(&label).map_or(0, |n| n.get())
    }

    pub fn events_received(&self) -> u64 {
        self.events_received.get()
    }

    pub fn lines_skipped(&self) -> u64 {
        self.lines_skipped.get()
    }

    pub fn active_streams(&self) -> i64 {
        self.active_streams.get()
    }

    pub fn restarts(&self, reason: RestartReason) -> u64 {
        let label = ReasonLabel {
            reason: reason.as_str(),
        };
        self.restarts.get(&label).map_or(0, |n| n.get())
    }

    /// A request the listener answered.
    pub fn request_answered(&self, route: &'static str, status: u16) {
        self.listener
            .requests
            .get_or_create(&RouteStatusLabels { route, status })
            .inc();
    }

    /// A request refused for its signature.
    pub fn signature_failed(&self, route: &'static str) {
        self.listener
            .signature_failures
            .get_or_create(&RouteLabel { route })
            .inc();
    }

    /// A delivery taken before.
    pub fn duplicate_delivered(&self, route: &'static str) {
        self.listener
            .duplicates
            .get_or_create(&RouteLabel { route })
            .inc();
    }

    /// How long after Vercel created a delivered event the listener took it.
    pub fn observe_ingest_lag(&self, lag_ms: u64) {
        self.listener.ingest_lag.observe(lag_ms as f64);
    }

    /// A drained record: `build`, `runtime` (taken), `repeated`, `covered` (the events API
    /// gives that build's log here), `other_project`.
    pub fn drain_record(&self, kind: &'static str) {
        self.listener
            .drain_records
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// Prometheus text exposition (version 0.0.4) of every metric.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
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
