//! The unified log entry: every line, from any source, becomes one; its JSON names are also the
//! `--json` output.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use ulid::Ulid;

use crate::clock::now_ms;

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    System,
    Build,
    Deploy,
    Action,
    Lifecycle,
    /// A deployment's runtime logs: requests and function output.
    Runtime,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::System => "system",
            Tier::Build => "build",
            Tier::Deploy => "deploy",
            Tier::Action => "action",
            Tier::Lifecycle => "lifecycle",
            Tier::Runtime => "runtime",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// One line of the unified log. Field names are the JSON names of `--json` output.
///
/// Ids shared by every entry of a deployment are `Arc<str>`: the write path clones them per
/// line, and a clone of an `Arc` costs no allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// A ULID, unique per entry; its time part is the entry's `ts`.
    pub id: Ulid,
    /// When it happened, ms since the Unix epoch; serialised as RFC 3339 UTC with milliseconds.
    #[serde(with = "rfc3339_ms")]
    pub ts: i64,
    pub tier: Tier,
    pub severity: Severity,
    pub event: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Arc<str>>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// An entry's `metadata` object: the fields Vercel events carry, typed, and any others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vercel_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vercel_deployment_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vercel_type: Option<String>,
    /// When Vercel created the event (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// Vercel's `level` (`error`, `warning`) when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The project's name, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Arc<str>>,
    /// A finished build's log read again to be shown (the dashboard opening on history): news
    /// to nobody, so the alert rules pass it by.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Metadata {
    /// A text field by its JSON name, typed or not.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match key {
            "vercel_event_id" => self.vercel_event_id.as_deref(),
            "vercel_deployment_id" => self.vercel_deployment_id.as_deref(),
            "vercel_type" => self.vercel_type.as_deref(),
            "level" => self.level.as_deref(),
            "project" => self.project.as_deref(),
            _ => self.extra.get(key).and_then(Value::as_str),
        }
    }
}

impl LogEntry {
    /// A new entry stamped now.
    pub fn new(
        tier: Tier,
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LogEntry::at(now_ms(), tier, severity, event, message)
    }

    /// A new entry of something that happened at `ts_ms`.
    pub fn at(
        ts_ms: i64,
        tier: Tier,
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LogEntry {
            id: Ulid::from_parts(ts_ms.max(0) as u64, rand::random()),
            ts: ts_ms,
            tier,
            severity,
            event: event.into(),
            message: message.into(),
            deployment_id: None,
            build_id: None,
            project_id: None,
            user_id: None,
            correlation_id: None,
            metadata: Metadata::default(),
        }
    }

    /// A `system` entry: shiplog's own health (degraded streams, store outages, skipped input).
    pub fn system(
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LogEntry::new(Tier::System, severity, event, message)
    }

    /// A `deploy` entry about one deployment, in the spirit of the plan's `unifiedLogger.deploy`.
    pub fn deploy(
        deployment_id: impl Into<Arc<str>>,
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LogEntry::new(Tier::Deploy, severity, event, message).with_deployment(deployment_id)
    }

    pub fn with_deployment(mut self, deployment_id: impl Into<Arc<str>>) -> Self {
        self.deployment_id = Some(deployment_id.into());
        self
    }

    pub fn with_build(mut self, build_id: impl Into<Arc<str>>) -> Self {
        self.build_id = Some(build_id.into());
        self
    }

    pub fn with_project(mut self, project_id: Option<Arc<str>>) -> Self {
        self.project_id = project_id;
        self
    }

    pub fn with_ts(mut self, ts_ms: i64) -> Self {
        self.ts = ts_ms;
        self
    }

    /// Adds a metadata field that has no typed slot in [`Metadata`].
    pub fn with_meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The timestamp as RFC 3339 UTC with milliseconds, e.g. `2026-11-26T09:20:31.123Z`.
    pub fn ts_rfc3339(&self) -> String {
        rfc3339(self.ts)
    }
}

/// `ms` as RFC 3339 UTC with milliseconds, e.g. `2026-11-26T09:20:31.123Z`.
pub fn rfc3339(ms: i64) -> String {
    rfc3339_ms::format(ms)
}

/// The time of day of `ms`, UTC, as `HH:MM:SS.mmm`.
pub fn clock(ms: i64) -> String {
    rfc3339_ms::with_text(ms, |ts| ts.get(11..23).unwrap_or(ts).to_owned())
}

