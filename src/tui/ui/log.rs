//! The log pane: the selected deployment's build or runtime lines, following the end or
//! scrolled, with optional wrapping, timestamps, filter and search highlights.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use crate::log::Severity;
use crate::tui::buffer::{LogLine, Stream};
use crate::tui::screens::deployments::{DeploymentsScreen, Pane, Scroll};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, screen: &DeploymentsScreen, theme: &Theme) {
    let block = super::pane(screen.focus == Pane::Log, title(screen, theme), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height as usize;
    let width = inner.width as usize;
    if height == 0 || width == 0 {
        return;
    }
    let len = screen.view_len();
    if len == 0 {
        let hint = match (screen.selected.is_some(), screen.filter.is_some()) {
            (false, _) => "No deployment yet: waiting for the first one…",
            (true, true) => "No line matches the filter (f to change it).",
            (true, false) if screen.runtime.shown => {
                "Waiting for runtime logs… (o narrows them, r goes back to the build log)"
            }
            (true, false) => "Waiting for build output…",
        };
        frame.render_widget(Paragraph::new(Span::styled(hint, theme.muted)), inner);
        return;
    }
    let rows = match screen.top_index() {
        // Following: the last lines, filling the pane from the bottom.
        None => {
            // Whole lines back from the last until the pane is full, then put in order.
            let mut lines = Vec::new();
            let mut count = 0;
            for index in (0..len).rev() {
                let Some(line) = screen.view_line(index) else {
                    break;
                };
                let wrapped = line_rows(line, screen, theme, width);
                count += wrapped.len();
                lines.push(wrapped);
                if count >= height {
                    break;
                }
            }
            let mut rows: Vec<Line> = lines.into_iter().rev().flatten().collect();
            let extra = rows.len().saturating_sub(height);
            rows.split_off(extra)
        }
        Some(top) => {
            let mut rows: Vec<Line> = Vec::with_capacity(height);
            for index in top..len {
                let Some(line) = screen.view_line(index) else {
                    break;
                };
                rows.extend(line_rows(line, screen, theme, width));
                if rows.len() >= height {
                    break;
                }
            }
            rows.truncate(height);
            rows
        }
    };
    frame.render_widget(Paragraph::new(rows), inner);
}

fn title<'a>(screen: &'a DeploymentsScreen, theme: &Theme) -> Line<'a> {
    let name = if screen.runtime.shown {
        " Runtime log "
    } else {
        " Build log "
    };
    let mut spans = vec![Span::styled(name, theme.title)];
    if let Some(row) = screen
        .selected_index()
        .and_then(|i| screen.snapshot.deployments.get(i))
    {
        spans.push(Span::raw(format!(
            "{} {} ",
            row.name.as_deref().unwrap_or(""),
            row.uid
        )));
    }
    let mode = match screen.scroll {
        Scroll::Follow => Span::styled("[follow] ", theme.health_live),
        Scroll::At(_) => Span::styled("[paused: G/End to follow] ", theme.status_warning),
    };
    spans.push(mode);
    if screen.wrap {
        spans.push(Span::styled("[wrap] ", theme.muted));
    }
    if let Some(filter) = &screen.filter {
        spans.push(Span::styled(
            format!("[filter {}] ", filter.source),
            theme.muted,
        ));
    }
    if let (true, Some((only, _))) = (screen.runtime.shown, &screen.runtime.only) {
        spans.push(Span::styled(format!("[only {only}] "), theme.muted));
    }
    if let Some(buffer) = screen.selected_buffer() {
        if buffer.dropped() > 0 {
            spans.push(Span::styled(
                format!("[{} older lines dropped] ", buffer.dropped()),
                theme.status_warning,
            ));
        }
    }
    Line::from(spans)
}

/// The screen rows of one log line: one row, or several when wrapping.
fn line_rows<'a>(
    line: &'a LogLine,
    screen: &DeploymentsScreen,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'a>> {
    let mut spans = Vec::with_capacity(4);
    if screen.timestamps {
        let clock = crate::log::entry::clock(line.ts);
        spans.push(Span::styled(format!("{clock} "), theme.log_timestamp));
    }
    let style = text_style(line, theme);
    match &screen.search {
        Some(search) => {
            let mut at = 0;
            for range in search.matches(&line.text) {
                if range.start > at {
                    spans.push(Span::styled(&line.text[at..range.start], style));
                }
                spans.push(Span::styled(&line.text[range.clone()], theme.search_match));
                at = range.end;
            }
            if at < line.text.len() {
                spans.push(Span::styled(&line.text[at..], style));
            }
        }
        None => spans.push(Span::styled(line.text.as_str(), style)),
    }
    if screen.wrap {
        wrap(spans, width)
    } else {
        vec![Line::from(spans)]
    }
}

fn text_style(line: &LogLine, theme: &Theme) -> Style {
    match (line.severity, line.stream) {
        (Severity::Critical, _) => theme.severity_critical,
        (Severity::Error, _) => theme.severity_error,
        (_, Stream::System) => theme.log_system,
        (_, Stream::Command) => theme.log_command,
        (_, Stream::Stderr) => theme.log_stderr,
        (Severity::Warn, _) => theme.severity_warn,
        _ => theme.log_stdout,
    }
}

/// Hard-wraps styled spans at `width` columns (wide characters count double).
fn wrap(spans: Vec<Span<'_>>, width: usize) -> Vec<Line<'_>> {
    let mut rows = vec![Vec::new()];
    let mut used = 0;
    for span in spans {
        let mut start = 0;
        for (at, c) in span.content.char_indices() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                if let Some(row) = rows.last_mut().filter(|_| at > start) {
                    row.push(Span::styled(span.content[start..at].to_owned(), span.style));
                }
                rows.push(Vec::new());
                start = at;
                used = 0;
            }
            used += w;
        }
        if start < span.content.len() {
            let rest = span.content[start..].to_owned();
            if let Some(row) = rows.last_mut() {
                row.push(Span::styled(rest, span.style));
            }
        }
    }
    rows.into_iter().map(Line::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_styles_and_counts_wide_characters() {
        let bold = Style::new().bold();
        let rows = wrap(vec![Span::raw("abcdef"), Span::styled("▲✓漢字x", bold)], 4);
        let text: Vec<String> = rows.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["abcd", "ef▲✓", "漢字", "x"]);
        assert_eq!(rows[1].spans[1].style, bold);
    }
}
