//! The status bar: demo or live, where state lives, streams, lag, warnings; or the open input.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::app::{App, Source};
use crate::tui::input::{Input, InputKind};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    match &app.input {
        Some(input) => render_input(frame, area, input, theme),
        None => render_status(frame, area, app, theme),
    }
}

/// The open input box: what it is for, the text, and a bad pattern's error.
fn render_input(frame: &mut Frame, area: Rect, input: &Input, theme: &Theme) {
    let label = match input.kind {
        InputKind::Filter => " filter (!pattern hides): ",
        InputKind::Only => " only (status=5xx level=warning path=^/api source=serverless): ",
        InputKind::Search => " search: ",
        InputKind::AckNote => " acknowledge; note (optional): ",
        InputKind::Justification => " BREAKGLASS justification (why, 20+ characters): ",
        InputKind::Confirmation => " BREAKGLASS: type the connection id to confirm: ",
        InputKind::ProjectName => " type the project's name to confirm: ",
        InputKind::Reason => " reason (optional, audited): ",
        InputKind::SilenceMatchers => " silence alerts matching: ",
        InputKind::SilenceFor => " silence for: ",
        InputKind::SilenceComment => " silence, because (required): ",
    };
    let [label_area, text_area, error_area] = Layout::horizontal([
        Constraint::Length(label.chars().count() as u16),
        Constraint::Min(10),
        // As much of the error as fits in half the line.
        Constraint::Length(input.error.as_ref().map_or(0, |error| {
            (error.chars().count() as u16 + 4).min(area.width / 2)
        })),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Span::styled(label, theme.status_bar)),
        label_area,
    );
    let mut text = input.text.clone();
    text.set_style(if input.error.is_some() {
        theme.input_invalid
    } else {
        theme.input_text
    });
    text.set_cursor_line_style(ratatui::style::Style::default());
    text.set_placeholder_text(match input.kind {
        InputKind::Filter | InputKind::Search => "a regular expression; Enter applies, Esc cancels",
        InputKind::AckNote => "Enter acknowledges, Esc cancels",
        InputKind::Justification => "what broke and why the token is needed; it is audited",
        InputKind::Confirmation => "Enter sends the request, Esc cancels",
        InputKind::ProjectName => "as shown above; Enter goes on, Esc cancels",
        InputKind::Reason => "Enter sends the action, Esc cancels",
        InputKind::Only => "empty shows every row; Enter applies, Esc cancels",
        InputKind::SilenceMatchers => "name=value, name!=value, name=~regex, name!~regex",
        InputKind::SilenceFor => "90m, 2h, 1d",
        InputKind::SilenceComment => "shown with every alert it mutes; Enter adds it",
    });
    text.set_placeholder_style(theme.input_placeholder);
    frame.render_widget(&text, text_area);
    if let Some(error) = &input.error {
        let message = format!(" ✖ {error}");
        frame.render_widget(
            Paragraph::new(Span::styled(message, theme.input_invalid)),
            error_area,
        );
    }
}

/// Demo or team, where state lives, streams, firing alerts, the queue, lag; and on the right a
/// notice, the latest warning, or the key hints.
fn render_status(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let left = left_spans(app, theme);
    let right = right_span(app, theme);
    let left_width: u16 = left.iter().map(|s| s.width() as u16).sum();
    let right_width = (right.width() as u16).min(area.width.saturating_sub(left_width));
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(
        Paragraph::new(Line::from(left)).style(theme.status_bar),
        left_area,
    );
    frame.render_widget(
        Paragraph::new(Line::from(right)).style(theme.status_bar),
        right_area,
    );
}

fn left_spans<'a>(app: &'a App, theme: &Theme) -> Vec<Span<'a>> {
    let deployments = &app.deployments;
    let mut left = match &app.source {
        Source::Demo => vec![Span::styled(" DEMO ", theme.banner_demo)],
        Source::Team(team) => vec![Span::styled(
            format!(" {} ", team.as_deref().unwrap_or("personal account")),
            theme.status_bar,
        )],
    };
    left.push(Span::styled(
        format!(" {} | {} live", app.backend, deployments.streams_live()),
        theme.status_bar,
    ));
    let (firing, muted) = app
        .alerts
        .records
        .iter()
        .filter(|a| matches!(a.state, crate::alert::book::AlertState::Firing))
        .fold((0, 0), |(firing, muted), a| match a.muted {
            Some(_) => (firing, muted + 1),
            None => (firing + 1, muted),
        });
    if firing + muted > 0 {
        let muted = match muted {
            0 => String::new(),
            n => format!(", {n} muted"),
        };
        left.push(Span::styled(
            format!(" | {firing} firing{muted} (2) "),
            theme.status_warning,
        ));
    }
    let queue = &app.queue;
    if queue.degraded {
        left.push(Span::styled(
            " | alert queue: Redis unreachable (3) ",
            theme.status_warning,
        ));
    } else if queue.counts.depth() > 0 || queue.counts.dead_lettered > 0 {
        let mut text = format!(" | queue {}", queue.counts.depth());
        if queue.counts.dead_lettered > 0 {
            text.push_str(&format!(", {} dead", queue.counts.dead_lettered));
        }
        left.push(Span::styled(text + " (3) ", theme.status_bar));
    }
    if let Some(lag) = deployments.lag_ms {
        left.push(Span::styled(format!(" | lag {lag} ms "), theme.status_bar));
    }
    left
}

fn right_span<'a>(app: &'a App, theme: &Theme) -> Span<'a> {
    let list_error = app.deployments.snapshot.list_error.as_ref();
    if let Some(notice) = &app.notice {
        // A notice can quote the API or a file: shown on one line, without escapes.
        let notice = crate::printable::one_line(notice);
        Span::styled(format!(" {notice} "), theme.status_bar)
    } else if let Some(warning) = list_error.or(app.warnings.last()) {
        Span::styled(format!(" ▲ {warning} "), theme.status_warning)
    } else if app.source == Source::Demo {
        Span::styled(
            " ? help  q quit | demo: set VERCEL_TOKEN to watch your team ",
            theme.status_bar,
        )
    } else {
        Span::styled(" ? help  q quit ", theme.status_bar)
    }
}
