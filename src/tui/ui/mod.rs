//! Pure render functions: `(App, Theme) -> frame`. One module per part of the screen.

mod actions;
mod alerts;
mod breakglass;
mod deployments;
mod help;
mod log;
mod queue;
mod runtime_chart;
mod status;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

use super::app::{App, Screen};
use super::screens::deployments::DeploymentsScreen;
use super::theme::Theme;

/// Below this width the deployments list sits above the log instead of beside it.
const SIDE_BY_SIDE_MIN_WIDTH: u16 = 120;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(ratatui::widgets::Block::new().style(theme.base), area);
    let [main, status] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    match app.screen {
        Screen::Deployments => {
            let (list, activity, log) = split_main(main, app);
            // Beside the log the list has room for a second line per deployment.
            let two_lines = side_by_side(main);
            deployments::render(frame, list, &app.deployments, app.now(), theme, two_lines);
            actions::render_panel(frame, activity, &app.actions, app.now(), theme);
            let (chart, log) = runtime_chart::split(log, &app.deployments);
            if let Some(chart) = chart {
                runtime_chart::render(frame, chart, &app.deployments, theme);
            }
            log::render(frame, log, &app.deployments, theme);
        }
        Screen::Alerts => alerts::render(frame, main, &app.alerts, app.now(), theme),
        Screen::Queue => queue::render(frame, main, app, theme),
        Screen::Breakglass => breakglass::render(frame, main, app, theme),
    }
    status::render(frame, status, app, theme);
    actions::render_popup(frame, main, &app.actions, theme);
    if app.help {
        help::render(frame, area, app.screen, theme);
    }
}

/// The height (lines) of the build log's text on a screen of `area`: the log pane, less its
/// borders and the status bar.
pub fn log_height(area: Rect, app: &App) -> u16 {
    let [main, _status] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let (_list, _activity, log) = split_main(main, app);
    let (_chart, log) = runtime_chart::split(log, &app.deployments);
    log.height.saturating_sub(2)
}

fn side_by_side(main: Rect) -> bool {
    main.width >= SIDE_BY_SIDE_MIN_WIDTH
}

/// The deployments list, the activity panel (empty without actions) and the log.
fn split_main(area: Rect, app: &App) -> (Rect, Rect, Rect) {
    let screen: &DeploymentsScreen = &app.deployments;
    let activity = actions::panel_height(&app.actions);
    if side_by_side(area) {
        // Two fifths of a wide terminal for the list and its git details, at least 56 columns.
        let list_width = (area.width * 2 / 5).max(56);
        let [left, log] =
            Layout::horizontal([Constraint::Length(list_width), Constraint::Min(20)]).areas(area);
        let [list, activity] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(activity)]).areas(left);
        (list, activity, log)
    } else {
        // Borders and header, then up to six deployments, never more than a third of the screen.
        let rows = (screen.snapshot.deployments.len().max(1) as u16 + 3)
            .min(9)
            .min(area.height / 3 + 3);
        let [list, activity, log] = Layout::vertical([
            Constraint::Length(rows),
            Constraint::Length(activity.min(area.height / 4)),
            Constraint::Min(3),
        ])
        .areas(area);
        (list, activity, log)
    }
}

/// A pane's frame; the focused pane's border stands out.
pub(crate) fn pane<'a>(focused: bool, title: impl Into<Line<'a>>, theme: &Theme) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(if focused {
            theme.border_focused
        } else {
            theme.border
        })
        .title(title)
}

/// A box of `width` x `height` in the middle of `area` (no larger than it), cleared, with
/// `lines` in it under `title`: what pops up over a screen.
pub(crate) fn popup<'a>(
    frame: &mut Frame,
    area: Rect,
    (width, height): (u16, u16),
    title: &'a str,
    paragraph: ratatui::widgets::Paragraph<'a>,
    theme: &Theme,
) {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(ratatui::layout::Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(ratatui::layout::Flex::Center)
        .areas(row);
    frame.render_widget(ratatui::widgets::Clear, popup);
    frame.render_widget(
        paragraph.block(titled_block(title, theme.border_focused, theme).style(theme.base)),
        popup,
    );
}

/// A bordered box with its title in the theme's title style.
pub(crate) fn titled_block<'a>(
    title: impl Into<std::borrow::Cow<'a, str>>,
    border: Style,
    theme: &Theme,
) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(title, theme.title))
}
