//! The runtime chart, above the runtime log: the shown deployment's responses and 5xx a
//! minute, as shiplog counted them from the rows it followed.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{RenderDirection, Sparkline};
use ratatui::Frame;

use crate::tui::screens::deployments::DeploymentsScreen;
use crate::tui::theme::Theme;

/// Borders, two rows of responses, two of 5xx.
const CHART_HEIGHT: u16 = 6;

/// The chart's place (when the runtime log is shown and there is room) and the log's.
pub fn split(area: Rect, screen: &DeploymentsScreen) -> (Option<Rect>, Rect) {
    if !screen.runtime.shown || area.height < CHART_HEIGHT + 5 {
        return (None, area);
    }
    let [chart, log] =
        Layout::vertical([Constraint::Length(CHART_HEIGHT), Constraint::Min(5)]).areas(area);
    (Some(chart), log)
}

pub fn render(frame: &mut Frame, area: Rect, screen: &DeploymentsScreen, theme: &Theme) {
    let selected = screen.selected.as_deref().unwrap_or_default();
    let width = area.width.saturating_sub(2) as usize;
    // The minutes counted within the last `width` up to the newest, gaps between them as zero.
    let mut shown: Vec<(i64, u64, u64)> = Vec::with_capacity(width);
    if let Some(log) = screen.runtime.get(selected) {
        let newest = log.minutes.minutes().last().map_or(0, |m| m.start_ms);
        let oldest = newest - (width.saturating_sub(1) as i64) * 60_000;
        for minute in log.minutes.minutes().filter(|m| m.start_ms >= oldest) {
            if let Some(&(last, _, _)) = shown.last() {
                shown.extend(
                    (1..(minute.start_ms - last) / 60_000).map(|i| (last + i * 60_000, 0, 0)),
                );
            }
            shown.push((minute.start_ms, minute.responses, minute.errors));
        }
    }
    let production = screen
        .summary(selected)
        .is_some_and(|d| screen.serves_production(d));
    let mut title = vec![Span::styled(" Responses a minute ", theme.title)];
    if let Some(&(_, responses, errors)) = shown.last() {
        let rate = if responses == 0 {
            0.0
        } else {
            errors as f64 * 100.0 / responses as f64
        };
        title.push(Span::raw(format!("{responses} in the last minute, ")));
        title.push(Span::styled(
            format!("5xx {errors} ({rate:.1}%) "),
            if errors > 0 {
                theme.severity_error
            } else {
                theme.muted
            },
        ));
    } else {
        title.push(Span::styled("none yet ", theme.muted));
    }
    if production {
        title.push(Span::styled("★ production ", theme.health_live));
    }
    let block = super::pane(false, Line::from(title), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [responses, errors] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(2)]).areas(inner);
    // Newest first, drawn from the right edge: the last minute is always at the right.
    let responses_data: Vec<u64> = shown.iter().rev().map(|m| m.1).collect();
    let errors_data: Vec<u64> = shown.iter().rev().map(|m| m.2).collect();
    let most = responses_data.iter().copied().max().unwrap_or(1).max(1);
    for (data, area, style) in [
        (&responses_data, responses, theme.log_stdout),
        (&errors_data, errors, theme.severity_error),
    ] {
        frame.render_widget(
            Sparkline::default()
                .data(data)
                .max(most)
                .direction(RenderDirection::RightToLeft)
                .style(style),
            area,
        );
    }
}
