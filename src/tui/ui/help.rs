//! The help overlay: every key, by what it does.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::app::Screen;
use crate::tui::theme::Theme;

/// Key, what it does, on the deployments screen.
pub const DEPLOYMENT_KEYS: [(&str, &str); 22] = [
    ("1 2 3 4", "deployments / alerts / queue / breakglass"),
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
    ("r", "build log / runtime log (requests, functions)"),
    ("o", "runtime: only status=5xx level= path= source="),
    ("x", "act: cancel, redeploy, promote, roll back"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
    ("", ""),
    ("", "Patterns are case-insensitive unless they"),
    ("", "contain an upper-case letter."),
];

/// Key, what it does, on the alerts screen.
pub const ALERT_KEYS: [(&str, &str); 11] = [
    ("1 2 3 4", "deployments / alerts / queue / breakglass"),
    ("↑ ↓  j k", "choose an alert"),
    ("a", "acknowledge (with an optional note)"),
    ("r", "resolve"),
    ("s", "silence alerts like it (matchers filled in, editable)"),
    ("S", "the silences (e expires the chosen one)"),
    ("Enter", "the build log at the line that fired it"),
    ("x", "act on its deployment (cancel, roll back...)"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
    ("", "Acknowledged alerts stay quiet for 4 hours."),
];

/// Key, what it does, on the queue screen.
pub const QUEUE_KEYS: [(&str, &str); 7] = [
    ("1 2 3 4", "deployments / alerts / queue / breakglass"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
    ("", "Failed sends retry 3 times (2 s, 4 s), then go"),
    ("", "to the dead letters. A 429 pauses the channel"),
    ("", "for every instance until its Retry-After. A"),
    ("", "stalled job is taken over after 30 s."),
];

/// Key, what it does, on the breakglass screen.
pub const BREAKGLASS_KEYS: [(&str, &str); 9] = [
    ("1 2 3 4", "deployments / alerts / queue / breakglass"),
    ("↑ ↓  j k", "choose an entry"),
    ("Enter", "request access: justification, then confirm"),
    ("v", "reveal / hide a granted token (hides after 30 s)"),
    ("c", "forget the granted token"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
    ("", "Every request is audited before anything is shown."),
    ("", "Needs VERCEL_BREAKGLASS_ENABLED and an admin role."),
];

pub fn render(frame: &mut Frame, area: Rect, screen: Screen, theme: &Theme) {
    let keys: &[(&str, &str)] = match screen {
        Screen::Deployments => &DEPLOYMENT_KEYS,
        Screen::Alerts => &ALERT_KEYS,
        Screen::Queue => &QUEUE_KEYS,
        Screen::Breakglass => &BREAKGLASS_KEYS,
    };
    let lines: Vec<Line> = keys
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<12} "), theme.help_key),
                Span::styled(*what, theme.help_text),
            ])
        })
        .collect();
    let size = (60, keys.len() as u16 + 2);
    super::popup(frame, area, size, " Keys ", Paragraph::new(lines), theme);
}
