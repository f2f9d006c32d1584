//! Colour themes: semantic style slots loaded from TOML files.
//!
//! Four themes are built in (embedded from `themes/*.toml`): `dark` (the default), `light`,
//! `high-contrast` and `mono`. A user theme is a TOML file in which every key is optional; it is
//! laid over `dark`, or over the built-in named by `[meta] parent`. Render code never picks
//! colours itself: it asks the [`Theme`] for a semantic slot such as `state_error` or
//! `log_timestamp`.
//!
//! ```toml
//! [meta]
//! name = "my-theme"        # optional; defaults to the file's stem
//! parent = "light"         # optional; a built-in name; defaults to "dark"
//!
//! [palette]                # optional named colours; styles may refer to them as "$name"
//! red = "#ff5555"
//!
//! [styles]                 # slot = { fg, bg, underline_color, add_modifier, sub_modifier }
//! state_error = { fg = "$red", add_modifier = "BOLD | REVERSED" }
//!
//! [symbols]
//! ready = "✔"
//! ```
//!
//! Colours are what ratatui's `Color` parses: ANSI names (`"red"`, `"dark-gray"`,
//! `"light-blue"`, `"reset"`; `-`, `_` and spaces are ignored, "bright" means "light", "grey" means
//! "gray"), `"#rrggbb"`, or an xterm-256 index such as `"208"`. Modifiers are ratatui `Modifier`
//! names joined by `|`: `BOLD`, `DIM`, `ITALIC`, `UNDERLINED`, `SLOW_BLINK`, `RAPID_BLINK`,
//! `REVERSED`, `HIDDEN`, `CROSSED_OUT` (case does not matter). A slot given in a file replaces
//! that slot's whole style; slots the file leaves out keep the parent's style.
//!
//! Nothing here fails hard: [`Theme::load`] always returns a usable theme, plus warnings (naming
//! the file, line and key) for the status bar.

use std::io::Read;
use std::path::Path;
use std::sync::LazyLock;

use ratatui::style::Style;

use file::{parse, Ground};

mod file;

/// Semantic style slots. Every slot is a ratatui `Style`.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// The theme's name (`[meta] name`, else the file's stem).
    pub name: String,
    // chrome
    /// Whole-screen base style; everything else is patched over it.
    pub base: Style,
    /// Secondary text (ages, counts, hints).
    pub muted: Style,
    /// Borders of unfocused panes.
    pub border: Style,
    /// Border of the focused pane.
    pub border_focused: Style,
    /// Pane titles.
    pub title: Style,
    /// The selected row (patched over the row's own style).
    pub selection: Style,
    /// Table headers.
    pub header: Style,
    /// The status bar.
    pub status_bar: Style,
    /// A warning shown in the status bar (e.g. a broken theme file).
    pub status_warning: Style,
    /// The "demo mode" banner.
    pub banner_demo: Style,
    /// Keys in the help overlay and key hints.
    pub help_key: Style,
    /// Descriptions in the help overlay and key hints.
    pub help_text: Style,
    // deployment states (QUEUED INITIALIZING BUILDING READY ERROR CANCELED)
    /// Deployment state QUEUED.
    pub state_queued: Style,
    /// Deployment state INITIALIZING.
    pub state_initializing: Style,
    /// Deployment state BUILDING.
    pub state_building: Style,
    /// Deployment state READY.
    pub state_ready: Style,
    /// Deployment state ERROR.
    pub state_error: Style,
    /// Deployment state CANCELED.
    pub state_canceled: Style,
    // stream health
    /// The event/log stream is connected.
    pub health_live: Style,
    /// The stream dropped and is being re-established.
    pub health_reconnecting: Style,
    /// The stream is up but data may be missing or stale.
    pub health_degraded: Style,
    // log lines: streams and severities
    /// Timestamps in front of log lines.
    pub log_timestamp: Style,
    /// A build's stdout line.
    pub log_stdout: Style,
    /// A build's stderr line.
    pub log_stderr: Style,
    /// A command line echoed by the build ("Running \"npm run build\"").
    pub log_command: Style,
    /// A line written by shiplog itself (reconnects, gaps).
    pub log_system: Style,
    /// A log line detected as a warning (patched over the stream style).
    pub severity_warn: Style,
    /// A log line detected as an error.
    pub severity_error: Style,
    /// A log line detected as critical / fatal.
    pub severity_critical: Style,
    /// Every search match.
    pub search_match: Style,
    /// The search match the cursor is on.
    pub search_current: Style,
    // inputs (filter/search box)
    /// Text typed into the filter/search box.
    pub input_text: Style,
    /// The filter/search box when its content is invalid (e.g. a bad regex).
    pub input_invalid: Style,
    /// The placeholder in an empty filter/search box.
    pub input_placeholder: Style,
    // symbols: non-colour cues so meaning survives NO_COLOR / mono
    /// Per-state symbols, so colour is never the only signal.
    pub symbols: Symbols,
}

