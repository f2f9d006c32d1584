//! The deployments list: state (colour and symbol), project, branch, commit, age, duration,
//! lines, stream health.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};
use ratatui::Frame;

use crate::clock::short_duration;
use crate::stream::StreamHealth;
use crate::tui::screens::deployments::{DeploymentsScreen, Pane};
use crate::tui::theme::Theme;
use crate::vercel::ReadyState;

pub fn render(frame: &mut Frame, area: Rect, screen: &DeploymentsScreen, now: i64, theme: &Theme) {
    let title = match (&screen.snapshot.list_error, screen.snapshot.loaded) {
        (Some(_), _) => " Deployments (list failing) ",
        (None, false) => " Deployments (loading…) ",
        (None, true) => " Deployments ",
    };
    let block = super::pane(
        screen.focus == Pane::Deployments,
        Span::styled(title, theme.title),
        theme,
    );
    let wide = area.width >= 90;
    let rows: Vec<Row> = screen
        .rows()
        .into_iter()
        .map(|row| {
            let d = row.deployment;
            let state = d.state();
            let (symbol, style) = state_look(state, theme);
            let started = d.building_at.or(d.created).unwrap_or(now);
            let ended = if state.is_terminal() {
                d.ready.unwrap_or(now)
            } else {
                now
            };
            let mut cells = vec![
                Cell::from(Span::styled(
                    format!("{symbol} {}", short_state(state)),
                    style,
                )),
                // A name comes from the API: nothing in it may drive the terminal.
                Cell::from(
                    crate::printable::one_line(d.name.as_deref().unwrap_or_default()).into_owned(),
                ),
            ];
            if wide {
                cells.push(Cell::from(meta(d, "githubCommitRef")).style(theme.muted));
                cells.push(Cell::from(meta(d, "githubCommitMessage")));
            }
            cells.push(
                Cell::from(short_duration(now - d.created.unwrap_or(now))).style(theme.muted),
            );
            cells.push(Cell::from(short_duration(ended - started)));
            cells.push(Cell::from(row.lines.to_string()));
            cells.push(Cell::from(health_look(row.health, theme)));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(8), Constraint::Min(10)];
    if wide {
        widths.push(Constraint::Length(14));
        widths.push(Constraint::Min(16));
    }
    widths.extend([
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(2),
    ]);
    let header_cells: Vec<&str> = if wide {
        vec![
            "state", "project", "branch", "commit", "age", "took", "lines", "",
        ]
    } else {
        vec!["state", "project", "age", "took", "lines", ""]
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header_cells).style(theme.header))
        .block(block)
        .row_highlight_style(theme.selection)
        .column_spacing(1);
    let mut state = TableState::default().with_selected(screen.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

fn meta(d: &crate::vercel::DeploymentSummary, key: &str) -> String {
    let text = d.meta.get(key).and_then(|v| v.as_str()).unwrap_or("");
    crate::printable::one_line(text.lines().next().unwrap_or("")).into_owned()
}

fn short_state(state: ReadyState) -> &'static str {
    match state {
        ReadyState::Queued => "QUEUED",
        ReadyState::Initializing => "INIT",
        ReadyState::Building => "BUILD",
        ReadyState::Ready => "READY",
        ReadyState::Error => "ERROR",
        ReadyState::Canceled => "CANCEL",
        ReadyState::Deleted => "DELETED",
        ReadyState::Unknown => "?",
    }
}

/// The symbol and style of a state: never colour alone.
pub fn state_look(state: ReadyState, theme: &Theme) -> (&str, Style) {
    let s = &theme.symbols;
    match state {
        ReadyState::Queued => (&s.queued, theme.state_queued),
        ReadyState::Initializing => (&s.initializing, theme.state_initializing),
        ReadyState::Building | ReadyState::Unknown => (&s.building, theme.state_building),
        ReadyState::Ready => (&s.ready, theme.state_ready),
        ReadyState::Error => (&s.error, theme.state_error),
        ReadyState::Canceled | ReadyState::Deleted => (&s.canceled, theme.state_canceled),
    }
}

fn health_look(health: Option<StreamHealth>, theme: &Theme) -> Line<'static> {
    let s = &theme.symbols;
    let (symbol, style) = match health {
        Some(StreamHealth::Live) => (s.live.clone(), theme.health_live),
        Some(StreamHealth::Reconnecting) => (s.reconnecting.clone(), theme.health_reconnecting),
        Some(StreamHealth::Degraded) => (s.degraded.clone(), theme.health_degraded),
        Some(StreamHealth::Finished) | None => (String::new(), theme.muted),
    };
    Line::from(Span::styled(symbol, style))
}
