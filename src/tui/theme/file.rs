//! Reading a theme file: TOML laid over a ground theme, every problem named by file, line and
//! key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use toml::Spanned;

use super::{Theme, ThemeWarning, MAX_SYMBOL_CHARS, STYLE_SLOTS, SYMBOL_SLOTS};

/// What a file is laid on.
pub(super) enum Ground {
    /// A built-in: this theme; `[meta] parent` is refused.
    Fixed(Box<Theme>),
    /// A user file: `[meta] parent`, else the default theme.
    Parent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    meta: RawMeta,
    #[serde(default)]
    palette: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    styles: BTreeMap<Spanned<String>, RawStyle>,
    #[serde(default)]
    symbols: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Option<Spanned<String>>,
    parent: Option<Spanned<String>>,
}

/// A style as written: ratatui's `Style` serde format, with strings kept raw (and spanned) so
/// `$palette` references can be resolved and errors can give a line.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a style table such as { fg = \"red\", add_modifier = \"BOLD\" }"
)]
struct RawStyle {
    fg: Option<Spanned<String>>,
    bg: Option<Spanned<String>>,
    underline_color: Option<Spanned<String>>,
    add_modifier: Option<Spanned<String>>,
    sub_modifier: Option<Spanned<String>>,
}

/// Builds warnings that name the file and line.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn at(&self, offset: usize, msg: impl fmt::Display) -> ThemeWarning {
        ThemeWarning(format!(
            "theme file {}, line {}: {msg}",
            self.origin,
            self.line_of(offset)
        ))
    }

    fn toml_error(&self, e: &toml::de::Error) -> ThemeWarning {
        let msg = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => match self.key_at(span.start) {
                Some(key) => self.at(span.start, format_args!("{key}: {msg}")),
                None => self.at(span.start, msg),
            },
            None => ThemeWarning(format!("theme file {}: {msg}", self.origin)),
        }
    }

    /// Best-effort dotted key (`styles.base.bg`) of the text at `offset`, so errors the `toml`
    /// crate reports (which carry only a span) still name the key.
    fn key_at(&self, offset: usize) -> Option<String> {
        let text = self.text;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let line = text[line_start..line_end].trim();
        if line.starts_with('[') || line.starts_with('#') {
            return None;
        }
        let unquote = |k: &str| k.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        let key = unquote(line.split_once('=')?.0);
        let section = text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('[') && !l.starts_with("[["))
            .and_then(|l| l[1..].split(']').next())
            .map(unquote);
        // Inside an inline table: the field being parsed (`base = { bg = 12 }` -> `bg`).
        let before = &text[line_start..offset];
        let field = before
            .rfind(['{', ','])
            .and_then(|i| before[i + 1..].split_once('='))
            .map(|(k, _)| unquote(k))
            .filter(|k| !k.is_empty());
        let parts: Vec<String> = section.into_iter().chain([key]).chain(field).collect();
        Some(parts.join("."))
    }
}

pub(super) fn parse(text: &str, origin: &str, ground: Ground) -> Result<Theme, ThemeWarning> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let cx = Ctx { text, origin };
    let raw: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
    let mut theme = ground_theme(ground, &raw.meta, &cx)?;
    theme.name = theme_name(&raw.meta, origin, &cx)?;
    let palette = palette(&raw, &cx)?;
    apply_styles(&mut theme, &raw, &palette, &cx)?;
    apply_symbols(&mut theme, &raw, &cx)?;
    Ok(theme)
}

/// The theme the file is laid over: the fixed one, the `[meta] parent`, or the default.
fn ground_theme(ground: Ground, meta: &RawMeta, cx: &Ctx) -> Result<Theme, ThemeWarning> {
    match (ground, &meta.parent) {
        (Ground::Fixed(_), Some(parent)) => Err(cx.at(
            parent.span().start,
            "meta.parent: a built-in theme cannot have a parent",
        )),
        (Ground::Fixed(theme), None) => Ok(*theme),
        (Ground::Parent, Some(parent)) => Theme::builtin(parent.get_ref()).ok_or_else(|| {
            cx.at(
                parent.span().start,
                format_args!(
                    "meta.parent: \"{}\" is not a built-in theme ({})",
                    parent.get_ref(),
                    Theme::BUILTIN.join(", ")
                ),
            )
        }),
        (Ground::Parent, None) => Ok(Theme::default_theme()),
    }
}

