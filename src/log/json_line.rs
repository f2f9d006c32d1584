//! An entry as its `--json` line, written field by field: the keys as the constants they are,
//! and the ids a deployment's entries share (its stable id, build, project) escaped once and
//! copied after. Every `--json` line of a build goes through here; the output is byte for byte
//! what `serde_json` writes for the entry (a property test in `sinks.rs` holds it to that).

use std::sync::Arc;

use super::entry::{rfc3339_ms, LogEntry};

/// Shared ids remembered with their escaped text.
const REMEMBERED: usize = 16;

#[derive(Debug, Default)]
pub struct JsonLines {
    /// Ids seen lately (held, so the pointer cannot be reused) and their JSON strings.
    escaped: Vec<(Arc<str>, Vec<u8>)>,
}

impl JsonLines {
    /// Appends `entry` as JSON (no newline) to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, entry: &LogEntry) {
        out.extend_from_slice(b"{\"id\":\"");
        let mut id = [0u8; ulid::ULID_LEN];
        out.extend_from_slice(entry.id.array_to_str(&mut id).as_bytes());
        out.extend_from_slice(b"\",\"ts\":\"");
        rfc3339_ms::with_text(entry.ts, |text| out.extend_from_slice(text.as_bytes()));
        out.extend_from_slice(b"\",\"tier\":\"");
        out.extend_from_slice(entry.tier.as_str().as_bytes());
        out.extend_from_slice(b"\",\"severity\":\"");
        out.extend_from_slice(entry.severity.as_str().as_bytes());
        out.extend_from_slice(b"\",\"event\":");
        string(out, &entry.event);
        out.extend_from_slice(b",\"message\":");
        string(out, &entry.message);
        for (key, value) in [
            (&b",\"deployment_id\":"[..], &entry.deployment_id),
            (b",\"build_id\":", &entry.build_id),
            (b",\"project_id\":", &entry.project_id),
            (b",\"user_id\":", &entry.user_id),
            (b",\"correlation_id\":", &entry.correlation_id),
        ] {
            if let Some(value) = value {
                out.extend_from_slice(key);
                self.shared(out, value);
            }
        }
        out.extend_from_slice(b",\"metadata\":{");
        let meta = &entry.metadata;
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, name: &[u8]| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(name);
        };
        if let Some(id) = &meta.vercel_event_id {
            key(out, b"\"vercel_event_id\":");
            string(out, id);
        }
        if let Some(id) = &meta.vercel_deployment_id {
            key(out, b"\"vercel_deployment_id\":");
            self.shared(out, id);
        }
        if let Some(kind) = &meta.vercel_type {
            key(out, b"\"vercel_type\":");
            string(out, kind);
        }
        if let Some(created) = meta.created {
            key(out, b"\"created\":");
            // Writing to a Vec cannot fail.
            let _ = std::io::Write::write_fmt(out, format_args!("{created}"));
        }
        if let Some(level) = &meta.level {
            key(out, b"\"level\":");
            string(out, level);
        }
        if let Some(project) = &meta.project {
            key(out, b"\"project\":");
            self.shared(out, project);
        }
        if meta.replayed {
            key(out, b"\"replayed\":true");
        }
        for (name, value) in &meta.extra {
            key(out, b"");
            string(out, name);
            out.push(b':');
            json(out, value);
        }
        out.extend_from_slice(b"}}");
    }

    /// A string many entries share, escaped the first time and copied after.
    fn shared(&mut self, out: &mut Vec<u8>, text: &Arc<str>) {
        if let Some((_, escaped)) = self.escaped.iter().find(|(id, _)| Arc::ptr_eq(id, text)) {
            out.extend_from_slice(escaped);
            return;
        }
        let mut escaped = Vec::with_capacity(text.len() + 2);
        string(&mut escaped, text);
        out.extend_from_slice(&escaped);
        if self.escaped.len() == REMEMBERED {
            self.escaped.remove(0);
        }
        self.escaped.push((Arc::clone(text), escaped));
    }
}

/// `text` as a JSON string (sonic-rs escapes with SIMD).
fn string(out: &mut Vec<u8>, text: &str) {
    json(out, &text);
}

fn json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Writing to a Vec cannot fail, and these values are plain JSON.
    let _ = sonic_rs::to_writer(&mut *out, value);
}
