//! The REST client: per-endpoint API versions, bearer auth, `teamId`, timeouts, correlation ids,
//! retries with backoff, and a circuit breaker per endpoint family.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use super::breaker::{BreakerConfig, CircuitBreaker};
use super::error::VercelError;
use super::types::{Deployment, DeploymentList};
use crate::retry::{parse_retry_after, RetryPolicy};
use crate::secret::Secret;
use crate::store::StateStore;

pub const DEFAULT_API_URL: &str = "https://api.vercel.com";

/// How to reach Vercel.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_url: String,
    pub token: Secret,
    pub team_id: Option<String>,
    /// Whole-request timeout for plain calls.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Breaker of plain calls (deployments, user).
    pub breaker: BreakerConfig,
    /// Breaker of the events stream. Its cool-down is short: a follower must resume within
    /// about 2 s once the API answers again.
    pub events_breaker: BreakerConfig,
    /// Where breaker state is shared between instances (Redis); `None` keeps it in process.
    pub shared_state: Option<StateStore>,
}

impl ClientConfig {
    pub fn new(api_url: impl Into<String>, token: Secret) -> Self {
        ClientConfig {
            api_url: api_url.into(),
            token,
            team_id: None,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            events_breaker: BreakerConfig {
                failure_threshold: 5,
                cool_down: Duration::from_millis(1500),
            },
            shared_state: None,
        }
    }
}

/// Query of the events stream.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    pub follow: bool,
    /// Events from this time on (ms since the epoch).
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Query of the deployments list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub project_id: Option<String>,
    pub state: Option<String>,
    pub since: Option<i64>,
    /// `production` or `preview`.
    pub target: Option<String>,
    /// Only deployments whose `meta` holds this key with this value (`meta-KEY=value`).
    pub meta: Option<(String, String)>,
}

/// A Vercel REST client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct VercelClient {
    http: reqwest::Client,
    base: String,
    /// `Bearer <token>`, made once and marked sensitive (reqwest and hyper never log it); the
    /// text it was made from is wiped.
    authorization: Option<HeaderValue>,
    team_id: Option<String>,
    request_timeout: Duration,
    retry: RetryPolicy,
    breakers: std::sync::Arc<Breakers>,
}

#[derive(Debug)]
struct Breakers {
    deployments: CircuitBreaker,
    events: CircuitBreaker,
    /// Runtime logs fail on their own: an outage there must not stop build logs.
    runtime: CircuitBreaker,
}

