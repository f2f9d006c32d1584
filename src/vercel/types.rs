//! Response types of the deployments endpoints (only the fields shiplog uses).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A deployment's state, `readyState` in Vercel's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReadyState {
    Queued,
    Initializing,
    Building,
    Ready,
    Error,
    Canceled,
    Deleted,
    /// A state this version of shiplog does not know; treated as still running.
    #[serde(other)]
    Unknown,
}

impl ReadyState {
    /// READY, ERROR, CANCELED (and DELETED): the build will produce no more output.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ReadyState::Ready | ReadyState::Error | ReadyState::Canceled | ReadyState::Deleted
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReadyState::Queued => "QUEUED",
            ReadyState::Initializing => "INITIALIZING",
            ReadyState::Building => "BUILDING",
            ReadyState::Ready => "READY",
            ReadyState::Error => "ERROR",
            ReadyState::Canceled => "CANCELED",
            ReadyState::Deleted => "DELETED",
            ReadyState::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ReadyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /v13/deployments/{idOrUrl}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub ready_state: ReadyState,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub building_at: Option<i64>,
    #[serde(default)]
    pub ready: Option<i64>,
    #[serde(default)]
    pub build_error_at: Option<i64>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
    #[serde(default)]
    pub target: Option<String>,
    /// The deployment's page in Vercel's dashboard.
    #[serde(default)]
    pub inspector_url: Option<String>,
    #[serde(default)]
    pub meta: Map<String, Value>,
}

impl Deployment {
    pub fn git(&self) -> GitMeta<'_> {
        GitMeta::of(&self.meta)
    }

    /// When the build ended (ms), as far as Vercel says.
    pub fn ended_at(&self) -> Option<i64> {
        match self.ready_state {
            ReadyState::Ready => self.ready,
            ReadyState::Error => self.build_error_at,
            ReadyState::Canceled => self.canceled_at,
            _ => None,
        }
    }
}

/// One item of `GET /v6/deployments`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummary {
    pub uid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub building_at: Option<i64>,
    /// When the build ended (READY; Vercel's field name).
    #[serde(default)]
    pub ready: Option<i64>,
    /// `state` and `readyState` are both optional in the list; [`DeploymentSummary::state`] reads either.
    #[serde(default)]
    pub ready_state: Option<ReadyState>,
    #[serde(default)]
    pub state: Option<ReadyState>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub meta: Map<String, Value>,
}

impl DeploymentSummary {
    pub fn git(&self) -> GitMeta<'_> {
        GitMeta::of(&self.meta)
    }

    pub fn state(&self) -> ReadyState {
        self.ready_state
            .or(self.state)
            .unwrap_or(ReadyState::Unknown)
    }
}

/// A deployment's git details from its `meta` (GitHub, GitLab or Bitbucket keys), as Vercel
/// sent them: nothing here is made fit for a terminal yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GitMeta<'a> {
    pub branch: Option<&'a str>,
    pub sha: Option<&'a str>,
    pub message: Option<&'a str>,
    /// Who made the commit: a login, else a name.
    pub author: Option<&'a str>,
}

impl<'a> GitMeta<'a> {
    pub fn of(meta: &'a Map<String, Value>) -> Self {
        let first = |keys: [&str; 3]| keys.iter().find_map(|key| meta.get(*key)?.as_str());
        GitMeta {
            branch: first(["githubCommitRef", "gitlabCommitRef", "bitbucketCommitRef"]),
            sha: first(["githubCommitSha", "gitlabCommitSha", "bitbucketCommitSha"]),
            message: first([
                "githubCommitMessage",
                "gitlabCommitMessage",
                "bitbucketCommitMessage",
            ]),
            author: first([
                "githubCommitAuthorLogin",
                "gitlabCommitAuthorLogin",
                "bitbucketCommitAuthorLogin",
            ])
            .or_else(|| {
                first([
                    "githubCommitAuthorName",
                    "gitlabCommitAuthorName",
                    "bitbucketCommitAuthorName",
                ])
            }),
        }
    }

    /// The commit's first seven characters.
    pub fn short_sha(&self) -> Option<&'a str> {
        self.sha.map(|sha| {
            sha.char_indices()
                .nth(7)
                .map_or(sha, |(end, _)| &sha[..end])
        })
    }
}

/// `GET /v9/projects/{idOrName}` (only the fields shiplog uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    /// `production`: the deployment production points at now.
    #[serde(default)]
    pub targets: Option<ProjectTargets>,
    /// The last promote or rollback.
    #[serde(default)]
    pub last_alias_request: Option<AliasRequest>,
}

impl Project {
    /// The deployment production points at now.
    pub fn production_id(&self) -> Option<&str> {
        self.targets
            .as_ref()
            .and_then(|t| t.production.as_ref())
            .map(|d| d.id.as_str())
    }

    /// Production was rolled back and not promoted since: Vercel then stops pointing
    /// production at new deployments until someone promotes one.
    pub fn is_rolled_back(&self) -> bool {
        self.last_alias_request
            .as_ref()
            .is_some_and(|r| r.kind == "rollback" && r.job_status != "failed")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProjectTargets {
    #[serde(default)]
    pub production: Option<TargetDeployment>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TargetDeployment {
    pub id: String,
}

/// A promote or rollback as Vercel tracks it (`lastAliasRequest`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasRequest {
    pub to_deployment_id: String,
    /// `pending`, `in-progress`, `succeeded`, `failed` or `skipped`.
    #[serde(default)]
    pub job_status: String,
    /// When it was asked for (ms).
    #[serde(default)]
    pub requested_at: i64,
    /// `promote` or `rollback`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl AliasRequest {
    /// Accepted and not finished: production is on its way to `to_deployment_id`.
    pub fn is_under_way(&self) -> bool {
        matches!(self.job_status.as_str(), "pending" | "in-progress")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pagination {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub next: Option<i64>,
    #[serde(default)]
    pub prev: Option<i64>,
}

/// `GET /v6/deployments`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentList {
    pub deployments: Vec<DeploymentSummary>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_states_are_not_terminal() {
        let state: ReadyState = serde_json::from_str("\"PROMOTING\"").expect("parses");
        assert_eq!(state, ReadyState::Unknown);
        assert!(!state.is_terminal());
        assert!(ReadyState::Canceled.is_terminal());
    }
}

/// `GET /v2/user`: who the token belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct UserResponse {
    pub user: User,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub default_team_id: Option<String>,
}

/// `GET /v2/teams/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
}
