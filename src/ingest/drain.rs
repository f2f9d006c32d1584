//! Vercel's log drains: a batch is a JSON array of records or NDJSON (one record a line),
//! maybe gzip-encoded. Records are read one at a time from the (decompressed) stream, so a
//! batch costs one record's memory beyond its bytes; fields are read leniently (a field of the
//! wrong type is missing).

use std::io::{BufRead, BufReader, Read};

use serde::de::{SeqAccess, Visitor};
use serde_json::Value;

use crate::vercel::RuntimeRow;

/// One drained log record, as far as shiplog uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainRecord {
    pub id: String,
    pub deployment_id: String,
    /// `build`, `lambda`, `edge`, `static`, `external`, `firewall` or `redirect`.
    pub source: String,
    pub timestamp_ms: i64,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    /// `info`, `warning`, `error` or `fatal`.
    pub level: String,
    pub message: String,
    /// A build record's stream: `command`, `stdout`, `stderr`, ...
    pub kind: Option<String>,
    /// `production`, `preview`.
    pub environment: Option<String>,
    pub host: String,
    pub path: String,
    pub method: String,
    /// The response's status (`-1`, a crashed function, is kept as none).
    pub status: Option<u16>,
}

impl DrainRecord {
    pub fn is_build(&self) -> bool {
        self.source == "build"
    }

    /// The record as a runtime log row, its source named as the runtime logs API names it.
    pub fn into_runtime_row(self) -> RuntimeRow {
        let source = match self.source.as_str() {
            "lambda" => "serverless".to_owned(),
            "edge" => "edge-function".to_owned(),
            _ => self.source,
        };
        RuntimeRow {
            level: self.level,
            message: self.message,
            row_id: self.id,
            source,
            timestamp_ms: self.timestamp_ms,
            domain: self.host,
            message_truncated: false,
            request_method: self.method,
            request_path: self.path,
            status: self.status,
        }
    }
}

/// Why a batch cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedBatch {
    #[error("record {index} is not JSON: {reason}")]
    NotJson { index: usize, reason: String },
    #[error("record {index} is not a log record: it has no deploymentId")]
    NotARecord { index: usize },
    #[error("the batch is neither a JSON array nor NDJSON")]
    Shape,
}

/// Reads every record of a batch, in order, handing each to `take`; the number read. Stops at
/// the first record that cannot be read (callers read a batch once to check it, then again to
/// take it, so that a bad batch is refused whole).
pub fn for_each_record(
    batch: impl Read,
    mut take: impl FnMut(DrainRecord),
) -> Result<usize, MalformedBatch> {
    let mut reader = BufReader::new(batch);
    let first = loop {
        let buffer = reader.fill_buf().map_err(|_| MalformedBatch::Shape)?;
        match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => {
                let first = buffer[at];
                reader.consume(at);
                break Some(first);
            }
            None if buffer.is_empty() => break None,
            None => {
                let all = buffer.len();
                reader.consume(all);
            }
        }
    };
    match first {
        None => Ok(0),
        Some(b'[') => array(reader, &mut take),
        Some(b'{') => ndjson(reader, &mut take),
        Some(_) => Err(MalformedBatch::Shape),
    }
}

fn ndjson(
    reader: impl BufRead,
    take: &mut impl FnMut(DrainRecord),
) -> Result<usize, MalformedBatch> {
    let mut count = 0;
    for line in reader.split(b'\n') {
        let line = line.map_err(|_| MalformedBatch::Shape)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value =
            serde_json::from_slice(&line).map_err(|err| MalformedBatch::NotJson {
                index: count,
                reason: err.to_string(),
            })?;
        take(record(&value).ok_or(MalformedBatch::NotARecord { index: count })?);
        count += 1;
    }
    Ok(count)
}

fn array(reader: impl Read, take: &mut impl FnMut(DrainRecord)) -> Result<usize, MalformedBatch> {
    let mut count = 0;
    let mut bad_record = None;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let read = serde::Deserializer::deserialize_seq(
        &mut deserializer,
        Records {
            take,
            count: &mut count,
            bad_record: &mut bad_record,
        },
    )
    .and_then(|()| deserializer.end());
    if let Some(index) = bad_record {
        return Err(MalformedBatch::NotARecord { index });
    }
    read.map_err(|err| MalformedBatch::NotJson {
        index: count,
        reason: err.to_string(),
    })?;
    Ok(count)
}

/// Takes an array's elements one at a time.
struct Records<'a, F> {
    take: &'a mut F,
    count: &'a mut usize,
    bad_record: &'a mut Option<usize>,
}

impl<'de, F: FnMut(DrainRecord)> Visitor<'de> for Records<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of log records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element_seed(std::marker::PhantomData::<Value>)? {
            let Some(record) = record(&value) else {
                *self.bad_record = Some(*self.count);
                return Err(serde::de::Error::custom("not a log record"));
            };
            (self.take)(record);
            *self.count += 1;
        }
        Ok(())
    }
}

