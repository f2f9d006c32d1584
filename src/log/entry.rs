//! The unified log entry (DESIGN.md, "The unified log entry").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    System,
    Build,
    Deploy,
    Action,
    Lifecycle,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// A ULID, unique per entry.
    pub id: String,
    /// When it happened, ms since the Unix epoch; serialised as RFC 3339 UTC with milliseconds.
    #[serde(with = "rfc3339_ms")]
    pub ts: i64,
    pub tier: Tier,
    pub severity: Severity,
    pub event: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl LogEntry {
    /// A new entry stamped now.
    pub fn new(
        tier: Tier,
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LogEntry {
            id: ulid::Ulid::new().to_string(),
            ts: now_ms(),
            tier,
            severity,
            event: event.into(),
            message: message.into(),
            deployment_id: None,
            build_id: None,
            project_id: None,
            user_id: None,
            correlation_id: None,
            metadata: Map::new(),
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
        deployment_id: impl Into<String>,
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LogEntry::new(Tier::Deploy, severity, event, message).with_deployment(deployment_id)
    }

    pub fn with_deployment(mut self, deployment_id: impl Into<String>) -> Self {
        self.deployment_id = Some(deployment_id.into());
        self
    }

    pub fn with_build(mut self, build_id: impl Into<String>) -> Self {
        self.build_id = Some(build_id.into());
        self
    }

    pub fn with_project(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }

    pub fn with_ts(mut self, ts_ms: i64) -> Self {
        self.ts = ts_ms;
        self
    }

    pub fn with_meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// The timestamp as RFC 3339 UTC with milliseconds, e.g. `2026-11-26T09:20:31.123Z`.
    pub fn ts_rfc3339(&self) -> String {
        rfc3339_ms::format(self.ts)
    }
}

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

mod rfc3339_ms {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn format(ms: i64) -> String {
        let nanos = i128::from(ms) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
                format!(
                    "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.millisecond()
                )
            }
            Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
        }
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        let t = OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)?;
        Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_the_design_field_names_and_rfc3339_ms() {
        let entry = LogEntry::deploy("vercel-dpl_1-01ABC", Severity::Info, "stdout", "hello")
            .with_ts(1_783_471_638_756)
            .with_build("dpl_1")
            .with_meta("vercel_type", "stdout");
        let json: Value = serde_json::to_value(&entry).expect("serialises");
        assert_eq!(json["ts"], "2026-07-08T00:47:18.756Z");
        assert_eq!(json["tier"], "deploy");
        assert_eq!(json["severity"], "info");
        assert_eq!(json["deployment_id"], "vercel-dpl_1-01ABC");
        assert_eq!(json["metadata"]["vercel_type"], "stdout");
        assert!(json.get("user_id").is_none());
        let back: LogEntry = serde_json::from_value(json).expect("round-trips");
        assert_eq!(back, entry);
    }

    #[test]
    fn ids_are_ulids_and_unique() {
        let a = LogEntry::system(Severity::Warn, "degraded", "x");
        let b = LogEntry::system(Severity::Warn, "degraded", "x");
        assert_ne!(a.id, b.id);
        assert!(ulid::Ulid::from_string(&a.id).is_ok());
    }
}
