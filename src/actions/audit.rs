//! The action audit trail: every request, confirmation, refusal and result, with who, their
//! role, the action, the deployment, the project, the reason, the outcome, Vercel's answer and
//! the time. A record is durable when `append` returns: in a file under the state directory
//! (synced to disk), or in a Redis stream shared by every instance. Every instance reads the
//! trail, so an action taken anywhere shows everywhere.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ActionKind;
use crate::log::entry::rfc3339_ms;
use crate::redis_io::{ConnectFailure, RedisLink, RedisTarget};
use crate::redis_io::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
use crate::role::Role;

/// How far an action got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Asked for and checked, waiting for its confirmation.
    Requested,
    /// Confirmed; the request to Vercel goes next.
    Confirmed,
    /// Sent again: the first answer was lost and Vercel showed it had not taken effect.
    Resent,
    /// The person said no.
    Declined,
    /// A guard said no; nothing was sent.
    Refused,
    /// Vercel did it.
    Succeeded,
    /// It had already happened (a retry found the first attempt's effect).
    AlreadyDone,
    /// Vercel said no, or could not be reached.
    Failed,
    /// Its answer was lost and Vercel could not be asked whether it took effect: it may have.
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Requested => "requested",
            Outcome::Confirmed => "confirmed",
            Outcome::Resent => "resent",
            Outcome::Declined => "declined",
            Outcome::Refused => "refused",
            Outcome::Succeeded => "succeeded",
            Outcome::AlreadyDone => "already_done",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }

    /// The action is over (nothing more will be recorded for it).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Outcome::Requested | Outcome::Confirmed | Outcome::Resent
        )
    }
}

/// One line of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    #[serde(with = "rfc3339_ms")]
    pub at: i64,
    pub action_id: String,
    pub action: ActionKind,
    pub outcome: Outcome,
    pub user: String,
    pub role: Role,
    /// The project's name (empty when refused before it was looked up).
    pub project: String,
    /// The deployment acted on; for a rollback, the one production goes back to.
    pub deployment: String,
    /// Where production pointed before a promote or rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The deployment a redeploy made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Vercel's answer, or why a guard said no: one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The shiplog process that wrote it.
    pub instance: String,
}

/// Where the trail is kept.
#[derive(Clone)]
pub struct ActionTrail {
    place: Place,
}

#[derive(Clone)]
enum Place {
    /// `actions/audit.ndjson` under the state directory.
    File(PathBuf),
    /// The stream `{namespace}actions:audit`.
    Redis { link: RedisLink, key: String },
}

/// Why the trail could not be written or read (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the action audit trail is unavailable: {0}")]
pub struct TrailError(pub String);

/// Where a reader of the trail stands: a byte offset in the file, a stream id on Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailPosition {
    Offset(u64),
    StreamId(String),
}

/// The trail keeps this many records on Redis (the file keeps all).
const REDIS_KEEP: usize = 100_000;

impl ActionTrail {
    /// The trail in files under `state_dir`.
    pub fn files(state_dir: &std::path::Path) -> Result<Self, TrailError> {
        let dir = state_dir.join("actions");
        crate::fsutil::private_dir(&dir)
            .map_err(|err| TrailError(format!("cannot create {}: {err}", dir.display())))?;
        Ok(ActionTrail {
            place: Place::File(dir.join("audit.ndjson")),
        })
    }

    /// The trail on the Redis at `url`, under `namespace`.
    pub async fn redis(url: &str, namespace: &str) -> Result<Self, TrailError> {
        let (client, target) = RedisTarget::open(url).map_err(|err| TrailError(err.to_string()))?;
        let connection = target
            .manager(client, DEFAULT_CONNECT_TIMEOUT)
            .await
            .map_err(|failure| {
                TrailError(match failure {
                    ConnectFailure::NoAnswer => format!("no answer from {}", target.address()),
                    ConnectFailure::Refused(err) => target.describe(&err),
                })
            })?;
        Ok(ActionTrail {
            place: Place::Redis {
                link: RedisLink::new(connection, target, DEFAULT_COMMAND_TIMEOUT),
                key: format!("{namespace}actions:audit"),
            },
        })
    }

