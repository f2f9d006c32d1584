//! The queue screen: depth as a gauge and a sparkline over the last two minutes, jobs in
//! flight, retrying and dead-lettered, the send rate, each channel's health (paused until
//! when, switched off, last error), and the latest dead letters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Gauge, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::titled_block;
use crate::alert::queue::worker::{ChannelHealth, QueueSnapshot};
use crate::clock::short_duration;
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let queue = &app.queue;
    if !app.alerts.is_running() {
        let off = Paragraph::new(Span::styled(
            "Alerting is off, so nothing is queued (--alerts true or LOG_ALERTS_ENABLED=true).",
            theme.muted,
        ))
        .block(titled_block(" Delivery queue ", theme.border, theme));
        frame.render_widget(off, area);
        return;
    }
    let [depth, counts, channels, dead] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(CHANNEL_ROWS),
        Constraint::Min(3),
    ])
    .areas(area);
    render_depth(frame, depth, queue, theme);
    render_counts(frame, counts, queue, theme);
    render_channels(frame, channels, app, theme);
    render_dead(frame, dead, app, theme);
}

/// The channels table: borders, header and the five channels.
const CHANNEL_ROWS: u16 = 8;

fn render_depth(frame: &mut Frame, area: Rect, queue: &QueueSnapshot, theme: &Theme) {
    let title = if queue.name.is_empty() {
        " Delivery queue (starting) ".to_owned()
    } else {
        format!(" Delivery queue {} on {} ", queue.name, queue.backend)
    };
    let border = if queue.degraded {
        theme.status_warning
    } else {
        theme.border
    };
    let block = titled_block(title, border, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [gauge, spark] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    let depth = queue.counts.depth();
    // The newest samples, as many as fit, the latest on the right.
    let shown = &queue.depth_history[queue
        .depth_history
        .len()
        .saturating_sub(usize::from(spark.width))..];
    let peak = queue
        .depth_history
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(depth);
    // Full scale: the recent peak, and at least what one worker sends at once.
    let scale = peak.max(depth).max(queue.concurrency as u64).max(1);
    let label = format!("depth {depth} (peak {peak} in the last 2 min)");
    frame.render_widget(
        Gauge::default()
            .gauge_style(if depth > 0 {
                theme.severity_warn
            } else {
                theme.health_live
            })
            .ratio((depth as f64 / scale as f64).clamp(0.0, 1.0))
            .label(Span::styled(label, theme.base)),
        gauge,
    );
    frame.render_widget(
        Sparkline::default()
            .data(shown)
            .max(scale)
            .style(theme.state_building),
        spark,
    );
}

fn render_counts(frame: &mut Frame, area: Rect, queue: &QueueSnapshot, theme: &Theme) {
    let c = &queue.counts;
    let value = |label: &'static str, value: String, style| {
        vec![
            Span::styled(format!("{label} "), theme.muted),
            Span::styled(value, style),
            Span::raw("   "),
        ]
    };
    let plain = theme.base;
    let mut first = value("waiting", c.waiting.to_string(), plain);
    first.extend(value(
        "in flight",
        format!("{}/{}", c.in_flight, queue.concurrency),
        plain,
    ));
    first.extend(value(
        "retrying",
        c.retrying.to_string(),
        if c.retrying > 0 {
            theme.severity_warn
        } else {
            plain
        },
    ));
    first.extend(value(
        "dead-lettered",
        c.dead_lettered.to_string(),
        if c.dead_lettered > 0 {
            theme.severity_error
        } else {
            plain
        },
    ));
    let mut second = value("sent", c.completed.to_string(), plain);
    second.extend(value(
        "rate",
        format!("{}/min", queue.sent_last_minute),
        plain,
    ));
    second.extend(value(
        "limit",
        format!("{}/s across instances", queue.rate_per_second),
        theme.muted,
    ));
    let mut lines = vec![Line::from(first), Line::from(second)];
    if queue.degraded {
        lines[1].spans.push(Span::styled(
            "Redis unreachable: queueing in this process",
            theme.status_warning,
        ));
    }
    frame.render_widget(
        Paragraph::new(lines).block(titled_block(" Jobs ", theme.border, theme)),
        area,
    );
}

fn render_channels(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let now = app.now();
    let rows: Vec<Row> = app
        .queue
        .channels
        .iter()
        .map(|(channel, health)| {
            let (state, style) = channel_state(health, now, theme);
            Row::new(vec![
                Cell::from(channel.as_str()),
                Cell::from(Span::styled(state, style)),
                Cell::from(health.last_sent_ms.map_or("-".to_owned(), |at| {
                    format!("{} ago", short_duration(now - at))
                }))
                .style(theme.muted),
                Cell::from(health.last_error.clone().unwrap_or_default())
                    .style(theme.severity_error),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(44),
            Constraint::Length(10),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["channel", "state", "last sent", "last error"]).style(theme.header))
    .block(titled_block(" Channels ", theme.border, theme))
    .column_spacing(1);
    frame.render_widget(table, area);
}

fn channel_state(
    health: &ChannelHealth,
    now: i64,
    theme: &Theme,
) -> (String, ratatui::style::Style) {
    if let Some(off) = &health.off {
        return (format!("○ {off}"), theme.muted);
    }
    if health.demo {
        return (
            "◆ demo channel (shown in the log)".to_owned(),
            theme.health_live,
        );
    }
    match health.paused_until_ms {
        Some(until) if until > now => (
            format!("‖ paused (429) for {}", short_duration(until - now)),
            theme.severity_warn,
        ),
        _ => ("● on".to_owned(), theme.health_live),
    }
}

fn render_dead(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let now = app.now();
    let block = titled_block(" Dead letters (latest) ", theme.border, theme);
    if app.queue.dead.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("None.", theme.muted)).block(block),
            area,
        );
        return;
    }
    let rows: Vec<Row> = app
        .queue
        .dead
        .iter()
        .map(|job| {
            Row::new(vec![
                Cell::from(format!("{} ago", short_duration(now - job.at_ms))).style(theme.muted),
                Cell::from(job.rule.clone()),
                Cell::from(job.channel.as_str()),
                Cell::from(job.reason.clone().unwrap_or_default()).style(theme.severity_error),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(22),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["when", "rule", "channel", "why"]).style(theme.header))
    .block(block)
    .column_spacing(1);
    frame.render_widget(table, area);
}
