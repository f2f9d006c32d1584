//! A breakglass entry: one per connection (a new login replaces it), with the plan's fields.
//! The emergency copy of the tokens is sealed with the breakglass key, independent of the
//! token key, unless `plaintext` storage was explicitly configured.

use serde::{Deserialize, Serialize};

use crate::log::entry::{rfc3339_ms, rfc3339_ms_opt};

/// How the emergency copy is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Sealed with `BREAKGLASS_KEY` (the default).
    Sealed,
    /// As the plan has it: readable by whoever reads the store. Only when configured.
    Plaintext,
}

/// The plan's fields, by the plan's names. `Debug` leaves the copies out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakglassEntry {
    pub id: String,
    pub connection_id: String,
    pub user_id: String,
    /// The emergency copy (sealed, or plain in `plaintext` storage). Never printed.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh_token: Option<String>,
    pub storage: Storage,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    pub vercel_project_id: Option<String>,
    pub created_by_admin_id: Option<String>,
    pub reason: String,
    pub justification: Option<String>,
    #[serde(with = "rfc3339_ms")]
    pub expires_at: i64,
    #[serde(with = "rfc3339_ms_opt", default)]
    pub accessed_at: Option<i64>,
    pub access_count: u32,
    pub max_access_count: u32,
    pub is_active: bool,
    #[serde(with = "rfc3339_ms_opt", default)]
    pub access_restricted_until: Option<i64>,
    #[serde(with = "rfc3339_ms")]
    pub created_at: i64,
    #[serde(with = "rfc3339_ms")]
    pub updated_at: i64,
}

impl BreakglassEntry {
    /// A copy fit to show or print: without the tokens.
    pub fn public(&self) -> BreakglassEntry {
        BreakglassEntry {
            access_token: String::new(),
            refresh_token: None,
            ..self.clone()
        }
    }

    pub fn uses_left(&self) -> u32 {
        self.max_access_count.saturating_sub(self.access_count)
    }

    /// Where the entry stands at `now`, in words: inactive, expired, restricted, or the time
    /// left.
    pub fn state(&self, now: i64) -> String {
        if !self.is_active {
            "inactive".to_owned()
        } else if now >= self.expires_at {
            "expired".to_owned()
        } else if self
            .access_restricted_until
            .is_some_and(|until| now < until)
        {
            "restricted".to_owned()
        } else {
            format!(
                "{} left",
                crate::clock::short_duration(self.expires_at - now)
            )
        }
    }
}

impl std::fmt::Debug for BreakglassEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakglassEntry")
            .field("id", &self.id)
            .field("connection_id", &self.connection_id)
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("storage", &self.storage)
            .field("expires_at", &self.expires_at)
            .field("access_count", &self.access_count)
            .field("max_access_count", &self.max_access_count)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}