/// A record from its JSON; `None` without a deployment id.
fn record(value: &Value) -> Option<DrainRecord> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let proxy = value.get("proxy").unwrap_or(&Value::Null);
    let proxy_text = |key: &str| proxy.get(key).and_then(Value::as_str).map(str::to_owned);
    let status = |v: &Value| {
        v.get("statusCode")
            .and_then(Value::as_i64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| *s > 0)
    };
    Some(DrainRecord {
        id: text("id").unwrap_or_default(),
        deployment_id: text("deploymentId").filter(|id| !id.is_empty())?,
        source: text("source").unwrap_or_default(),
        timestamp_ms: value.get("timestamp").and_then(Value::as_i64).unwrap_or(0),
        project_id: text("projectId"),
        project_name: text("projectName"),
        level: text("level").unwrap_or_default(),
        message: text("message").unwrap_or_default(),
        kind: text("type"),
        environment: text("environment"),
        host: proxy_text("host")
            .or_else(|| text("host"))
            .unwrap_or_default(),
        path: text("path")
            .or_else(|| proxy_text("path"))
            .unwrap_or_default(),
        method: proxy_text("method").unwrap_or_default(),
        status: status(value).or_else(|| status(proxy)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    }

    fn records(batch: &[u8]) -> Result<Vec<DrainRecord>, MalformedBatch> {
        let mut all = Vec::new();
        for_each_record(batch, |r| all.push(r))?;
        Ok(all)
    }

    #[test]
    fn both_encodings_of_the_fixtures_read_whole() {
        let build = records(&fixture("drain-build-batch.json")).expect("a JSON array");
        assert_eq!(build.len(), 5);
        assert!(build.iter().all(DrainRecord::is_build));
        assert_eq!(build[3].level, "error");
        assert_eq!(build[3].kind.as_deref(), Some("stderr"));
        let lambda = records(&fixture("drain-lambda-batch.ndjson")).expect("NDJSON");
        let crashed = lambda
            .iter()
            .find(|r| r.level == "fatal")
            .expect("the crashed function");
        assert_eq!(
            crashed.status,
            Some(504),
            "-1 at the top, the proxy's 504 kept"
        );
        assert_eq!(crashed.path, "/api/report");
        assert_eq!(crashed.method, "GET");
        let row = lambda[1].clone().into_runtime_row();
        assert_eq!((row.source.as_str(), row.status), ("serverless", Some(500)));
        assert_eq!(
            records(&fixture("drain-docs-example.ndjson"))
                .expect("docs")
                .len(),
            2
        );
    }

    #[test]
    fn a_bad_batch_is_refused_naming_the_record() {
        assert_eq!(records(b"  \n"), Ok(vec![]));
        assert_eq!(records(b"hello"), Err(MalformedBatch::Shape));
        assert_eq!(
            records(b"[{\"deploymentId\":\"d\"},{\"id\":1}]"),
            Err(MalformedBatch::NotARecord { index: 1 })
        );
        assert!(matches!(
            records(b"{\"deploymentId\":\"d\"}\n{oops}\n"),
            Err(MalformedBatch::NotJson { index: 1, .. })
        ));
        assert!(matches!(
            records(b"[{\"deploymentId\":\"d\"}"),
            Err(MalformedBatch::NotJson { .. })
        ));
        assert!(matches!(
            records(b"[{\"deploymentId\":\"d\"}] trailing"),
            Err(MalformedBatch::NotJson { .. })
        ));
    }

    proptest! {
        /// Any bytes are read or refused, never a panic; whatever is read has a deployment.
        #[test]
        fn any_batch_is_read_or_refused(batch in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut read = Vec::new();
            let _ = for_each_record(batch.as_slice(), |r| read.push(r));
            prop_assert!(read.iter().all(|r| !r.deployment_id.is_empty()));
        }

        /// The same records read the same as an array and as NDJSON.
        #[test]
        fn both_shapes_agree(
            ids in proptest::collection::vec("[a-z0-9]{1,8}", 0..20),
            level in prop::sample::select(vec!["info", "error", ""]),
            status in prop::option::of(-1i64..700),
        ) {
            let values: Vec<Value> = ids.iter().map(|id| {
                let mut v = serde_json::json!({"id": id, "deploymentId": "dpl_1", "level": level, "source": "lambda"});
                if let Some(status) = status { v["statusCode"] = status.into(); }
                v
            }).collect();
            let array = serde_json::to_vec(&values).expect("json");
            let ndjson: Vec<u8> = values.iter().flat_map(|v| {
                let mut line = serde_json::to_vec(v).expect("json");
                line.push(b'\n');
                line
            }).collect();
            let (a, b) = (records(&array).expect("array"), records(&ndjson).expect("ndjson"));
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.len(), ids.len());
            prop_assert!(a.iter().all(|r| r.status.is_none_or(|s| s > 0)));
        }
    }
}
