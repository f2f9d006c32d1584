//! The alert feed: newest first, severity (colour and symbol), rule, summary, deployment,
//! count, first and last seen, state (muted when a silence or an inhibition mutes it),
//! channels; the selected alert's details below. Or the silences: state, matchers, when, who
//! and why.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::alert::book::{AlertRecord, AlertState};
use crate::alert::matcher;
use crate::alert::silence::SilenceState;
use crate::alert::AlertSeverity;
use crate::clock::short_duration;
use crate::tui::screens::alerts::AlertsScreen;
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, screen: &AlertsScreen, now: i64, theme: &Theme) {
    if screen.showing_silences {
        render_silences(frame, area, screen, now, theme);
        return;
    }
    let [list, details] = Layout::vertical([Constraint::Min(5), Constraint::Length(8)]).areas(area);
    let title = if screen.is_running() {
        " Alerts "
    } else {
        " Alerts (alerting is off: --alerts true or LOG_ALERTS_ENABLED=true) "
    };
    let block = super::pane(true, Span::styled(title, theme.title), theme);
    if screen.records.is_empty() {
        let empty = Paragraph::new(Span::styled("No alerts. All quiet.", theme.muted)).block(block);
        frame.render_widget(empty, list);
        return;
    }
    let wide = area.width >= 110;
    let rows: Vec<Row> = screen
        .records
        .iter()
        .map(|a| {
            let (symbol, style) = severity_look(a.severity, theme);
            let mut cells = vec![
                Cell::from(Span::styled(
                    format!("{symbol} {}", a.severity.as_str()),
                    style,
                )),
                Cell::from(a.rule.clone()),
                Cell::from(a.summary.clone()),
                Cell::from(format!("x{}", a.count)),
                Cell::from(short_duration(now - a.last_seen)).style(theme.muted),
                state_cell(a, theme),
            ];
            if wide {
                cells.insert(3, Cell::from(short_deployment(a)).style(theme.muted));
                cells.insert(
                    5,
                    Cell::from(short_duration(now - a.first_seen)).style(theme.muted),
                );
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(10),
        Constraint::Length(20),
        Constraint::Min(20),
    ];
    let mut header = vec!["severity", "rule", "summary"];
    if wide {
        widths.push(Constraint::Length(14));
        header.push("deployment");
    }
    widths.push(Constraint::Length(6));
    header.push("count");
    if wide {
        widths.push(Constraint::Length(7));
        header.push("first");
    }
    widths.extend([Constraint::Length(7), Constraint::Length(8)]);
    header.extend(["last", "state"]);
    let selected = screen.selected_index();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header))
        .block(block)
        .row_highlight_style(theme.selection)
        .column_spacing(1);
    frame.render_stateful_widget(
        table,
        list,
        &mut TableState::default().with_selected(selected),
    );
    if let Some(record) = screen.selected_record() {
        render_details(frame, details, record, theme);
    }
}

