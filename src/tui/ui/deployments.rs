//! The deployments list: state (colour and symbol), project (the one production serves marked),
//! production or preview, branch, commit and author, age, duration, lines, stream health. On a
//! terminal of 120 columns or more each deployment takes two lines, the second its git details.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};
use ratatui::Frame;

use crate::clock::short_duration;
use crate::stream::StreamHealth;
use crate::tui::screens::deployments::{DeploymentsScreen, Pane};
use crate::tui::theme::Theme;
use crate::vercel::{DeploymentSummary, ReadyState};

/// Marks the deployment its project's production serves.
const PRODUCTION_MARK: &str = "★ ";

pub fn render(
    frame: &mut Frame,
    area: Rect,
    screen: &DeploymentsScreen,
    now: i64,
    theme: &Theme,
    two_lines: bool,
) {
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
            let look = Look::of(d, screen, now, theme);
            let lines = Cell::from(row.lines.to_string());
            let health = Cell::from(health_look(row.health, theme));
            let git = d.git();
            if two_lines {
                // Line 2: when it started and how long it took, who and what (git).
                let git = [git.author, git.branch, git.short_sha(), git.message]
                    .into_iter()
                    .map(shown)
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                return Row::new(vec![
                    Cell::from(vec![look.state, Line::styled(look.age, theme.muted)]),
                    Cell::from(vec![look.project, Line::styled(git, theme.muted)]),
                    Cell::from(vec![Line::from(look.target), Line::from(look.took)]),
                    lines,
                    health,
                ])
                .height(2);
            }
            let mut cells = vec![Cell::from(look.state), Cell::from(look.project)];
            if wide {
                cells.push(Cell::from(shown(git.branch)).style(theme.muted));
                cells.push(Cell::from(shown(git.message)));
            }
            cells.extend([
                Cell::from(look.age).style(theme.muted),
                Cell::from(look.took),
                lines,
                health,
            ]);
            Row::new(cells)
        })
        .collect();
    let (widths, header) = if two_lines {
        (
            vec![
                Constraint::Length(8),
                Constraint::Min(16),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(2),
            ],
            Row::new(vec![
                Cell::from(vec![Line::from("state"), Line::from("age")]),
                Cell::from(vec![
                    Line::from("project"),
                    Line::from("author, branch, commit"),
                ]),
                Cell::from(vec![Line::from("target"), Line::from("took")]),
                Cell::from("lines"),
                Cell::from(""),
            ])
            .height(2),
        )
    } else {
        let mut widths = vec![Constraint::Length(8), Constraint::Min(10)];
        let mut header = vec!["state", "project"];
        if wide {
            widths.extend([Constraint::Length(14), Constraint::Min(16)]);
            header.extend(["branch", "commit"]);
        }
        widths.extend([
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(2),
        ]);
        header.extend(["age", "took", "lines", ""]);
        (widths, Row::new(header))
    };
    let table = Table::new(rows, widths)
        .header(header.style(theme.header))
        .block(block)
        .row_highlight_style(theme.selection)
        .column_spacing(1);
    let mut state = TableState::default().with_selected(screen.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

/// A git detail as a row shows it: its first line, nothing in it that drives the terminal.
fn shown(text: Option<&str>) -> String {
    let first = text.and_then(|t| t.lines().next()).unwrap_or("");
    crate::printable::one_line(first).into_owned()
}

/// What a row shows of a deployment on its first line.
struct Look {
    state: Line<'static>,
    project: Line<'static>,
    target: &'static str,
    age: String,
    took: String,
}

impl Look {
    fn of(d: &DeploymentSummary, screen: &DeploymentsScreen, now: i64, theme: &Theme) -> Look {
        let state = d.state();
        let (symbol, style) = state_look(state, theme);
        let started = d.building_at.or(d.created).unwrap_or(now);
        // The list gives an end time for READY only: a failed build's length is not known.
        let took = match (state.is_terminal(), d.ready) {
            (false, _) => short_duration(now - started),
            (true, Some(ready)) => short_duration(ready - started),
            (true, None) => "–".to_owned(),
        };
        let serves = screen.serves_production(d);
        // A name comes from the API: nothing in it may drive the terminal.
        let name = crate::printable::one_line(d.name.as_deref().unwrap_or_default()).into_owned();
        let project = match serves {
            true => Line::from(vec![
                Span::styled(PRODUCTION_MARK, theme.state_ready),
                Span::raw(name),
            ]),
            false => Line::from(name),
        };
        Look {
            state: Line::styled(format!("{symbol} {}", short_state(state)), style),
            project,
            target: match d.target.as_deref() {
                Some("production") => "prod",
                Some(_) => "stage",
                None => "prev",
            },
            age: short_duration(now - d.created.unwrap_or(now)),
            took,
        }
    }
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