/// Non-colour cues for deployment states and stream health; every one is distinct in the
/// built-in themes.
#[derive(Debug, Clone, PartialEq)]
pub struct Symbols {
    pub queued: String,
    pub initializing: String,
    pub building: String,
    pub ready: String,
    pub error: String,
    pub canceled: String,
    pub live: String,
    pub reconnecting: String,
    pub degraded: String,
}

/// A problem with a theme file, shown in the status bar: names the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ThemeWarning(pub String);

/// Declares the style slots once; generates name lookups and a compile-time check that the list
/// matches the struct's fields.
macro_rules! style_slots {
    ($($slot:ident),* $(,)?) => {
        /// Every style slot's name, in declaration order (the keys of `[styles]`).
        const STYLE_SLOTS: &[&str] = &[$(stringify!($slot)),*];

        impl Theme {
            fn style_slot_mut(&mut self, name: &str) -> Option<&mut Style> {
                match name {
                    $(stringify!($slot) => Some(&mut self.$slot),)*
                    _ => None,
                }
            }

            /// `(slot name, style)` for every slot, in declaration order.
            #[cfg_attr(not(test), allow(dead_code))]
            fn style_slots(&self) -> Vec<(&'static str, Style)> {
                // Fails to compile when a field is added to `Theme` but not to this list.
                let Theme { name: _, symbols: _, $($slot: _),* } = self;
                vec![$((stringify!($slot), self.$slot)),*]
            }

            /// A theme with every slot empty (no colour, no modifier); the ground `dark` is
            /// laid on.
            fn blank(name: &str) -> Theme {
                Theme {
                    name: name.to_string(),
                    symbols: Symbols::fallback(),
                    $($slot: Style::new(),)*
                }
            }
        }
    };
}

style_slots!(
    base,
    muted,
    border,
    border_focused,
    title,
    selection,
    header,
    status_bar,
    status_warning,
    banner_demo,
    help_key,
    help_text,
    state_queued,
    state_initializing,
    state_building,
    state_ready,
    state_error,
    state_canceled,
    health_live,
    health_reconnecting,
    health_degraded,
    log_timestamp,
    log_stdout,
    log_stderr,
    log_command,
    log_system,
    severity_warn,
    severity_error,
    severity_critical,
    search_match,
    search_current,
    input_text,
    input_invalid,
    input_placeholder,
);

macro_rules! symbol_slots {
    ($($sym:ident),* $(,)?) => {
        /// Every symbol's name (the keys of `[symbols]`).
        const SYMBOL_SLOTS: &[&str] = &[$(stringify!($sym)),*];

        impl Symbols {
            fn slot_mut(&mut self, name: &str) -> Option<&mut String> {
                match name {
                    $(stringify!($sym) => Some(&mut self.$sym),)*
                    _ => None,
                }
            }

            /// `(name, symbol)` for every symbol, in declaration order.
            #[cfg_attr(not(test), allow(dead_code))]
            fn slots(&self) -> Vec<(&'static str, &str)> {
                let Symbols { $($sym: _),* } = self;
                vec![$((stringify!($sym), self.$sym.as_str())),*]
            }
        }
    };
}

symbol_slots!(
    queued,
    initializing,
    building,
    ready,
    error,
    canceled,
    live,
    reconnecting,
    degraded
);

impl Symbols {
    /// Used only under `dark.toml`, which sets every symbol itself.
    fn fallback() -> Symbols {
        let s = |x: &str| x.to_string();
        Symbols {
            queued: s("◷"),
            initializing: s("◌"),
            building: s("◐"),
            ready: s("✔"),
            error: s("✖"),
            canceled: s("⊘"),
            live: s("●"),
            reconnecting: s("↻"),
            degraded: s("▲"),
        }
    }
}

impl Default for Symbols {
    /// The default (`dark`) theme's symbols.
    fn default() -> Self {
        Theme::default_theme().symbols
    }
}

impl Default for Theme {
    /// The default theme, `dark`.
    fn default() -> Self {
        Theme::default_theme()
    }
}

