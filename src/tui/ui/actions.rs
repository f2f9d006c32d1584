//! The actions on a deployment: the menu, the confirmation and the waiting box (drawn over any
//! screen), and the activity panel: the latest of every recent action, wherever it was taken.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::titled_block;
use crate::actions::{ActionKind, ActionRecord, Outcome};
use crate::clock::short_duration;
use crate::tui::screens::actions::{ActionsPanel, Step};
use crate::tui::theme::Theme;

/// The most actions the panel shows.
pub const PANEL_ROWS: usize = 4;

/// The box of the action being taken, over whatever is on screen.
pub fn render_popup(frame: &mut Frame, area: Rect, panel: &ActionsPanel, theme: &Theme) {
    let (title, lines): (&str, Vec<Line>) = match &panel.step {
        Step::Closed => return,
        Step::Menu {
            deployment,
            choices,
            selected,
        } => {
            let mut lines = vec![Line::from(Span::styled(shown(deployment), theme.muted))];
            lines.extend(choices.iter().enumerate().map(|(i, choice)| {
                let style = if i == *selected {
                    theme.selection
                } else {
                    theme.help_text
                };
                Line::from(vec![
                    Span::styled(format!(" {} ", choice.key), theme.help_key),
                    Span::styled(format!(" {} ", choice.label), style),
                ])
            }));
            lines.push(Line::from(Span::styled(
                "Enter or the key chooses; Esc closes",
                theme.muted,
            )));
            (" Act on this deployment ", lines)
        }
        Step::Looking { what } => (
            " Looking it up ",
            vec![Line::from(format!("{what}: checking the deployment..."))],
        ),
        Step::Asking(plan) => (
            " Confirm ",
            vec![
                Line::from(format!("{}?", shown(&plan.summary()))),
                Line::from(""),
                Line::from(vec![
                    Span::styled(" y ", theme.help_key),
                    Span::raw(" send   "),
                    Span::styled(" n ", theme.help_key),
                    Span::raw(" do not send"),
                ]),
            ],
        ),
        Step::Typing { plan, typed } => (
            " Confirm: this changes production ",
            vec![
                Line::from(format!("{}.", shown(&plan.summary()))),
                Line::from(""),
                Line::from(match typed {
                    None => format!("Type the project's name ({}) below.", shown(&plan.project)),
                    Some(_) => "Say why below (optional); it is audited.".to_owned(),
                }),
            ],
        ),
        Step::Sending(plan) => (
            " Sending ",
            vec![Line::from(format!(
                "{}: audited, sent, waiting for Vercel...",
                shown(&plan.summary())
            ))],
        ),
    };
    let width = area.width.saturating_sub(4).min(72);
    // Long lines wrap: the box grows with them.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let size = (width, rows as u16 + 2);
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    super::popup(frame, area, size, title, paragraph, theme);
}

/// Text from the API or the trail, as the screen may show it: one line, no escapes.
fn shown(text: &str) -> String {
    crate::printable::one_line(text).into_owned()
}

/// How many lines the activity panel takes (none without actions).
pub fn panel_height(panel: &ActionsPanel) -> u16 {
    let shown = panel
        .view
        .as_ref()
        .map_or(0, |v| v.actions.len().min(PANEL_ROWS));
    match shown {
        0 => 0,
        n => n as u16 + 2,
    }
}

/// The latest actions, newest first: when, who, what, how it went.
pub fn render_panel(frame: &mut Frame, area: Rect, panel: &ActionsPanel, now: i64, theme: &Theme) {
    let Some(view) = &panel.view else {
        return;
    };
    let lines: Vec<Line> = view
        .actions
        .iter()
        .take(PANEL_ROWS)
        .map(|record| activity_line(record, now, theme))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(titled_block(" Activity ", theme.border, theme)),
        area,
    );
}

fn activity_line<'a>(record: &'a ActionRecord, now: i64, theme: &Theme) -> Line<'a> {
    let (mark, style): (&str, Style) = match record.outcome {
        Outcome::Succeeded | Outcome::AlreadyDone => ("✓", theme.state_ready),
        Outcome::Failed => ("✗", theme.state_error),
        Outcome::Refused | Outcome::Declined => ("–", theme.muted),
        Outcome::Requested | Outcome::Confirmed | Outcome::Resent => ("…", theme.state_building),
        Outcome::Unknown => ("?", theme.severity_warn),
    };
    let what = match record.action {
        ActionKind::Rollback => format!("rollback {} to {}", record.project, record.deployment),
        ActionKind::Promote => format!("promote {} in {}", record.deployment, record.project),
        kind => format!(
            "{} {} ({})",
            kind.as_str(),
            record.deployment,
            record.project
        ),
    };
    let age = short_duration((now - record.at).max(0));
    // How it went comes first: a narrow panel cuts the end of the line.
    Line::from(vec![
        Span::styled(format!("{mark} {:<9} ", record.outcome.as_str()), style),
        Span::styled(format!("{age:>5} "), theme.muted),
        Span::styled(format!("{} ", shown(&record.user)), theme.help_key),
        Span::raw(shown(&what)),
    ])
}