    /// Appends a record; durable when this returns `Ok`.
    pub async fn append(&self, record: &ActionRecord) -> Result<(), TrailError> {
        let line = serde_json::to_string(record)
            .map_err(|err| TrailError(format!("cannot encode the record: {err}")))?;
        match &self.place {
            Place::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    crate::fsutil::append_line_synced(&path, &line).map_err(|err| {
                        TrailError(format!("cannot write {}: {err}", path.display()))
                    })
                })
                .await
                .map_err(|err| TrailError(err.to_string()))?
            }
            Place::Redis { link, key } => link
                .run::<String>(
                    redis::cmd("XADD")
                        .arg(key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(REDIS_KEEP)
                        .arg("*")
                        .arg("record")
                        .arg(line),
                )
                .await
                .map(drop)
                .map_err(|err| TrailError(err.to_string())),
        }
    }

    /// The last `limit` records (at most a thousand on Redis), newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<ActionRecord>, TrailError> {
        let (mut records, _) = self.read_after(None).await?;
        records.reverse();
        records.truncate(limit);
        Ok(records)
    }

    /// The records written after `position` (`None`: from the start of what is kept, on Redis
    /// the newest thousand), oldest first, and the position after them.
    pub async fn read_after(
        &self,
        position: Option<&TrailPosition>,
    ) -> Result<(Vec<ActionRecord>, TrailPosition), TrailError> {
        match &self.place {
            Place::File(path) => {
                let offset = match position {
                    Some(TrailPosition::Offset(offset)) => *offset,
                    _ => 0,
                };
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file_after(&path, offset))
                    .await
                    .map_err(|err| TrailError(err.to_string()))?
            }
            Place::Redis { link, key } => {
                let entries: Vec<(String, Vec<(String, String)>)> = match position {
                    Some(TrailPosition::StreamId(id)) => {
                        link.run(
                            redis::cmd("XRANGE")
                                .arg(key)
                                .arg(format!("({id}"))
                                .arg("+")
                                .arg("COUNT")
                                .arg(1000),
                        )
                        .await
                    }
                    _ => link
                        .run(
                            redis::cmd("XREVRANGE")
                                .arg(key)
                                .arg("+")
                                .arg("-")
                                .arg("COUNT")
                                .arg(1000),
                        )
                        .await
                        .map(|mut newest_first: Vec<(String, Vec<(String, String)>)>| {
                            newest_first.reverse();
                            newest_first
                        }),
                }
                .map_err(|err| TrailError(err.to_string()))?;
                let last = entries
                    .last()
                    .map(|(id, _)| id.clone())
                    .or_else(|| match position {
                        Some(TrailPosition::StreamId(id)) => Some(id.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "0-0".to_owned());
                let records = entries
                    .into_iter()
                    .filter_map(|(_, fields)| {
                        fields
                            .into_iter()
                            .find(|(name, _)| name == "record")
                            .and_then(|(_, line)| serde_json::from_str(&line).ok())
                    })
                    .collect();
                Ok((records, TrailPosition::StreamId(last)))
            }
        }
    }
}

/// The whole records written after byte `offset` (a line still being written waits for the
/// next read; a trail cut shorter than `offset` is read again from its start).
fn read_file_after(
    path: &std::path::Path,
    offset: u64,
) -> Result<(Vec<ActionRecord>, TrailPosition), TrailError> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), TrailPosition::Offset(0)))
        }
        Err(err) => return Err(TrailError(format!("cannot read {}: {err}", path.display()))),
    };
    let length = file
        .metadata()
        .map(|m| m.len())
        .map_err(|err| TrailError(err.to_string()))?;
    let start = if length < offset { 0 } else { offset };
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|err| TrailError(format!("cannot read {}: {err}", path.display())))?;
    let whole = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |last| last + 1);
    let records = bytes[..whole]
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    Ok((records, TrailPosition::Offset(start + whole as u64)))
}
