//! Webhooks and log drains as Vercel keeps them: created, listed and deleted through
//! `/v1/webhooks` and `/v1/drains`. A webhook's secret comes back once, from its creation; a
//! drain's secret is the one sent when creating it.

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::client::{encode_segment, VercelClient};
use super::error::VercelError;
use crate::secret::Secret;

/// The deployment events shiplog's listener takes.
pub const DEPLOYMENT_EVENTS: [&str; 6] = [
    "deployment.created",
    "deployment.succeeded",
    "deployment.error",
    "deployment.canceled",
    "deployment.promoted",
    "deployment.rollback",
];

/// A webhook: where Vercel posts which events.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Only these projects' events; empty: every project of the team.
    pub project_ids: Vec<String>,
    pub created_at: Option<i64>,
    /// Only in the answer to its creation.
    #[serde(skip)]
    pub secret: Option<Secret>,
}

/// A log drain: where Vercel posts which logs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drain {
    pub id: String,
    pub name: String,
    pub url: String,
    /// `enabled`, `disabled` or `errored`.
    pub status: Option<String>,
    pub project_ids: Vec<String>,
}

/// What `POST /v1/drains` is asked to make.
#[derive(Debug, Clone)]
pub struct NewDrain {
    pub url: String,
    pub project_ids: Vec<String>,
    /// `build`, `lambda`, `edge`, `static`, ...
    pub sources: Vec<String>,
    /// `production`, `preview`.
    pub environments: Vec<String>,
    /// `ndjson` or `json`.
    pub encoding: String,
    pub gzip: bool,
    pub secret: Secret,
}

impl VercelClient {
    /// `POST /v1/webhooks`, for the deployment events (of `project_ids`, or of every project).
    pub async fn create_webhook(
        &self,
        url: &str,
        project_ids: &[String],
    ) -> Result<Webhook, VercelError> {
        let mut body = json!({ "url": url, "events": DEPLOYMENT_EVENTS });
        if !project_ids.is_empty() {
            body["projectIds"] = json!(project_ids);
        }
        self.create("/v1/webhooks", &body, webhook).await
    }

    /// `GET /v1/webhooks`.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, VercelError> {
        self.listing("/v1/webhooks", "webhooks", webhook).await
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), VercelError> {
        self.remove("/v1/webhooks", id).await
    }

    /// `POST /v1/drains`, in the shape Vercel's own Terraform provider sends.
    pub async fn create_drain(&self, drain: &NewDrain) -> Result<Drain, VercelError> {
        let mut delivery = json!({
            "type": "http",
            "endpoint": drain.url,
            "encoding": drain.encoding,
            "headers": {},
            "secret": drain.secret.expose(),
        });
        if drain.gzip {
            delivery["compression"] = json!("gzip");
        }
        let body = json!({
            "name": "shiplog",
            "projects": if drain.project_ids.is_empty() { "all" } else { "some" },
            "projectIds": drain.project_ids,
            "filter": {"version": "v2", "filter": {"type": "basic",
                "log": {"sources": drain.sources},
                "deployment": {"environments": drain.environments}}},
            "schemas": {"log": {"version": "v1"}},
            "delivery": delivery,
            "source": {"kind": "self-served"},
        });
        self.create("/v1/drains", &body, log_drain).await
    }

    /// `GET /v1/drains`.
    pub async fn list_drains(&self) -> Result<Vec<Drain>, VercelError> {
        self.listing("/v1/drains", "drains", log_drain).await
    }

    /// `DELETE /v1/drains/{id}`.
    pub async fn delete_drain(&self, id: &str) -> Result<(), VercelError> {
        self.remove("/v1/drains", id).await
    }
}

/// What webhooks and drains share: created once (never repeated here), listed, deleted.
impl VercelClient {
    /// `POST {path}`; the answer read by `read` (`None`: no id in it).
    async fn create<T>(
        &self,
        path: &str,
        body: &Value,
        read: fn(&Value) -> Option<T>,
    ) -> Result<T, VercelError> {
        let answer = self.send_once(Method::POST, path, &[], Some(body)).await?;
        let value: Value = Self::parse(path, &answer)?;
        read(&value).ok_or_else(|| VercelError::InvalidResponse(format!("{path}: no id")))
    }

    /// `GET {path}`, answered as an array or as `{key: [...]}`.
    async fn listing<T>(
        &self,
        path: &str,
        key: &str,
        read: fn(&Value) -> Option<T>,
    ) -> Result<Vec<T>, VercelError> {
        let value: Value = self.call_json(Method::GET, path, &[]).await?;
        Ok(listed(&value, key).iter().filter_map(read).collect())
    }

    /// `DELETE {collection}/{id}`.
    async fn remove(&self, collection: &str, id: &str) -> Result<(), VercelError> {
        let path = format!("{collection}/{}", encode_segment(id));
        self.send_once(Method::DELETE, &path, &[], None)
            .await
            .map(drop)
    }
}

/// A list answered bare or wrapped (`{"drains": [...]}`).
fn listed<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .as_array()
        .or_else(|| value.get(key).and_then(Value::as_array))
        .map_or(&[], Vec::as_slice)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The strings of the array at `key` (other elements skipped).
pub(crate) fn texts(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn webhook(value: &Value) -> Option<Webhook> {
    Some(Webhook {
        id: text(value, "id").filter(|id| !id.is_empty())?,
        url: text(value, "url").unwrap_or_default(),
        events: texts(value, "events"),
        project_ids: texts(value, "projectIds"),
        created_at: value.get("createdAt").and_then(Value::as_i64),
        secret: text(value, "secret").map(Secret::new),
    })
}

fn log_drain(value: &Value) -> Option<Drain> {
    let delivery = value.get("delivery").unwrap_or(&Value::Null);
    Some(Drain {
        id: text(value, "id").filter(|id| !id.is_empty())?,
        name: text(value, "name").unwrap_or_default(),
        url: text(delivery, "endpoint")
            .or_else(|| text(value, "url"))
            .unwrap_or_default(),
        status: text(value, "status"),
        project_ids: texts(value, "projectIds"),
    })
}