fn bearer(token: &Secret) -> Option<HeaderValue> {
    let text = zeroize::Zeroizing::new(format!("Bearer {}", token.expose()));
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl VercelClient {
    pub fn new(config: ClientConfig) -> Result<Self, VercelError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("shiplog/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VercelError::Network(e.to_string()))?;
        let shared = config.shared_state.clone();
        Ok(VercelClient {
            http,
            base: config.api_url.trim_end_matches('/').to_owned(),
            authorization: bearer(&config.token),
            team_id: config.team_id.filter(|t| !t.is_empty()),
            request_timeout: config.request_timeout,
            retry: config.retry,
            breakers: std::sync::Arc::new(Breakers {
                deployments: CircuitBreaker::new("deployments", config.breaker, shared.clone()),
                events: CircuitBreaker::new("events", config.events_breaker, shared.clone()),
                runtime: CircuitBreaker::new("runtime", config.events_breaker, shared),
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /v2/user`: the token's owner.
    pub async fn get_user(&self) -> Result<super::types::User, VercelError> {
        let response: super::types::UserResponse =
            self.call_json(Method::GET, "/v2/user", &[]).await?;
        Ok(response.user)
    }

    /// `GET /v2/teams/{id}`.
    pub async fn get_team(&self, id: &str) -> Result<super::types::Team, VercelError> {
        let path = format!("/v2/teams/{}", encode_segment(id));
        self.call_json(Method::GET, &path, &[]).await
    }

    /// `GET /v13/deployments/{idOrUrl}`.
    pub async fn get_deployment(&self, id_or_url: &str) -> Result<Deployment, VercelError> {
        let path = format!("/v13/deployments/{}", encode_segment(id_or_url));
        self.call_json(Method::GET, &path, &[]).await
    }

    /// `GET /v6/deployments`, newest first.
    pub async fn list_deployments(&self, query: &ListQuery) -> Result<DeploymentList, VercelError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        if let Some(project) = &query.project_id {
            params.push(("projectId", project.clone()));
        }
        if let Some(state) = &query.state {
            params.push(("state", state.clone()));
        }
        if let Some(since) = query.since {
            params.push(("since", since.to_string()));
        }
        if let Some(target) = &query.target {
            params.push(("target", target.clone()));
        }
        let meta_key;
        if let Some((key, value)) = &query.meta {
            meta_key = format!("meta-{key}");
            params.push((&meta_key, value.clone()));
        }
        self.call_json(Method::GET, "/v6/deployments", &params)
            .await
    }

    /// Opens `GET /v3/deployments/{idOrUrl}/events` once (no retries: the follower owns
    /// reconnection, because each reconnection resumes from a different point). The body is
    /// returned as a byte stream; the caller applies its own idle timeout.
    pub async fn open_events(
        &self,
        id_or_url: &str,
        query: &EventsQuery,
    ) -> Result<impl Stream<Item = Result<Bytes, reqwest::Error>>, VercelError> {
        let breaker = &self.breakers.events;
        let path = format!("/v3/deployments/{}/events", encode_segment(id_or_url));
        let mut params: Vec<(&str, String)> = vec![
            ("direction", "forward".to_owned()),
            ("follow", if query.follow { "1" } else { "0" }.to_owned()),
            ("limit", "-1".to_owned()),
            ("format", "lines".to_owned()),
        ];
        if let Some(since) = query.since {
            params.push(("since", since.to_string()));
        }
        if let Some(until) = query.until {
            params.push(("until", until.to_string()));
        }
        self.open_stream(breaker, &path, &params).await
    }

    /// Opens an NDJSON stream once, through `breaker`; the body as a byte stream.
    pub(super) async fn open_stream(
        &self,
        breaker: &CircuitBreaker,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<impl Stream<Item = Result<Bytes, reqwest::Error>>, VercelError> {
        breaker.check().await?;
        let request = self
            .request(Method::GET, path, params)
            .header("accept", "application/stream+json");
        let result = match request.send().await {
            Ok(response) => check_status(response).await,
            Err(err) => Err(transport_error(err, None)),
        };
        breaker.record(&result).await;
        result.map(Response::bytes_stream)
    }

    /// The breaker of the runtime logs stream.
    pub(super) fn runtime_breaker(&self) -> &CircuitBreaker {
        &self.breakers.runtime
    }

    fn request(&self, method: Method, path: &str, params: &[(&str, String)]) -> RequestBuilder {
        let mut headers = HeaderMap::new();
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Ok(id) = HeaderValue::from_str(&ulid::Ulid::new().to_string()) {
            headers.insert("x-correlation-id", id);
        }
        let mut builder = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .headers(headers)
            .query(params);
        if let Some(team) = &self.team_id {
            builder = builder.query(&[("teamId", team)]);
        }
        builder
    }

    /// A plain call that may be repeated: timeout, retries for 429/5xx/network with backoff,
    /// circuit breaker.
    pub(super) async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<T, VercelError> {
        let mut retry = 0;
        loop {
            let outcome = self
                .send_once(method.clone(), path, params, None)
                .await
                .and_then(|body| Self::parse(path, &body));
            match outcome {
                Err(err) if err.is_retryable() && retry + 1 < self.retry.max_attempts => {
                    let wait = self.retry.delay(retry, err.retry_after());
                    tracing::debug!(%err, ?wait, path, "retrying Vercel call");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }
}

impl VercelClient {
    /// One request, never repeated here (a call that changes something is retried only by
    /// whoever can tell whether it took effect): timeout, circuit breaker; the body's bytes.
    pub(super) async fn send_once(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, VercelError> {
        let breaker = &self.breakers.deployments;
        let outcome = async {
            breaker.check().await?;
            let mut request = self
                .request(method, path, params)
                .timeout(self.request_timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(e, Some(self.request_timeout)))?;
            check_status(response)
                .await?
                .bytes()
                .await
                .map_err(|e| transport_error(e, Some(self.request_timeout)))
        }
        .await;
        breaker.record(&outcome).await;
        outcome
    }

    pub(super) fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, VercelError> {
        serde_json::from_slice::<T>(body)
            .map_err(|e| VercelError::InvalidResponse(format!("{path}: {e}")))
    }
}

async fn check_status(response: Response) -> Result<Response, VercelError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = response.bytes().await.unwrap_or_default();
    Err(VercelError::from_response(
        status.as_u16(),
        retry_after,
        &body,
    ))
}

/// A transport error without anything from the request but the host (no headers, no query).
fn transport_error(err: reqwest::Error, timeout: Option<Duration>) -> VercelError {
    if err.is_timeout() {
        return VercelError::Timeout(timeout.unwrap_or(Duration::from_secs(30)));
    }
    let host = err
        .url()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| "the API".to_owned());
    let kind = if err.is_connect() {
        "connection refused or unreachable"
    } else if err.is_body() || err.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    VercelError::Network(format!("{host}: {kind}"))
}

/// Deployment ids and URLs go into a path segment; keep them from escaping it.
pub(super) fn encode_segment(value: &str) -> String {
    let value = value
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let value = value.split('/').next().unwrap_or(value);
    let segment: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if segment.chars().all(|c| c == '.') {
        // Empty, "." or "..": never let it address another path.
        return "-".to_owned();
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_ids_become_one_safe_path_segment() {
        assert_eq!(encode_segment("dpl_2A1Ydw"), "dpl_2A1Ydw");
        assert_eq!(
            encode_segment("https://my-app-abc123.vercel.app/some/page"),
            "my-app-abc123.vercel.app"
        );
        assert_eq!(encode_segment("../../v2/user?x"), "-");
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let client = VercelClient::new(ClientConfig::new(
            "http://127.0.0.1:9",
            Secret::new("vcp_supersecretsupersecret123"),
        ))
        .expect("client");
        assert!(!format!("{client:?}").contains("supersecret"));
    }
}
