//! The audit trail: every breakglass attempt, granted or denied, with who, which connection,
//! the justification, the outcome, the reason and the time. A grant's record is written before
//! anything is revealed.

use serde::{Deserialize, Serialize};

use crate::log::entry::rfc3339_ms;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Granted,
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    #[serde(with = "rfc3339_ms")]
    pub at: i64,
    pub admin_id: String,
    pub role: String,
    pub connection_id: String,
    pub justification: String,
    pub outcome: Outcome,
    /// Why it was denied, or what was granted ("use 3 of 10").
    pub reason: String,
}
