//! The actions engine: cancel, redeploy, promote and roll back a deployment, with the care the
//! breakglass screen takes. Every action is
//! - checked against the role before anything is sent (`operator` and `super_admin` act);
//! - looked up and checked against the deployment's state (`plan.rs`), then confirmed by the
//!   person (yes/no, or the project's name typed again for what touches production);
//! - written to the action audit trail before the request goes out (`audit.rs`), and refused
//!   when it cannot be;
//! - claimed in the state store, so two dashboards pressing the same action on the same
//!   deployment within a minute send it once;
//! - idempotent: a retry after a lost answer first looks whether the first attempt took effect
//!   (a redeploy carries its action id in the new deployment's `meta`) (`run.rs`).
//!
//! Every instance reads the trail and writes each action as an `action` entry (`desk.rs`), so
//! the dashboards show it and the rules can tell the team.

pub mod audit;
pub mod desk;
mod lookup;
mod plan;
mod run;

use serde::{Deserialize, Serialize};

pub use audit::{ActionRecord, ActionTrail, Outcome};
pub use plan::{Confirmation, Plan};
pub use run::{check_role, Actions, Consent, Finished};

use crate::role::Role;
use crate::vercel::VercelError;

/// What can be done to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Cancel,
    Redeploy,
    Promote,
    Rollback,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Cancel => "cancel",
            ActionKind::Redeploy => "redeploy",
            ActionKind::Promote => "promote",
            ActionKind::Rollback => "rollback",
        }
    }

    /// The verb: "cancel", "roll back".
    pub fn verb(self) -> &'static str {
        match self {
            ActionKind::Rollback => "roll back",
            other => other.as_str(),
        }
    }

    /// What was done: "canceled", "rolled back".
    pub fn done(self) -> &'static str {
        match self {
            ActionKind::Cancel => "canceled",
            ActionKind::Redeploy => "redeployed",
            ActionKind::Promote => "promoted",
            ActionKind::Rollback => "rolled back",
        }
    }

    /// The entry's `event` when it happened: `canceled`, `redeployed`, `promoted`,
    /// `rolled_back`.
    pub fn event(self) -> &'static str {
        match self {
            ActionKind::Rollback => "rolled_back",
            other => other.done(),
        }
    }
}

/// What someone asks for, before anything is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    pub kind: ActionKind,
    /// The deployment acted on; for a rollback, the one to go back to (`None`: the production
    /// deployment before the current one).
    pub deployment: Option<String>,
    /// For a rollback: the project (id or name).
    pub project: Option<String>,
}

impl ActionRequest {
    pub fn on(kind: ActionKind, deployment: &str) -> Self {
        ActionRequest {
            kind,
            deployment: Some(deployment.to_owned()),
            project: None,
        }
    }

    pub fn rollback(project: &str, to: Option<&str>) -> Self {
        ActionRequest {
            kind: ActionKind::Rollback,
            deployment: to.map(str::to_owned),
            project: Some(project.to_owned()),
        }
    }
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub role: Role,
}

/// Why a guard said no. Nothing was sent to Vercel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the {role} role may not {action} deployments; operator and super_admin may")]
    Role {
        role: &'static str,
        action: &'static str,
    },
    #[error("not confirmed, so nothing was sent")]
    NotConfirmed,
    #[error("the name typed is not the project's ({project}), so nothing was sent")]
    NameMismatch { project: String },
    /// The deployment's state does not allow it (said why).
    #[error("{0}")]
    Ineligible(String),
    #[error("{0}; an action that cannot be audited is not sent")]
    Audit(String),
    #[error("the state store is unavailable ({0}), so another dashboard could send the same action; nothing was sent")]
    Store(String),
    #[error(
        "{user} sent the same {action} {seconds} s ago (action {action_id}); it is not sent twice"
    )]
    Claimed {
        user: String,
        action: &'static str,
        seconds: i64,
        action_id: String,
    },
}

impl Refusal {
    /// A one-line hint for a person, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Refusal::Role { .. } => Some(
                "ask someone with the operator role, or set SHIPLOG_ROLE=operator if that is you",
            ),
            Refusal::NotConfirmed => Some("run it on a terminal to confirm, or pass --yes"),
            Refusal::NameMismatch { .. } => Some("type the project's name exactly, as shown"),
            Refusal::Audit(_) => Some("check the state directory (or Redis) is writable"),
            Refusal::Claimed { .. } => Some("`shiplog deployments audit` shows how it went"),
            Refusal::Store(_) => Some("check REDIS_URL or the state directory, then try again"),
            Refusal::Ineligible(_) => None,
        }
    }
}

/// Why an action did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// A guard said no (exit 77).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// Vercel said no or could not be reached (exit 2).
    #[error("{0}")]
    Vercel(String, Option<&'static str>),
    /// Sent, but whether it took effect is not known (exit 2).
    #[error("{0}")]
    Uncertain(String),
}

impl ActionError {
    /// One sentence for a person from what Vercel answered to `kind`.
    pub fn from_vercel(kind: ActionKind, err: &VercelError) -> Self {
        let what = kind.as_str();
        let sentence = match (err.status(), err) {
            (Some(402), _) => format!("Vercel refused the {what}: not allowed on this plan ({err})"),
            (Some(401 | 403), _) => format!(
                "Vercel refused the {what}: the token may not do this (insufficient scope or team role) ({err})"
            ),
            (Some(404), _) => format!("Vercel does not know this deployment or project ({err})"),
            (Some(_), VercelError::Api { message, .. }) => {
                format!("Vercel refused the {what}: {message}")
            }
            _ => format!("the {what} did not reach Vercel: {err}"),
        };
        ActionError::Vercel(sentence, err.hint())
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ActionError::Refused(refusal) => refusal.hint(),
            ActionError::Vercel(_, hint) => *hint,
            ActionError::Uncertain(_) => {
                Some("`shiplog deployments audit` and the dashboard show it once Vercel answers")
            }
        }
    }
}
