//! Runtime logs: `GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs`, one
//! JSON object per line, live only (no cursor, no `since`). The server ends a response after
//! its limit with a `delimiter` row whose `rowId` is empty, or at any time.

use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Map, Value};

use super::client::{encode_segment, VercelClient};
use super::error::VercelError;

/// One runtime log row. Every field is optional on the wire here: a row with a missing or
/// `null` field is still shown, with the field empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeRow {
    /// `trace`, `debug`, `info`, `warning`, `error` or `fatal`.
    pub level: String,
    pub message: String,
    /// Vercel's id of the row; empty on the limit marker.
    pub row_id: String,
    /// `request`, `serverless`, `edge-function`, `edge-middleware`, or `delimiter`.
    pub source: String,
    /// When it happened (ms); 0 when Vercel sent no usable time.
    pub timestamp_ms: i64,
    pub domain: String,
    pub message_truncated: bool,
    pub request_method: String,
    pub request_path: String,
    /// The response's status; `None` when Vercel sent none (0 or less).
    pub status: Option<u16>,
}

impl RuntimeRow {
    /// The row that says the server's limit for this response was reached.
    pub fn is_limit_marker(&self) -> bool {
        self.row_id.is_empty() && self.source == "delimiter"
    }
}

/// A line that is not a runtime log row.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a runtime log row: {0}")]
pub struct MalformedRow(pub String);

/// Parses one line (without its newline). A field of an unexpected type is taken as missing
/// (a number sent as text is still read), rather than losing the row; invalid UTF-8 is
/// replaced. Only a line that is no JSON object is malformed.
pub fn parse_runtime_row(line: &[u8]) -> Result<RuntimeRow, MalformedRow> {
    let object: Map<String, Value> = match serde_json::from_slice(line) {
        Ok(object) => object,
        Err(err) if std::str::from_utf8(line).is_err() => {
            serde_json::from_str(&String::from_utf8_lossy(line))
                .map_err(|_| MalformedRow(err.to_string()))?
        }
        Err(err) => return Err(MalformedRow(err.to_string())),
    };
    let text = |key: &str| match object.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    };
    let number = |key: &str| match object.get(key) {
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(RuntimeRow {
        level: text("level"),
        message: text("message"),
        row_id: text("rowId"),
        source: text("source"),
        timestamp_ms: number("timestampInMs")
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 1e15)
            .map_or(0, |t| t as i64),
        domain: text("domain"),
        message_truncated: object.get("messageTruncated") == Some(&Value::Bool(true)),
        request_method: text("requestMethod"),
        request_path: text("requestPath"),
        status: number("responseStatusCode")
            .filter(|code| (100.0..1000.0).contains(code))
            .map(|code| code as u16),
    })
}

impl VercelClient {
    /// Opens a deployment's runtime logs once (no retries: the runtime follower owns
    /// reconnection and says where a gap may be). The body is a byte stream.
    pub async fn open_runtime_logs(
        &self,
        project_id: &str,
        deployment_id: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, reqwest::Error>>, VercelError> {
        let path = format!(
            "/v1/projects/{}/deployments/{}/runtime-logs",
            encode_segment(project_id),
            encode_segment(deployment_id)
        );
        let params = [("format", "lines".to_owned())];
        self.open_stream(self.runtime_breaker(), &path, &params)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/runtime-logs.ndjson");

    #[test]
    fn every_documented_row_parses_and_the_limit_row_is_recognised() {
        let rows: Vec<RuntimeRow> = FIXTURE
            .lines()
            .map(|line| parse_runtime_row(line.as_bytes()).expect("a documented row"))
            .collect();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[2].status, Some(500));
        assert_eq!(rows[2].level, "error");
        assert_eq!(rows[2].request_path, "/api/checkout");
        assert!(rows[4].message_truncated);
        assert!(rows.last().is_some_and(RuntimeRow::is_limit_marker));
        assert!(rows[..5].iter().all(|row| !row.is_limit_marker()));
        assert_eq!(rows[5].status, None);
    }

    #[test]
    fn missing_null_and_odd_fields_still_make_a_row() {
        let row = parse_runtime_row(
            br#"{"message":null,"responseStatusCode":-1,"timestampInMs":1.7e12}"#,
        )
        .expect("a row");
        assert_eq!(row.message, "");
        assert_eq!(row.status, None);
        assert_eq!(row.timestamp_ms, 1_700_000_000_000);
        assert!(parse_runtime_row(b"[1,2]").is_err());
        assert!(parse_runtime_row(b"{\"message\":\"caf\xe9\"}")
            .is_ok_and(|r| r.message == "caf\u{fffd}"));
    }

    proptest::proptest! {
        #[test]
        fn no_line_makes_the_parser_panic(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_runtime_row(&line);
        }
    }
}