fn render_details(frame: &mut Frame, area: Rect, record: &AlertRecord, theme: &Theme) {
    let state = match &record.state {
        AlertState::Firing => "firing".to_owned(),
        AlertState::Acknowledged { by, note, .. } => match note {
            Some(note) => format!("acknowledged by {by}: {note}"),
            None => format!("acknowledged by {by}"),
        },
        AlertState::Resolved { by: Some(by), .. } => format!("resolved by {by}"),
        AlertState::Resolved { by: None, .. } => "resolved (quiet for an hour)".to_owned(),
    };
    let channels: Vec<String> = record
        .channels
        .iter()
        .map(|c| match record.deliveries.get(c) {
            Some(status) => format!("{} {}", c.as_str(), status.label()),
            None => format!("{} pending", c.as_str()),
        })
        .collect();
    let mut lines = vec![Line::from(vec![
        Span::styled("state ", theme.muted),
        Span::raw(state),
    ])];
    if let Some(muted) = &record.muted {
        lines.push(Line::from(Span::styled(
            muted.describe(),
            theme.status_warning,
        )));
    }
    lines.extend([
        Line::from(vec![
            Span::styled("channels ", theme.muted),
            Span::raw(if channels.is_empty() {
                "none".to_owned()
            } else {
                channels.join(" | ")
            }),
        ]),
        Line::from(vec![
            Span::styled("deployment ", theme.muted),
            Span::raw(
                record
                    .deployment_id
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
            ),
        ]),
        Line::from(vec![
            Span::styled("fingerprint ", theme.muted),
            Span::raw(record.fingerprint.clone()),
        ]),
        Line::from(vec![
            Span::styled("message ", theme.muted),
            Span::raw(record.summary.clone()),
        ]),
    ]);
    let block = super::pane(
        false,
        Span::styled(
            " Details (a ack, r resolve, s silence, S silences, Enter log) ",
            theme.title,
        ),
        theme,
    );
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn short_deployment(record: &AlertRecord) -> String {
    record
        .build_id
        .clone()
        .or_else(|| record.deployment_id.clone())
        .unwrap_or_default()
}

/// The symbol and style of a severity: never colour alone.
fn severity_look(severity: AlertSeverity, theme: &Theme) -> (&'static str, Style) {
    match severity {
        AlertSeverity::Critical => ("✖", theme.severity_critical),
        AlertSeverity::High => ("▲", theme.severity_error),
        AlertSeverity::Medium => ("●", theme.severity_warn),
        AlertSeverity::Low => ("·", theme.muted),
    }
}

/// The state, or `muted` for a firing alert that a silence or an inhibition mutes.
fn state_cell(record: &AlertRecord, theme: &Theme) -> Cell<'static> {
    match (&record.state, &record.muted) {
        (AlertState::Firing, Some(_)) => Cell::from(Span::styled("muted", theme.muted)),
        (state, _) => Cell::from(Span::styled(state.label(), state_style(state, theme))),
    }
}

/// The silences, newest first: the live ones, then those expired (kept five days).
fn render_silences(frame: &mut Frame, area: Rect, screen: &AlertsScreen, now: i64, theme: &Theme) {
    let title = " Silences (e expire, S alerts) ";
    let block = super::pane(true, Span::styled(title, theme.title), theme);
    if screen.silences.is_empty() {
        let empty = Paragraph::new(Span::styled(
            "No silences. On an alert, s writes one.",
            theme.muted,
        ))
        .block(block);
        frame.render_widget(empty, area);
        return;
    }
    let rows: Vec<Row> = screen
        .silences
        .iter()
        .map(|silence| {
            let state = silence.state(now);
            let when = match state {
                SilenceState::Pending => format!("in {}", short_duration(silence.starts_at - now)),
                SilenceState::Active => format!("{} left", short_duration(silence.ends_at - now)),
                SilenceState::Expired => format!("{} ago", short_duration(now - silence.ends_at)),
            };
            let style = match state {
                SilenceState::Active => theme.status_warning,
                SilenceState::Pending => Style::default(),
                SilenceState::Expired => theme.muted,
            };
            Row::new(vec![
                Cell::from(silence.short_id().to_owned()).style(theme.muted),
                Cell::from(Span::styled(state.as_str(), style)),
                Cell::from(matcher::describe(&silence.matchers)),
                Cell::from(when).style(theme.muted),
                Cell::from(format!("{}: {}", silence.created_by, silence.comment)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Min(24),
        Constraint::Length(10),
        Constraint::Min(20),
    ];
    let selected = screen.selected_silence_index();
    let table = Table::new(rows, widths)
        .header(Row::new(["id", "state", "matchers", "when", "by"]).style(theme.header))
        .block(block)
        .row_highlight_style(theme.selection)
        .column_spacing(1);
    frame.render_stateful_widget(
        table,
        area,
        &mut TableState::default().with_selected(selected),
    );
}

fn state_style(state: &AlertState, theme: &Theme) -> Style {
    match state {
        AlertState::Firing => theme.severity_error,
        AlertState::Acknowledged { .. } => theme.status_warning,
        AlertState::Resolved { .. } => theme.muted,
    }
}