/// Optional times as RFC 3339 (null when absent).
pub mod rfc3339_ms_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&super::rfc3339_ms::format(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::rfc3339_ms::parse(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// Times as RFC 3339 with milliseconds, UTC.
pub mod rfc3339_ms {
    use super::*;
    use serde::{Deserializer, Serializer};

    const EPOCH: &str = "1970-01-01T00:00:00.000Z";

    pub fn format(ms: i64) -> String {
        with_text(ms, str::to_owned)
    }

    /// Hands `use_text` the time as text, made on the stack: every `--json` line has one, so
    /// it is written digit by digit rather than through `format!`.
    pub fn with_text<R>(ms: i64, use_text: impl FnOnce(&str) -> R) -> R {
        let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
            return use_text(EPOCH);
        };
        // Years before 0 (never a real log's) take the slow road.
        let Ok(year) = u32::try_from(t.year()) else {
            let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
            let (h, mi, s, ms) = t.to_hms_milli();
            return use_text(&format!(
                "{y:05}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"
            ));
        };
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let fields = [
            (0..4, year),
            (5..7, u32::from(u8::from(t.month()))),
            (8..10, u32::from(t.day())),
            (11..13, u32::from(t.hour())),
            (14..16, u32::from(t.minute())),
            (17..19, u32::from(t.second())),
            (20..23, u32::from(t.millisecond())),
        ];
        for (place, mut value) in fields {
            for digit in text[place].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        use_text(std::str::from_utf8(&text).unwrap_or(EPOCH))
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        with_text(*ms, |text| s.serialize_str(text))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn parse(text: &str) -> Result<i64, time::error::Parse> {
        let t = OffsetDateTime::parse(text, &Rfc3339)?;
        Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The hand-made stamp says what `time` says, and reads back to the same instant.
        #[test]
        fn stamps_match_the_time_crate_and_read_back(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("in range");
            let (h, mi, sec, milli) = t.to_hms_milli();
            let expected = format!(
                "{:04}-{:02}-{:02}T{h:02}:{mi:02}:{sec:02}.{milli:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day()
            );
            let stamp = rfc3339(ms);
            prop_assert_eq!(&stamp, &expected);
            prop_assert_eq!(rfc3339_ms::parse(&stamp).ok(), Some(ms));
        }
    }

    #[test]
    fn json_uses_the_design_field_names_and_rfc3339_ms() {
        let entry = LogEntry::deploy("vercel-dpl_1-01ABC", Severity::Info, "stdout", "hello")
            .with_ts(1_783_471_638_756)
            .with_build("dpl_1")
            .with_meta("ready_state", "READY");
        let json: Value = serde_json::to_value(&entry).expect("serialises");
        assert_eq!(json["ts"], "2026-07-08T00:47:18.756Z");
        assert_eq!(json["tier"], "deploy");
        assert_eq!(json["severity"], "info");
        assert_eq!(json["deployment_id"], "vercel-dpl_1-01ABC");
        assert_eq!(json["metadata"]["ready_state"], "READY");
        assert!(json.get("user_id").is_none());
        let back: LogEntry = serde_json::from_value(json).expect("round-trips");
        assert_eq!(back, entry);
    }

    #[test]
    fn ids_are_ulids_of_the_entry_time_and_unique() {
        let a = LogEntry::at(
            1_783_471_638_756,
            Tier::Build,
            Severity::Info,
            "stdout",
            "x",
        );
        let b = LogEntry::at(
            1_783_471_638_756,
            Tier::Build,
            Severity::Info,
            "stdout",
            "x",
        );
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.timestamp_ms(), 1_783_471_638_756);
        let json = serde_json::to_value(&a).expect("serialises");
        assert_eq!(json["id"].as_str().map(str::len), Some(26));
    }

    #[test]
    fn typed_and_extra_metadata_serialise_as_one_object() {
        let mut entry = LogEntry::new(Tier::Build, Severity::Warn, "stderr", "w");
        entry.metadata.vercel_type = Some("stderr".to_owned());
        entry.metadata.created = Some(5);
        let entry = entry.with_meta("ready_state", "BUILDING");
        let json = serde_json::to_value(&entry).expect("serialises");
        assert_eq!(
            json["metadata"],
            serde_json::json!({"vercel_type": "stderr", "created": 5, "ready_state": "BUILDING"})
        );
        let back: LogEntry = serde_json::from_value(json).expect("reads back");
        assert_eq!(back.metadata.get_str("vercel_type"), Some("stderr"));
        assert_eq!(back.metadata.get_str("ready_state"), Some("BUILDING"));
    }
}
