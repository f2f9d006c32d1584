//! What a breakglass request gets: a grant, or exactly one reason why not.

use crate::secret::Secret;

/// Why access was denied: exactly one reason, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("breakglass is switched off (VERCEL_BREAKGLASS_ENABLED is not true)")]
    SwitchedOff,
    #[error("the role {role} may not break glass; only super_admin and breakglass_admin may (SHIPLOG_ROLE)")]
    Role { role: &'static str },
    #[error("the justification {problem}")]
    Justification { problem: String },
    #[error("there is no breakglass entry for connection {connection}")]
    NoEntry { connection: String },
    #[error("the breakglass entry is inactive")]
    Inactive,
    #[error("the breakglass entry expired at {at}")]
    Expired { at: String },
    #[error("access is restricted until {until}")]
    Restricted { until: String },
    #[error("the access limit is reached ({max} of {max} uses)")]
    LimitReached { max: u32 },
    #[error(
        "the breakglass entry changed while the request was checked (a new login?); ask again"
    )]
    Changed,
    #[error("the audit trail cannot be written ({reason}), so nothing is revealed")]
    AuditUnavailable { reason: String },
    #[error("the breakglass store cannot be used: {reason}")]
    StoreUnavailable { reason: String },
    #[error("the emergency copy cannot be opened: {reason}")]
    CopyUnavailable { reason: String },
    /// An entry, counter or audit record was changed outside shiplog: no access until it is
    /// restored or replaced; raises the `breakglass_access` alert.
    #[error("{reason}")]
    Tampered { reason: String },
}

/// What a grant reveals. `Debug` never shows the tokens.
#[derive(Debug, Clone)]
pub struct Grant {
    pub connection_id: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub team_id: Option<String>,
    pub expires_at: i64,
    pub uses_left: u32,
    pub warning: String,
}
