//! The breakglass screen: unmistakable (a banner in the danger style), the kill switch and the
//! user's role up front, each entry with its time and uses left, the answer to the last
//! request (a denial's exact reason, or the granted token masked until revealed), and the
//! audit trail underneath.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::titled_block;
use crate::breakglass::desk::BreakglassView;
use crate::breakglass::entry::Storage;
use crate::breakglass::store::Boundary;
use crate::log::entry::rfc3339;
use crate::tui::app::App;
use crate::tui::screens::breakglass::{masked, Answer};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(view) = &app.breakglass.view else {
        let off = Paragraph::new(Span::styled(
            "Breakglass is not available here.",
            theme.muted,
        ))
        .block(titled_block(" Breakglass ", theme.border, theme));
        frame.render_widget(off, area);
        return;
    };
    let [banner, status, entries, answer, audit] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(if view.storage == Storage::Plaintext {
            3
        } else {
            2
        }),
        Constraint::Length((view.entries.len().max(1) as u16 + 3).min(10)),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(area);
    let danger = theme.severity_critical;
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            " ⚠ BREAKGLASS: emergency access to production tokens. Every request is audited. ",
            danger
                .add_modifier(ratatui::style::Modifier::REVERSED | ratatui::style::Modifier::BOLD),
        ))),
        banner,
    );
    render_status(frame, status, view, theme);
    render_entries(frame, entries, app, view, theme);
    render_answer(frame, answer, app, theme);
    render_audit(frame, audit, app, view, theme);
}

fn render_status(frame: &mut Frame, area: Rect, view: &BreakglassView, theme: &Theme) {
    let switch = if view.enabled {
        Span::styled(
            " kill switch: ON (access possible) ",
            theme.severity_critical,
        )
    } else {
        Span::styled(
            " kill switch: OFF (VERCEL_BREAKGLASS_ENABLED) ",
            theme.muted,
        )
    };
    let role_style = if view.role.may_break_glass() {
        theme.severity_warn
    } else {
        theme.muted
    };
    let mut lines = vec![Line::from(vec![
        switch,
        Span::raw(" | you: "),
        Span::styled(
            format!("{} ({})", view.user, view.role.as_str()),
            role_style,
        ),
        Span::raw(" | copies: "),
        Span::raw(match view.storage {
            Storage::Sealed => "sealed with BREAKGLASS_KEY",
            Storage::Plaintext => "PLAINTEXT",
        }),
    ])];
    lines.push(Line::from(Span::styled(
        match view.boundary {
            Boundary::FileOwner => {
                " Files: the role is a claim; the OS user and BREAKGLASS_KEY are the boundary."
            }
            Boundary::RedisAcl => {
                " Redis: its ACL users enforce access, not the role on this screen."
            }
        },
        theme.muted,
    )));
    if view.storage == Storage::Plaintext {
        lines.push(Line::from(Span::styled(
            " ▲ Plaintext storage: anyone who can read the store can read these tokens (BREAKGLASS_STORAGE). ",
            theme.severity_critical,
        )));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_entries(frame: &mut Frame, area: Rect, app: &App, view: &BreakglassView, theme: &Theme) {
    let title = " Entries (Enter requests access) ";
    let outer = titled_block(title, theme.border_focused, theme);
    if let Some(error) = &view.error {
        frame.render_widget(
            Paragraph::new(Span::styled(format!("▲ {error}"), theme.status_warning))
                .block(outer)
                .wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    if view.entries.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "No entries. `shiplog login` makes one per connection.",
                theme.muted,
            ))
            .block(outer),
            area,
        );
        return;
    }
    let now = app.now();
    let rows: Vec<Row> = view
        .entries
        .iter()
        .map(|e| {
            Row::new(vec![
                Cell::from(e.connection_id.clone()),
                Cell::from(
                    e.team_name
                        .clone()
                        .or(e.team_id.clone())
                        .unwrap_or_else(|| "personal".to_owned()),
                ),
                Cell::from(e.state(now)),
                Cell::from(format!("{}/{}", e.uses_left(), e.max_access_count)),
                Cell::from(e.reason.clone()).style(theme.muted),
            ])
        })
        .collect();
    let selected = app.breakglass.selected_index();
    let table = Table::new(
        rows,
        [
            Constraint::Length(18),
            Constraint::Length(16),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["connection", "team", "time", "uses left", "reason"]).style(theme.header))
    .row_highlight_style(theme.selection)
    .block(outer)
    .column_spacing(1);
    frame.render_stateful_widget(
        table,
        area,
        &mut TableState::default().with_selected(selected),
    );
}