/// `[meta] name`, else the file's stem.
fn theme_name(meta: &RawMeta, origin: &str, cx: &Ctx) -> Result<String, ThemeWarning> {
    match &meta.name {
        Some(name)
            if name.get_ref().trim().is_empty() || name.get_ref().chars().any(char::is_control) =>
        {
            Err(cx.at(
                name.span().start,
                "meta.name: must not be empty or hold control characters",
            ))
        }
        Some(name) => Ok(name.get_ref().trim().to_string()),
        None => Ok(Path::new(origin)
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(origin)
            .to_string()),
    }
}

/// `[palette]`: every entry must itself be a colour (not a reference).
fn palette<'r>(raw: &'r RawFile, cx: &Ctx) -> Result<BTreeMap<&'r str, Color>, ThemeWarning> {
    let mut palette: BTreeMap<&str, Color> = BTreeMap::new();
    for (key, value) in in_file_order(&raw.palette) {
        let what = format!("palette.{}", key.get_ref());
        if value.get_ref().starts_with('$') {
            return Err(cx.at(
                value.span().start,
                format_args!(
                    "{what}: a palette colour cannot refer to another (\"{}\")",
                    value.get_ref()
                ),
            ));
        }
        let colour = parse_colour(value, &what, &palette, cx)?;
        palette.insert(key.get_ref(), colour);
    }
    Ok(palette)
}

/// `[styles]`: each slot given replaces that slot's whole style.
fn apply_styles(
    theme: &mut Theme,
    raw: &RawFile,
    palette: &BTreeMap<&str, Color>,
    cx: &Ctx,
) -> Result<(), ThemeWarning> {
    let mut styles: Vec<(&Spanned<String>, &RawStyle)> = raw.styles.iter().collect();
    styles.sort_by_key(|(key, _)| key.span().start);
    for (key, raw_style) in styles {
        let name = key.get_ref().as_str();
        let Some(slot) = theme.style_slot_mut(name) else {
            return Err(cx.at(
                key.span().start,
                format_args!(
                    "unknown style slot \"{name}\"{}",
                    did_you_mean(name, STYLE_SLOTS)
                ),
            ));
        };
        *slot = build_style(name, raw_style, palette, cx)?;
    }
    Ok(())
}

/// `[symbols]`: each one to four visible characters.
fn apply_symbols(theme: &mut Theme, raw: &RawFile, cx: &Ctx) -> Result<(), ThemeWarning> {
    for (key, value) in in_file_order(&raw.symbols) {
        let name = key.get_ref().as_str();
        let Some(slot) = theme.symbols.slot_mut(name) else {
            return Err(cx.at(
                key.span().start,
                format_args!(
                    "unknown symbol \"{name}\"{}",
                    did_you_mean(name, SYMBOL_SLOTS)
                ),
            ));
        };
        let symbol = value.get_ref();
        let chars = symbol.chars().count();
        if symbol.trim().is_empty()
            || chars > MAX_SYMBOL_CHARS
            || symbol.chars().any(char::is_control)
        {
            return Err(cx.at(
                value.span().start,
                format_args!(
                    "symbols.{name}: {symbol:?} must be 1 to {MAX_SYMBOL_CHARS} visible \
                     characters, without control characters"
                ),
            ));
        }
        *slot = symbol.clone();
    }
    Ok(())
}

