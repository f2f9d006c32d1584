//! The endpoints that change a deployment (cancel, redeploy, promote, roll back) and the
//! project's state that tells whether one of them already happened.
//!
//! Each is sent once: a retry of something that changes the world is the caller's to decide,
//! after it has looked whether the first attempt took effect (`actions::run` does).

use reqwest::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use super::client::{encode_segment, VercelClient};
use super::error::VercelError;
use super::types::{Deployment, Project};

/// `POST /v13/deployments`: a new build of an existing deployment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeployRequest {
    /// The deployment whose source and settings are built again.
    pub deployment_id: String,
    /// The project's name (Vercel requires it).
    pub name: String,
    /// `production`, or `None` for a preview.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Strings only; the action id goes here, so a retry can find the deployment it made.
    pub meta: Map<String, Value>,
}

impl VercelClient {
    /// `PATCH /v12/deployments/{id}/cancel`: stops a queued or building deployment.
    pub async fn cancel_deployment(&self, id: &str) -> Result<Deployment, VercelError> {
        let path = format!("/v12/deployments/{}/cancel", encode_segment(id));
        let body = self.send_once(Method::PATCH, &path, &[], None).await?;
        Self::parse(&path, &body)
    }

    /// `POST /v13/deployments?forceNew=1`: builds `request.deployment_id` again.
    pub async fn redeploy(&self, request: &RedeployRequest) -> Result<Deployment, VercelError> {
        let path = "/v13/deployments";
        let body = serde_json::to_value(request)
            .map_err(|err| VercelError::InvalidResponse(format!("{path}: {err}")))?;
        let params = [("forceNew", "1".to_owned())];
        let answer = self
            .send_once(Method::POST, path, &params, Some(&body))
            .await?;
        Self::parse(path, &answer)
    }

    /// `POST /v10/projects/{projectId}/promote/{deploymentId}`: points production at a
    /// deployment without building it again. Accepted (201) or queued behind a rolling release
    /// (202).
    pub async fn promote(&self, project_id: &str, deployment_id: &str) -> Result<(), VercelError> {
        let path = format!(
            "/v10/projects/{}/promote/{}",
            encode_segment(project_id),
            encode_segment(deployment_id)
        );
        let empty = Value::Object(Map::new());
        self.send_once(Method::POST, &path, &[], Some(&empty))
            .await
            .map(drop)
    }

    /// `POST /v1/projects/{projectId}/rollback/{deploymentId}?description=`: points production
    /// back at an earlier production deployment; `reason` becomes the rollback's description.
    pub async fn rollback(
        &self,
        project_id: &str,
        deployment_id: &str,
        reason: Option<&str>,
    ) -> Result<(), VercelError> {
        let path = format!(
            "/v1/projects/{}/rollback/{}",
            encode_segment(project_id),
            encode_segment(deployment_id)
        );
        let params: Vec<(&str, String)> = reason
            .filter(|r| !r.trim().is_empty())
            .map(|r| ("description", r.to_owned()))
            .into_iter()
            .collect();
        self.send_once(Method::POST, &path, &params, None)
            .await
            .map(drop)
    }

    /// `GET /v9/projects/{idOrName}`: its production deployment and its last promote or
    /// rollback.
    pub async fn get_project(&self, id_or_name: &str) -> Result<Project, VercelError> {
        let path = format!("/v9/projects/{}", encode_segment(id_or_name));
        self.call_json(Method::GET, &path, &[]).await
    }
}