fn render_answer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let now = app.now();
    let lines = match &app.breakglass.answer {
        None => vec![Line::from(Span::styled(
            "Choose an entry and press Enter: a justification, then the connection id to confirm.",
            theme.muted,
        ))],
        Some(Answer::Waiting { connection_id }) => vec![Line::from(format!(
            "Asking for {connection_id}: writing the audit record first…"
        ))],
        Some(Answer::Denied(reason)) => vec![Line::from(Span::styled(
            format!("✖ {reason}"),
            theme.severity_error,
        ))],
        Some(Answer::Granted {
            grant,
            revealed_until,
        }) => {
            let token = grant.access_token.expose();
            // Borrowed, not copied: no copy of the token is left behind by a frame.
            let (shown, hint): (std::borrow::Cow<str>, String) = match revealed_until {
                Some(until) => (
                    token.into(),
                    format!(
                        "  (hides in {}; v hides now)",
                        crate::clock::short_duration(until - now)
                    ),
                ),
                None => (
                    masked(token).into(),
                    "  (v reveals for 30 s; c forgets it)".to_owned(),
                ),
            };
            vec![
                Line::from(vec![
                    Span::styled("✔ granted and audited: ", theme.severity_warn),
                    Span::styled(
                        shown,
                        theme.base.add_modifier(ratatui::style::Modifier::BOLD),
                    ),
                    Span::styled(hint, theme.muted),
                ]),
                Line::from(Span::styled(
                    format!(
                        "{} uses left; the entry expires {}. {}",
                        grant.uses_left,
                        rfc3339(grant.expires_at),
                        grant.warning
                    ),
                    theme.muted,
                )),
            ]
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(titled_block(" Access ", theme.border, theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn render_audit(frame: &mut Frame, area: Rect, app: &App, view: &BreakglassView, theme: &Theme) {
    let outer = titled_block(" Audit trail (newest first) ", theme.border, theme);
    if let Some(error) = &view.audit_error {
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!("Not readable here: {error} (the auditor's Redis user reads it: BREAKGLASS_AUDIT_REDIS_URL)"),
                theme.muted,
            ))
            .block(outer)
            .wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    let now = app.now();
    let rows: Vec<Row> = view
        .audit
        .iter()
        .map(|record| {
            let granted = matches!(record.outcome, crate::breakglass::audit::Outcome::Granted);
            Row::new(vec![
                Cell::from(format!(
                    "{} ago",
                    crate::clock::short_duration(now - record.at)
                ))
                .style(theme.muted),
                Cell::from(if granted { "granted" } else { "denied" }).style(if granted {
                    theme.severity_warn
                } else {
                    theme.severity_error
                }),
                Cell::from(format!("{} ({})", record.admin_id, record.role)),
                Cell::from(record.connection_id.clone()),
                Cell::from(record.reason.clone()),
                Cell::from(record.justification.clone()).style(theme.muted),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(24),
            Constraint::Length(18),
            Constraint::Length(30),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new([
            "when",
            "outcome",
            "who",
            "connection",
            "reason",
            "justification",
        ])
        .style(theme.header),
    )
    .block(outer)
    .column_spacing(1);
    frame.render_widget(table, area);
}