fn in_file_order<V>(
    map: &BTreeMap<Spanned<String>, Spanned<V>>,
) -> Vec<(&Spanned<String>, &Spanned<V>)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn build_style(
    slot: &str,
    raw: &RawStyle,
    palette: &BTreeMap<&str, Color>,
    cx: &Ctx<'_>,
) -> Result<Style, ThemeWarning> {
    let colour =
        |field: &Option<Spanned<String>>, key: &str| -> Result<Option<Color>, ThemeWarning> {
            field
                .as_ref()
                .map(|v| parse_colour(v, &format!("styles.{slot}.{key}"), palette, cx))
                .transpose()
        };
    let modifier = |field: &Option<Spanned<String>>, key: &str| -> Result<Modifier, ThemeWarning> {
        field.as_ref().map_or(Ok(Modifier::empty()), |v| {
            parse_modifier(v, &format!("styles.{slot}.{key}"), cx)
        })
    };
    let mut style = Style::new();
    style.fg = colour(&raw.fg, "fg")?;
    style.bg = colour(&raw.bg, "bg")?;
    style.underline_color = colour(&raw.underline_color, "underline_color")?;
    style.add_modifier = modifier(&raw.add_modifier, "add_modifier")?;
    style.sub_modifier = modifier(&raw.sub_modifier, "sub_modifier")?;
    Ok(style)
}

/// A colour or a `$palette` reference.
fn parse_colour(
    value: &Spanned<String>,
    what: &str,
    palette: &BTreeMap<&str, Color>,
    cx: &Ctx<'_>,
) -> Result<Color, ThemeWarning> {
    let text = value.get_ref().as_str();
    if let Some(name) = text.strip_prefix('$') {
        return palette.get(name).copied().ok_or_else(|| {
            let known = if palette.is_empty() {
                "the file has no [palette]".to_string()
            } else {
                let mut names: Vec<&str> = palette.keys().copied().take(8).collect();
                if palette.len() > names.len() {
                    names.push("…");
                }
                format!("[palette] has {}", names.join(", "))
            };
            cx.at(
                value.span().start,
                format_args!("{what}: unknown palette colour \"{text}\" ({known})"),
            )
        });
    }
    Color::from_str(text).map_err(|_| {
        cx.at(
            value.span().start,
            format_args!(
                "{what}: bad colour \"{text}\" (expected a name like \"red\" or \
                 \"dark-gray\", \"#rrggbb\", 0-255, or \"$name\" from [palette])"
            ),
        )
    })
}

/// `"BOLD | REVERSED"`; names are matched case-insensitively; `""` is no modifier.
fn parse_modifier(
    value: &Spanned<String>,
    what: &str,
    cx: &Ctx<'_>,
) -> Result<Modifier, ThemeWarning> {
    let mut modifier = Modifier::empty();
    for part in value
        .get_ref()
        .split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let flag = Modifier::from_name(&part.to_ascii_uppercase()).ok_or_else(|| {
            let names: Vec<&str> = Modifier::all().iter_names().map(|(n, _)| n).collect();
            cx.at(
                value.span().start,
                format_args!(
                    "{what}: unknown modifier \"{part}\" (use {} joined by |)",
                    names.join(", ")
                ),
            )
        })?;
        modifier |= flag;
    }
    Ok(modifier)
}

/// ` (did you mean "x"?)` when a known name is close to `name`.
fn did_you_mean(name: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .min()
        .filter(|(d, k)| *d <= 2.max(k.len() / 4));
    let suffix = known
        .iter()
        .filter(|k| k.ends_with(&format!("_{name}")))
        .collect::<Vec<_>>();
    let quoted: Vec<String> = match best {
        Some((_, k)) => vec![format!("\"{k}\"")],
        None => suffix.iter().map(|k| format!("\"{k}\"")).collect(),
    };
    if quoted.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", quoted.join(" or "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_only_suggests_close_names() {
        assert_eq!(
            did_you_mean("stat_error", STYLE_SLOTS),
            " (did you mean \"state_error\"?)"
        );
        assert_eq!(
            did_you_mean("ready", STYLE_SLOTS),
            " (did you mean \"state_ready\"?)"
        );
        assert_eq!(did_you_mean("wibble", STYLE_SLOTS), "");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