/// Longest theme file `load` reads (protects against `--theme /dev/zero` and the like).
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Longest symbol, in characters (symbols are meant to be one terminal cell).
const MAX_SYMBOL_CHARS: usize = 4;

const DARK_TOML: &str = include_str!("../../../themes/dark.toml");
const LIGHT_TOML: &str = include_str!("../../../themes/light.toml");
const HIGH_CONTRAST_TOML: &str = include_str!("../../../themes/high-contrast.toml");
const MONO_TOML: &str = include_str!("../../../themes/mono.toml");

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "dark" => Some(DARK_TOML),
        "light" => Some(LIGHT_TOML),
        "high-contrast" => Some(HIGH_CONTRAST_TOML),
        "mono" => Some(MONO_TOML),
        _ => None,
    }
}

fn builtin_origin(name: &str) -> String {
    format!("themes/{name}.toml (built-in)")
}

/// Parses a built-in. `dark` is laid on a blank theme, the others on `dark`; built-ins may not
/// name a parent (so they cannot form cycles). The tests guarantee these parse; should one not,
/// the blank theme keeps the program running.
fn parse_builtin(name: &str, ground: Theme) -> Theme {
    let text = builtin_text(name).unwrap_or_default();
    parse(text, &builtin_origin(name), Ground::Fixed(Box::new(ground)))
        .unwrap_or_else(|_| Theme::blank(name))
}

static DARK: LazyLock<Theme> = LazyLock::new(|| parse_builtin("dark", Theme::blank("dark")));
static LIGHT: LazyLock<Theme> = LazyLock::new(|| parse_builtin("light", DARK.clone()));
static HIGH_CONTRAST: LazyLock<Theme> =
    LazyLock::new(|| parse_builtin("high-contrast", DARK.clone()));
static MONO: LazyLock<Theme> = LazyLock::new(|| parse_builtin("mono", DARK.clone()));

impl Theme {
    /// Names of the built-in themes; the first is the default.
    pub const BUILTIN: [&'static str; 4] = ["dark", "light", "high-contrast", "mono"];

    /// A built-in theme by name: `"dark"`, `"light"`, `"high-contrast"` or `"mono"`.
    pub fn builtin(name: &str) -> Option<Theme> {
        match name {
            "dark" => Some(DARK.clone()),
            "light" => Some(LIGHT.clone()),
            "high-contrast" => Some(HIGH_CONTRAST.clone()),
            "mono" => Some(MONO.clone()),
            _ => None,
        }
    }

    /// The default theme, `dark`.
    pub fn default_theme() -> Theme {
        DARK.clone()
    }

    /// Picks the theme: `choice` is a built-in name or a path to a .toml file; a file named
    /// `<name>.toml` in `user_dir` (e.g. $XDG_CONFIG_HOME/shiplog/themes) shadows a built-in;
    /// `no_color` (NO_COLOR set) forces `mono` whatever the choice. Never fails: on any problem
    /// it returns the default theme plus a warning.
    ///
    /// A choice containing a path separator or ending in `.toml` is a path (relative to the
    /// working directory); anything else is a name. `None` or an empty choice means `dark`
    /// (which a `dark.toml` in `user_dir` also shadows). A user file in `user_dir` may also have
    /// a name that is not a built-in. Under `no_color` the built-in `mono` is used even if
    /// `user_dir` holds a `mono.toml` (which could contain colours), and no warning is given.
    pub fn load(
        choice: Option<&str>,
        user_dir: Option<&Path>,
        no_color: bool,
    ) -> (Theme, Vec<ThemeWarning>) {
        if no_color {
            return (MONO.clone(), Vec::new());
        }
        let choice = choice.map(str::trim).filter(|c| !c.is_empty());
        let choice = choice.unwrap_or(Self::BUILTIN[0]);
        let result = if looks_like_path(choice) {
            load_file(Path::new(choice))
        } else if let Some(path) = user_dir
            .map(|dir| dir.join(format!("{choice}.toml")))
            .filter(|p| p.is_file())
        {
            load_file(&path)
        } else if let Some(theme) = Theme::builtin(choice) {
            Ok(theme)
        } else {
            let searched = match user_dir {
                Some(dir) => format!(", no {}", dir.join(format!("{choice}.toml")).display()),
                None => String::new(),
            };
            Err(ThemeWarning(format!(
                "unknown theme \"{choice}\" (built-ins: {}{searched})",
                Self::BUILTIN.join(", ")
            )))
        };
        match result {
            Ok(theme) => (theme, Vec::new()),
            Err(warning) => (
                Theme::default_theme(),
                vec![ThemeWarning(format!(
                    "{warning}; using the {} theme",
                    Self::BUILTIN[0]
                ))],
            ),
        }
    }

    /// Parses a theme file's text overlaid on the default theme (every key optional). Errors name
    /// `origin` (the file path or builtin name), the line and the key.
    ///
    /// `[meta] parent = "<built-in>"` lays the file over that built-in instead of `dark`.
    pub fn from_toml(text: &str, origin: &str) -> Result<Theme, ThemeWarning> {
        parse(text, origin, Ground::Parent)
    }
}

fn looks_like_path(choice: &str) -> bool {
    choice.ends_with(".toml") || choice.chars().any(std::path::is_separator)
}

fn load_file(path: &Path) -> Result<Theme, ThemeWarning> {
    let origin = path.display().to_string();
    let text = read_capped(path).map_err(|e| ThemeWarning(format!("theme file {origin}: {e}")))?;
    Theme::from_toml(&text, &origin)
}

/// Why a theme file could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("cannot open it: {0}")]
    Open(std::io::Error),
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("larger than {} KiB", MAX_FILE_BYTES / 1024)]
    TooLarge,
    #[error("not UTF-8 text")]
    NotText,
}

