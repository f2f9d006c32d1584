//! The help overlay: every key, by what it does.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::theme::Theme;

/// Key, what it does.
pub const KEYS: [(&str, &str); 18] = [
    ("↑ ↓  j k", "move in the list / scroll the log"),
    ("Tab", "switch between deployments and log"),
    ("Enter / Esc", "open the log / back to the list"),
    ("PgUp PgDn", "scroll a page"),
    ("g  Home", "top of the log"),
    ("G  End", "follow the end again"),
    ("f", "filter lines (regex; !regex hides)"),
    ("/", "search (regex)"),
    ("n  N", "next / previous match"),
    ("]  [", "next / previous error or warning"),
    ("w", "wrap long lines on/off"),
    ("t", "timestamps on/off"),
    ("s", "save the shown lines to a file"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
    ("", ""),
    ("", "Patterns are case-insensitive unless they"),
    ("", "contain an upper-case letter."),
];

pub fn render(frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = 60.min(area.width);
    let height = (KEYS.len() as u16 + 2).min(area.height);
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<12} "), theme.help_key),
                Span::styled(*what, theme.help_text),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(theme.border_focused)
                .title(Span::styled(" Keys ", theme.title))
                .style(theme.base),
        ),
        popup,
    );
}
