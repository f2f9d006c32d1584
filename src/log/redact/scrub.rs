//! Scrubbing whole entries before any sink sees them: every string that may have come from the
//! network is redacted and made safe for a terminal, and a private key that a build prints a
//! line per event (as Vercel sends it) is hidden from its BEGIN line to its END line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Redactor, Shown, REDACTED};
use crate::log::entry::LogEntry;
use crate::printable;

/// How many lines after a BEGIN line are hidden when no END line comes: a 4096-bit RSA key in
/// PEM is about 50 lines.
pub const MAX_KEY_LINES: u32 = 200;

/// How many ids known to hold no secret are remembered. Ids are shared (`Arc`) by every entry
/// of a deployment, so one check serves them all.
const KNOWN_CLEAN: usize = 64;

/// How many clean words are remembered, and how long one may be.
const CLEAN_WORDS: usize = 8;
const CLEAN_WORD_BYTES: usize = 32;

#[derive(Default)]
struct State {
    /// Streams (by deployment id) inside a private key block, with the lines left to hide.
    key_blocks: HashMap<Arc<str>, u32>,
    /// Ids already checked and found clean; compared by pointer, and held so the pointer
    /// cannot be reused.
    known_clean: Vec<Arc<str>>,
    /// Short words already checked and found clean (`stdout`, `stderr`, `error`): every entry
    /// carries one or two, so they are compared rather than scanned.
    clean_words: Vec<String>,
}

/// Redacts and cleans entries; shared by every writer of a logger.
pub struct Scrubber {
    redactor: &'static Redactor,
    state: Mutex<State>,
}

impl Scrubber {
    pub fn new(redactor: &'static Redactor) -> Self {
        Scrubber {
            redactor,
            state: Mutex::new(State::default()),
        }
    }