fn read_capped(path: &Path) -> Result<String, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Open)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::{Color, Modifier};
    use std::collections::BTreeSet;

    fn write(dir: &Path, file: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `load` on a file with `text`: returns the theme, the single warning and the file's path.
    fn load_broken(text: &str) -> (Theme, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "broken.toml", text);
        let path = path.display().to_string();
        let (theme, warnings) = Theme::load(Some(&path), None, false);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        (theme, warnings[0].to_string(), path)
    }

    fn assert_broken(text: &str, line: usize, needles: &[&str]) {
        let (theme, warning, path) = load_broken(text);
        assert_eq!(theme, Theme::default_theme(), "falls back to dark");
        assert!(
            warning.starts_with(&format!("theme file {path}, line {line}: ")),
            "{warning}"
        );
        for needle in needles {
            assert!(warning.contains(needle), "{needle:?} not in {warning}");
        }
        assert!(warning.ends_with("; using the dark theme"), "{warning}");
        // from_toml gives the same sentence without the fallback note.
        let direct = Theme::from_toml(text, &path).unwrap_err().to_string();
        assert!(warning.starts_with(&direct), "{direct} / {warning}");
    }

    fn all_builtins() -> Vec<Theme> {
        Theme::BUILTIN
            .iter()
            .map(|n| Theme::builtin(n).unwrap())
            .collect()
    }

    // --- built-in themes ---------------------------------------------------------------------

    #[test]
    fn every_builtin_file_parses_without_warning() {
        for name in Theme::BUILTIN {
            let text = builtin_text(name).unwrap();
            let ground = if name == "dark" {
                Theme::blank("dark")
            } else {
                Theme::default_theme()
            };
            let theme = parse(text, &builtin_origin(name), Ground::Fixed(Box::new(ground)))
                .unwrap_or_else(|w| panic!("{name}: {w}"));
            assert_eq!(theme.name, name);
            assert_eq!(Theme::builtin(name), Some(theme.clone()));
            // The same file loaded as a user file gives the same theme.
            assert_eq!(
                Theme::from_toml(text, &format!("/x/{name}.toml")),
                Ok(theme)
            );
        }
        assert_eq!(Theme::builtin("nope"), None);
        assert_eq!(Theme::default_theme(), Theme::builtin("dark").unwrap());
        assert_eq!(Theme::default(), Theme::default_theme());
        assert_eq!(Symbols::default(), Theme::default_theme().symbols);
    }

    #[test]
    fn every_builtin_file_sets_every_slot_and_symbol_itself() {
        // So no built-in silently inherits a dark colour (and dark does not rely on `blank`).
        for name in Theme::BUILTIN {
            let table: toml::Table = toml::from_str(builtin_text(name).unwrap()).unwrap();
            let keys = |section: &str| -> BTreeSet<String> {
                table[section].as_table().unwrap().keys().cloned().collect()
            };
            let want = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
            assert_eq!(keys("styles"), want(STYLE_SLOTS), "{name} [styles]");
            assert_eq!(keys("symbols"), want(SYMBOL_SLOTS), "{name} [symbols]");
            assert!(table["meta"].get("parent").is_none());
        }
    }

    #[test]
    fn builtins_differ_from_each_other() {
        let themes = all_builtins();
        for (i, a) in themes.iter().enumerate() {
            for b in &themes[i + 1..] {
                let b_renamed = Theme {
                    name: a.name.clone(),
                    ..b.clone()
                };
                assert_ne!(a, &b_renamed, "{} and {} are the same", a.name, b.name);
                let differing = a
                    .style_slots()
                    .iter()
                    .zip(b.style_slots())
                    .filter(|(x, y)| x.1 != y.1)
                    .count();
                assert!(differing >= 10, "{} vs {}: {differing}", a.name, b.name);
            }
        }
    }

    #[test]
    fn every_state_has_a_distinct_symbol_in_every_theme() {
        for theme in all_builtins() {
            let symbols = theme.symbols.slots();
            assert_eq!(symbols.len(), SYMBOL_SLOTS.len());
            let distinct: BTreeSet<&str> = symbols.iter().map(|(_, s)| *s).collect();
            assert_eq!(distinct.len(), symbols.len(), "{}: {symbols:?}", theme.name);
            for (name, s) in symbols {
                // One character each, so a column of them lines up.
                assert_eq!(s.chars().count(), 1, "{}: {name}", theme.name);
                assert!(!s.trim().is_empty(), "{}: {name}", theme.name);
            }
        }
    }

    #[test]
    fn mono_has_no_colour_and_only_plain_modifiers() {
        let allowed = Modifier::BOLD | Modifier::REVERSED | Modifier::UNDERLINED | Modifier::DIM;
        let mono = Theme::builtin("mono").unwrap();
        for (slot, style) in mono.style_slots() {
            assert_eq!(style.fg, None, "{slot}");
            assert_eq!(style.bg, None, "{slot}");
            assert_eq!(style.underline_color, None, "{slot}");
            assert!(allowed.contains(style.add_modifier), "{slot}: {style:?}");
            assert!(style.sub_modifier.is_empty(), "{slot}");
        }
        assert!(mono.selection.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn high_contrast_is_bold_bright_and_reverses_the_selection() {
        let hc = Theme::builtin("high-contrast").unwrap();
        assert!(hc.selection.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(hc.base.bg, Some(Color::Black), "forces its background");
        for (slot, style) in hc.style_slots() {
            assert!(
                !style
                    .add_modifier
                    .intersects(Modifier::DIM | Modifier::ITALIC),
                "{slot}"
            );
            assert_ne!(style.fg, Some(Color::DarkGray), "{slot}");
            if slot.starts_with("state_") || slot.starts_with("health_") {
                assert!(style.add_modifier.contains(Modifier::BOLD), "{slot}");
            }
        }
    }

    /// sRGB of a fixed colour; `None` for the 16 ANSI colours, whose value the terminal picks.
    fn rgb(colour: Color) -> Option<(u8, u8, u8)> {
        match colour {
            Color::Black => None,
            Color::Rgb(r, g, b) => Some((r, g, b)),
            Color::Indexed(i @ 16..=231) => {
                let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
                let i = i - 16;
                Some((level(i / 36), level(i / 6 % 6), level(i % 6)))
            }
            Color::Indexed(i @ 232..=255) => {
                let v = 8 + 10 * (i - 232);
                Some((v, v, v))
            }
            _ => None,
        }
    }

    fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    #[test]
    fn light_text_is_readable_on_white() {
        const WHITE: (u8, u8, u8) = (255, 255, 255);
        const BLACK: (u8, u8, u8) = (0, 0, 0);
        let light = Theme::builtin("light").unwrap();
        for (slot, style) in light.style_slots() {
            // Only fixed colours (or black), never the palette-dependent ANSI ones such as
            // white or yellow.
            let fixed = |c: Option<Color>| match c {
                None | Some(Color::Reset) => None,
                Some(Color::Black) => Some(BLACK),
                Some(c) => Some(rgb(c).unwrap_or_else(|| panic!("{slot}: {c:?} is not fixed"))),
            };
            let (fg, bg) = (fixed(style.fg), fixed(style.bg));
            let Some(fg) = fg else { continue };
            // REVERSED swaps: the fg colour becomes the background of the terminal's (light) fg.
            let ratio = contrast(fg, bg.unwrap_or(WHITE));
            let min = if slot.starts_with("border") { 3.0 } else { 4.5 };
            assert!(ratio >= min, "{slot}: contrast {ratio:.2} < {min}");
        }
    }

    #[test]
    fn dark_fixed_greys_are_readable_on_black() {
        let dark = Theme::default_theme();
        for (slot, style) in dark.style_slots() {
            if let (Some(fg), None) = (style.fg.and_then(rgb), style.bg) {
                let ratio = contrast(fg, (0, 0, 0));
                let min = if slot.starts_with("border") { 2.5 } else { 4.5 };
                assert!(ratio >= min, "{slot}: contrast {ratio:.2}");
            }
        }
    }

    #[test]
    fn dark_styles_are_what_the_file_says() {
        let dark = Theme::default_theme();
        assert_eq!(dark.state_error, Style::new().red().bold());
        assert_eq!(dark.muted, Style::new().fg(Color::Indexed(245)));
        assert_eq!(
            dark.search_current,
            Style::new().black().on_light_cyan().bold().underlined()
        );
        assert_eq!(dark.base, Style::new());
        assert_eq!(dark.symbols.ready, "✔");
    }

    // --- user files ----------------------------------------------------------------------------

    #[test]
    fn a_partial_file_only_changes_what_it_sets() {
        let text = r##"
[palette]
hot = "#ff5555"

[styles]
state_error = { fg = "$hot", add_modifier = "bold | Reversed" }
muted = { fg = "dark-gray" }

[symbols]
ready = "OK"
"##;
        let theme = Theme::from_toml(text, "/home/me/.config/shiplog/themes/mine.toml").unwrap();
        let mut want = Theme::default_theme();
        want.name = "mine".into();
        want.state_error = Style::new()
            .fg(Color::Rgb(0xff, 0x55, 0x55))
            .add_modifier(Modifier::BOLD | Modifier::REVERSED);
        want.muted = Style::new().dark_gray();
        want.symbols.ready = "OK".into();
        assert_eq!(theme, want);
    }

    #[test]
    fn a_byte_order_mark_is_ignored_and_lines_still_count() {
        let theme = Theme::from_toml("\u{feff}[styles]\nbase = { fg = \"red\" }\n", "b.toml");
        assert_eq!(theme.unwrap().base, Style::new().red());
        let err = Theme::from_toml("\u{feff}[styles]\n\nbase = { fg = \"$x\" }\n", "b.toml");
        assert!(err
            .unwrap_err()
            .0
            .starts_with("theme file b.toml, line 3: styles.base.fg"));
    }

    #[test]
    fn an_empty_file_is_dark_under_its_own_name() {
        let theme = Theme::from_toml("", "/x/empty.toml").unwrap();
        assert_eq!(
            theme,
            Theme {
                name: "empty".into(),
                ..Theme::default_theme()
            }
        );
        let named = Theme::from_toml("[meta]\nname = \"Mine\"\n", "/x/y.toml").unwrap();
        assert_eq!(named.name, "Mine");
        let spaced = Theme::from_toml("", "/x/my theme.toml").unwrap();
        assert_eq!(spaced.name, "my theme");
        assert!(Theme::from_toml("[meta]\nname = \" \"\n", "/x/y.toml").is_err());
    }

    #[test]
    fn ratatui_style_format_is_accepted() {
        let text = r##"[styles]
base = { fg = "reset", bg = "bright-black", underline_color = "208", add_modifier = "BOLD|DIM", sub_modifier = "ITALIC" }
muted = { add_modifier = "" }
"##;
        let theme = Theme::from_toml(text, "t.toml").unwrap();
        let want: Style = toml::from_str::<toml::Table>(
            "fg = \"reset\"\nbg = \"bright-black\"\nunderline_color = \"208\"\nadd_modifier = \"BOLD | DIM\"\nsub_modifier = \"ITALIC\"",
        )
        .unwrap()
        .try_into()
        .unwrap();
        assert_eq!(
            theme.base, want,
            "same as ratatui's own Style deserialisation"
        );
        assert_eq!(theme.muted, Style::new());
    }

    #[test]
    fn parent_lays_the_file_over_another_builtin() {
        let text = "[meta]\nparent = \"light\"\n[styles]\nstate_ready = { fg = \"blue\" }\n";
        let theme = Theme::from_toml(text, "/x/light.toml").unwrap();
        let mut want = Theme::builtin("light").unwrap();
        want.state_ready = Style::new().blue();
        assert_eq!(theme, want);

        let err = Theme::from_toml("[meta]\nparent = \"solarized\"\n", "/x/p.toml").unwrap_err();
        assert!(
            err.0
                .starts_with("theme file /x/p.toml, line 2: meta.parent: \"solarized\""),
            "{err}"
        );
    }

    // --- warnings ------------------------------------------------------------------------------

    #[test]
    fn unknown_style_slot_names_file_line_and_key() {
        let text = "[meta]\nname = \"x\"\n\n[styles]\nstate_ready = { fg = \"green\" }\n\
                    # comment\nstat_error = { fg = \"red\" }\n";
        assert_broken(
            text,
            7,
            &[
                "unknown style slot \"stat_error\"",
                "did you mean \"state_error\"",
            ],
        );
    }

    #[test]
    fn unknown_keys_elsewhere_are_refused_too() {
        assert_broken("[colours]\nred = \"red\"\n", 1, &["colours"]);
        assert_broken(
            "[meta]\nname = \"x\"\nauthor = \"me\"\n",
            3,
            &["meta.author", "author"],
        );
        assert_broken(
            "[styles]\nbase = { fgg = \"red\" }\n",
            2,
            &["styles.base", "fgg"],
        );
        assert_broken(
            "[styles]\nbase = {}\n[symbols]\nredy = \"+\"\n",
            4,
            &["unknown symbol \"redy\"", "did you mean \"ready\""],
        );
        assert_broken(
            "[styles]\nerror = {}\n",
            2,
            &["did you mean \"state_error\" or \"severity_error\"?"],
        );
    }

    #[test]
    fn bad_colour_names_file_line_and_key() {
        assert_broken(
            "[styles]\nbase = {}\nstate_error = { fg = \"redish\" }\n",
            3,
            &["styles.state_error.fg", "bad colour \"redish\""],
        );
        assert_broken(
            "[palette]\nok = \"green\"\nbad = \"#12345\"\n",
            3,
            &["palette.bad", "\"#12345\""],
        );
        assert_broken(
            "[styles]\n\n\nbase = { bg = 12 }\n",
            4,
            &["styles.base.bg: invalid type"],
        );
    }

    #[test]
    fn bad_palette_reference_names_file_line_and_key() {
        let text = "[palette]\nred = \"#ff5555\"\n\n[styles]\nmuted = { fg = \"$red\" }\n\
                    state_error = { fg = \"$redd\", add_modifier = \"BOLD\" }\n";
        assert_broken(
            text,
            6,
            &[
                "styles.state_error.fg",
                "unknown palette colour \"$redd\"",
                "red",
            ],
        );
        assert_broken(
            "[palette]\na = \"red\"\nb = \"$a\"\n",
            3,
            &["palette.b", "cannot refer"],
        );
    }

    #[test]
    fn broken_toml_names_file_and_line() {
        assert_broken("[styles]\nbase = {}\nmuted = { fg = \"red\"\n", 3, &[]);
        assert_broken(
            "[styles]\nbase = {}\nbase = {}\n",
            3,
            &["styles.base: duplicate key"],
        );
        assert_broken("[styles]\nbase = \"red\"\n", 2, &["style table"]);
    }

    #[test]
    fn bad_modifier_and_bad_symbol_are_refused() {
        assert_broken(
            "[styles]\nbase = { add_modifier = \"BOLD | BLOD\" }\n",
            2,
            &["styles.base.add_modifier", "\"BLOD\"", "REVERSED"],
        );
        assert_broken("[symbols]\nready = \"\"\n", 2, &["symbols.ready"]);
        assert_broken(
            "[symbols]\nready = \"\\u001b[31m\"\n",
            2,
            &["symbols.ready"],
        );
        assert_broken("[symbols]\nready = \"READY!\"\n", 2, &["symbols.ready"]);
    }

    // --- load ----------------------------------------------------------------------------------

    #[test]
    fn load_defaults_to_dark() {
        assert_eq!(
            Theme::load(None, None, false),
            (Theme::default_theme(), vec![])
        );
        assert_eq!(
            Theme::load(Some(" "), None, false),
            (Theme::default_theme(), vec![])
        );
        for name in Theme::BUILTIN {
            let (theme, warnings) = Theme::load(Some(name), None, false);
            assert_eq!((theme.name.as_str(), warnings), (name, vec![]));
        }
    }

    #[test]
    fn no_color_forces_mono() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "mono.toml",
            "[styles]\nbase = { fg = \"red\" }\n",
        );
        let mono = Theme::builtin("mono").unwrap();
        for choice in [
            None,
            Some("light"),
            Some("high-contrast"),
            Some("/no/such.toml"),
            Some("nope"),
        ] {
            let loaded = Theme::load(choice, Some(dir.path()), true);
            assert_eq!(loaded, (mono.clone(), vec![]), "{choice:?}");
        }
    }

    #[test]
    fn a_user_file_shadows_a_builtin() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "light.toml",
            "[meta]\nparent = \"light\"\n[styles]\nstate_ready = { fg = \"blue\" }\n",
        );
        write(
            dir.path(),
            "dark.toml",
            "[styles]\nmuted = { fg = \"white\" }\n",
        );
        write(
            dir.path(),
            "solar.toml",
            "[styles]\nbase = { bg = \"#002b36\" }\n",
        );

        let (theme, warnings) = Theme::load(Some("light"), Some(dir.path()), false);
        assert_eq!(warnings, vec![]);
        let mut want = Theme::builtin("light").unwrap();
        want.state_ready = Style::new().blue();
        assert_eq!(theme, want);

        // The default choice is shadowed too.
        let (theme, warnings) = Theme::load(None, Some(dir.path()), false);
        assert_eq!((theme.muted, warnings), (Style::new().white(), vec![]));

        // A user theme need not shadow anything.
        let (theme, warnings) = Theme::load(Some("solar"), Some(dir.path()), false);
        assert_eq!((theme.name.as_str(), warnings), ("solar", vec![]));
        assert_eq!(theme.base, Style::new().bg(Color::Rgb(0, 0x2b, 0x36)));

        // Names without a user file still reach the built-ins.
        let (theme, warnings) = Theme::load(Some("mono"), Some(dir.path()), false);
        assert_eq!((theme, warnings), (Theme::builtin("mono").unwrap(), vec![]));
    }

    #[test]
    fn a_broken_user_file_falls_back_to_dark() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "light.toml", "[styles]\nbse = {}\n");
        let (theme, warnings) = Theme::load(Some("light"), Some(dir.path()), false);
        assert_eq!(theme, Theme::default_theme());
        assert_eq!(warnings.len(), 1);
        let want = format!(
            "theme file {}, line 2: unknown style slot \"bse\"",
            path.display()
        );
        assert!(warnings[0].0.starts_with(&want), "{}", warnings[0]);
    }

    #[test]
    fn a_path_choice_loads_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "pager.toml",
            "[meta]\nname = \"pager\"\n[styles]\nstate_error = { fg = \"black\", bg = \"red\" }\n",
        );
        let (theme, warnings) = Theme::load(Some(path.to_str().unwrap()), Some(dir.path()), false);
        assert_eq!(warnings, vec![]);
        assert_eq!(theme.name, "pager");
        assert_eq!(theme.state_error, Style::new().black().on_red());
    }

    #[test]
    fn a_missing_path_or_unknown_name_warns() {
        let (theme, warnings) = Theme::load(Some("/no/such/dir/theme.toml"), None, false);
        assert_eq!(theme, Theme::default_theme());
        assert_eq!(warnings.len(), 1);
        let w = &warnings[0].0;
        assert!(
            w.starts_with("theme file /no/such/dir/theme.toml: cannot open it"),
            "{w}"
        );
        assert!(w.ends_with("; using the dark theme"), "{w}");

        let dir = tempfile::tempdir().unwrap();
        let (theme, warnings) = Theme::load(Some("solarized"), Some(dir.path()), false);
        assert_eq!(theme, Theme::default_theme());
        assert_eq!(warnings.len(), 1);
        let w = &warnings[0].0;
        assert!(w.starts_with("unknown theme \"solarized\""), "{w}");
        assert!(
            w.contains("high-contrast") && w.contains("solarized.toml"),
            "{w}"
        );
    }

    #[test]
    fn oversized_or_binary_files_warn() {
        let dir = tempfile::tempdir().unwrap();
        let big = write(dir.path(), "big.toml", &"# padding\n".repeat(30_000));
        let (theme, warnings) = Theme::load(big.to_str(), None, false);
        assert_eq!(theme, Theme::default_theme());
        assert!(
            warnings[0].0.contains("larger than 256 KiB"),
            "{warnings:?}"
        );

        let bin = dir.path().join("bin.toml");
        std::fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
        let (_, warnings) = Theme::load(bin.to_str(), None, false);
        assert!(warnings[0].0.contains("not UTF-8"), "{warnings:?}");

        let (_, warnings) = Theme::load(dir.path().to_str(), None, false);
        assert_eq!(warnings.len(), 1, "a directory is not a theme file");
    }
}