    /// Scrubs `entries`, in order (a key block spans entries).
    pub fn scrub(&self, entries: Vec<LogEntry>) -> Vec<Arc<LogEntry>> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .into_iter()
            .map(|entry| Arc::new(self.entry(&mut state, entry)))
            .collect()
    }

    fn entry(&self, state: &mut State, mut entry: LogEntry) -> LogEntry {
        if let Some(message) = self.message(state, entry.deployment_id.as_ref(), &entry.message) {
            entry.message = message;
        }
        let meta = &mut entry.metadata;
        // A build event's type is its event (`stdout`) again: clean once, clean twice.
        let type_is_event = meta.vercel_type.as_deref() == Some(entry.event.as_str());
        let event_clean = match self.word(state, &entry.event) {
            Some(clean) => {
                entry.event = clean;
                false
            }
            None => true,
        };
        let vercel_type = meta
            .vercel_type
            .as_mut()
            .filter(|_| !(type_is_event && event_clean));
        for text in [vercel_type, meta.level.as_mut()].into_iter().flatten() {
            if let Some(clean) = self.word(state, text) {
                *text = clean;
            }
        }
        // Ids differ entry by entry: scanned, not remembered.
        if let Some(id) = meta.vercel_event_id.as_mut() {
            if let Some(clean) = self.field(id) {
                *id = clean;
            }
        }
        for id in [
            &mut entry.deployment_id,
            &mut entry.build_id,
            &mut entry.project_id,
            &mut entry.user_id,
            &mut entry.correlation_id,
            &mut meta.vercel_deployment_id,
            &mut meta.project,
        ]
        .into_iter()
        .flatten()
        {
            self.shared_field(state, id);
        }
        for value in meta.extra.values_mut() {
            self.redactor.redact_value(value);
        }
        entry
    }

    /// A line of output: redacted, colors kept, nothing else that drives a terminal; `None`
    /// when it is fine as it is.
    fn message(&self, state: &mut State, stream: Option<&Arc<str>>, text: &str) -> Option<String> {
        let redactor = self.redactor;
        // Looked at once: for a key block and for secrets.
        let plain = printable::for_matching(text);
        if let Some(stream) = stream {
            if let Some(lines_left) = state.key_blocks.get_mut(stream) {
                return match redactor.key_block_end(&plain) {
                    Some(end) => {
                        state.key_blocks.remove(stream);
                        // `plain` holds nothing that drives a terminal.
                        Some(format!("{REDACTED}{}", redactor.redact(&plain[end..])))
                    }
                    None => {
                        *lines_left -= 1;
                        if *lines_left == 0 {
                            state.key_blocks.remove(stream);
                        }
                        Some(REDACTED.to_owned())
                    }
                };
            }
            if redactor.opens_key_block(&plain) {
                state.key_blocks.insert(Arc::clone(stream), MAX_KEY_LINES);
            }
        }
        redactor.redact_shown_seen(text, plain, Shown::Text { keep_color: true })
    }

    /// A name, a type, an id: redacted and shown on one line; `None` when fine as it is.
    fn field(&self, text: &str) -> Option<String> {
        // Digits alone (Vercel's event ids) hold no rule's keyword and nothing to clean: every
        // build line has one, so they are not scanned.
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.redactor.redact_shown(text, Shown::OneLine)
    }

    /// [`Scrubber::field`] for a short word, remembered once found clean.
    fn word(&self, state: &mut State, text: &str) -> Option<String> {
        if state.clean_words.iter().any(|word| word == text) {
            return None;
        }
        let clean = self.field(text);
        if clean.is_none() && text.len() <= CLEAN_WORD_BYTES {
            if state.clean_words.len() == CLEAN_WORDS {
                state.clean_words.remove(0);
            }
            state.clean_words.push(text.to_owned());
        }
        clean
    }

    fn shared_field(&self, state: &mut State, id: &mut Arc<str>) {
        if state.known_clean.iter().any(|known| Arc::ptr_eq(known, id)) {
            return;
        }
        match self.field(id) {
            Some(clean) => *id = clean.into(),
            None => {
                if state.known_clean.len() == KNOWN_CLEAN {
                    state.known_clean.remove(0);
                }
                state.known_clean.push(Arc::clone(id));
            }
        }
    }
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Severity, Tier};

    fn line(deployment: &Arc<str>, text: &str) -> LogEntry {
        LogEntry::new(Tier::Build, Severity::Info, "stdout", text)
            .with_deployment(Arc::clone(deployment))
    }

    fn messages(scrubber: &Scrubber, entries: Vec<LogEntry>) -> Vec<String> {
        scrubber
            .scrub(entries)
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }

    #[test]
    fn event_type_and_ids_are_redacted_each_even_when_they_repeat() {
        let scrubber = Scrubber::new(super::super::global());
        let token = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
        let mut entry = LogEntry::new(Tier::Build, Severity::Info, token, "line");
        entry.metadata.vercel_type = Some(token.to_owned());
        entry.metadata.vercel_event_id = Some("1796410544463953195540000000".to_owned());
        let out = &scrubber.scrub(vec![entry])[0];
        assert!(!out.event.contains("aBcDeF") && out.event.contains(REDACTED));
        assert_eq!(
            out.metadata.vercel_type.as_deref(),
            Some(out.event.as_str())
        );
        assert_eq!(
            out.metadata.vercel_event_id.as_deref(),
            Some("1796410544463953195540000000")
        );
        let mut entry = LogEntry::new(Tier::Build, Severity::Info, "stdout", "line");
        entry.metadata.vercel_type = Some(format!("stdout {token}"));
        let out = &scrubber.scrub(vec![entry])[0];
        assert_eq!(out.event, "stdout");
        assert!(!out
            .metadata
            .vercel_type
            .as_deref()
            .unwrap_or_default()
            .contains("aBcDeF"));
    }

    #[test]
    fn a_key_printed_line_by_line_is_hidden_in_its_stream_only() {
        let scrubber = Scrubber::new(super::super::global());
        let (a, b): (Arc<str>, Arc<str>) = ("dpl_a".into(), "dpl_b".into());
        let out = messages(
            &scrubber,
            vec![
                line(&a, "cat key.pem"),
                line(&a, "\u{1b}[2m-----BEGIN OPENSSH PRIVATE KEY-----"),
                line(&b, "other build, ordinary line"),
                line(
                    &a,
                    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
                ),
                line(
                    &a,
                    "QyNTUxOQAAACDcTQ1c2Sl4QbDQm8YpBxgjB0ruPZo3FHKXtF5T0vhzygAAAJhRbUk7UW1J",
                ),
            ],
        );
        assert_eq!(out[0], "cat key.pem");
        assert_eq!(out[1], REDACTED);
        assert_eq!(out[2], "other build, ordinary line");
        assert_eq!(&out[3..], [REDACTED, REDACTED]);
        // A later batch is still inside the block, up to its END line and no further.
        let out = messages(
            &scrubber,
            vec![
                line(&a, "AAAEC0n5RKlsD8Nm"),
                line(&a, "-----END OPENSSH PRIVATE KEY----- done"),
                line(&a, "Build Completed in /vercel/output [58s]"),
            ],
        );
        assert_eq!(
            out,
            [
                REDACTED,
                "[REDACTED] done",
                "Build Completed in /vercel/output [58s]"
            ]
        );
    }

    #[test]
    fn a_block_without_an_end_is_hidden_for_a_bounded_number_of_lines() {
        let scrubber = Scrubber::new(super::super::global());
        let a: Arc<str> = "dpl_a".into();
        let mut batch = vec![line(&a, "-----BEGIN PRIVATE KEY-----")];
        batch.extend((0..MAX_KEY_LINES + 1).map(|n| line(&a, &format!("line {n}"))));
        let out = messages(&scrubber, batch);
        assert!(out[..=MAX_KEY_LINES as usize].iter().all(|m| m == REDACTED));
        assert_eq!(
            out.last().map(String::as_str),
            Some(format!("line {MAX_KEY_LINES}").as_str())
        );
    }

    #[test]
    fn every_field_is_redacted_and_cleaned() {
        let scrubber = Scrubber::new(super::super::global());
        let mut entry = LogEntry::new(
            Tier::Build,
            Severity::Info,
            "stdout\u{1b}]52;c;cm0gLXJmIH4=\u{7}",
            "\u{1b}[32mok\u{1b}[39m \u{1b}[2Jdone \u{202e}txt.exe",
        )
        .with_deployment("dpl_\u{1b}[2Jx")
        .with_build("token=abc123")
        .with_project(Some("prj\nname".into()));
        entry.metadata.project = Some("acme\u{1b}[31m".into());
        entry.metadata.vercel_type = Some("AKIA\u{7}LALEMEL33243OLIB".to_owned());
        let entry = scrubber.scrub(vec![entry]).remove(0);
        assert_eq!(entry.event, "stdout");
        assert_eq!(entry.message, "\u{1b}[32mok\u{1b}[39m done \u{fffd}txt.exe");
        assert_eq!(entry.deployment_id.as_deref(), Some("dpl_x"));
        assert_eq!(entry.build_id.as_deref(), Some("token=[REDACTED]"));
        assert_eq!(entry.project_id.as_deref(), Some("prj name"));
        assert_eq!(entry.metadata.project.as_deref(), Some("acme"));
        assert_eq!(entry.metadata.vercel_type.as_deref(), Some(REDACTED));
    }

    #[test]
    fn a_shared_id_is_checked_once() {
        let scrubber = Scrubber::new(super::super::global());
        let a: Arc<str> = "dpl_a".into();
        let out = scrubber.scrub(vec![line(&a, "x"), line(&a, "y")]);
        for entry in &out {
            assert!(entry
                .deployment_id
                .as_ref()
                .is_some_and(|id| Arc::ptr_eq(id, &a)));
        }
        let state = scrubber.state.lock().expect("lock");
        assert_eq!(
            state
                .known_clean
                .iter()
                .filter(|k| Arc::ptr_eq(k, &a))
                .count(),
            1
        );
    }
}
