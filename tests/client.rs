//! The Vercel client against a local server answering in Vercel's documented formats: which
//! failures are retried, which are not, and when the circuit breaker stops calling.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shiplog::retry::RetryPolicy;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use shiplog::vercel::breaker::BreakerConfig;
use shiplog::vercel::{ClientConfig, ReadyState, VercelClient, VercelError};

/// What the server answers, in order; the last answer repeats.
#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<Vec<Answer>>>,
    hits: Arc<AtomicUsize>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
}

#[derive(Clone, Copy)]
enum Answer {
    RateLimited,
    ServerError,
    NotFound,
    Deployment,
}

async fn deployment(State(script): State<Script>, headers: HeaderMap) -> Response {
    script.hits.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut seen) = script.headers.lock() {
        seen.push(headers);
    }
    let answer = {
        let mut answers = script.answers.lock().expect("lock");
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0]
        }
    };
    match answer {
        Answer::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            r#"{"error":{"code":"rate_limited","message":"Rate limit exceeded","limit":{"remaining":0,"reset":1,"resetMs":1000,"total":100}}}"#,
        )
            .into_response(),
        Answer::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"code":"internal_server_error","message":"An unexpected internal error occurred"}}"#,
        )
            .into_response(),
        Answer::NotFound => (
            StatusCode::NOT_FOUND,
            r#"{"error":{"code":"not_found","message":"Deployment not found","id":"dpl_x"}}"#,
        )
            .into_response(),
        Answer::Deployment => (
            StatusCode::OK,
            r#"{"id":"dpl_x","url":"x.vercel.app","name":"storefront","readyState":"BUILDING","status":"BUILDING","createdAt":1,"meta":{}}"#,
        )
            .into_response(),
    }
}

async fn serve(answers: Vec<Answer>) -> (String, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers)),
        hits: Arc::default(),
        headers: Arc::default(),
    };
    let app = Router::new()
        .route("/v13/deployments/{id}", get(deployment))
        .with_state(script.clone());
    (support::http::serve(app).await, script)
}

fn client(url: &str, attempts: u32, shared: Option<StateStore>) -> VercelClient {
    let mut config = ClientConfig::new(url, Secret::new("vcp_clienttesttoken0123456789"));
    config.team_id = Some("team_abc".to_owned());
    config.retry = RetryPolicy {
        max_attempts: attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    config.breaker = BreakerConfig {
        failure_threshold: 3,
        cool_down: Duration::from_secs(60),
    };
    config.shared_state = shared;
    VercelClient::new(config).expect("client")
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_until_an_answer() {
    let (url, script) = serve(vec![
        Answer::RateLimited,
        Answer::ServerError,
        Answer::Deployment,
    ])
    .await;
    let deployment = client(&url, 4, None)
        .get_deployment("dpl_x")
        .await
        .expect("third try works");
    assert_eq!(deployment.ready_state, ReadyState::Building);
    assert_eq!(script.hits.load(Ordering::SeqCst), 3);
    let headers = script.headers.lock().expect("lock").clone();
    let ids: Vec<&str> = headers
        .iter()
        .filter_map(|h| h.get("x-correlation-id").and_then(|v| v.to_str().ok()))
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2],
        "one correlation id per request"
    );
    assert!(headers
        .iter()
        .all(|h| h.get("authorization").is_some_and(|v| v
            .to_str()
            .is_ok_and(|v| v == "Bearer vcp_clienttesttoken0123456789"))));
}

#[tokio::test]
async fn other_client_errors_are_not_retried_and_read_the_envelope() {
    let (url, script) = serve(vec![Answer::NotFound]).await;
    let err = client(&url, 4, None)
        .get_deployment("dpl_x")
        .await
        .expect_err("404");
    assert_eq!(script.hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        err.to_string(),
        "Vercel API answered 404 (not_found): Deployment not found"
    );
    assert!(err.hint().is_some());
}

#[tokio::test]
async fn the_breaker_stops_calling_a_failing_api() {
    let (url, script) = serve(vec![Answer::ServerError]).await;
    let client = client(&url, 1, None);
    for _ in 0..3 {
        let err = client.get_deployment("dpl_x").await.expect_err("500");
        assert_eq!(err.status(), Some(500));
    }
    let err = client.get_deployment("dpl_x").await.expect_err("open");
    assert!(
        matches!(
            err,
            VercelError::CircuitOpen {
                family: "deployments",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        script.hits.load(Ordering::SeqCst),
        3,
        "an open circuit sends nothing"
    );
}

#[tokio::test]
async fn instances_sharing_redis_agree_on_an_open_circuit() {
    let redis = support::redis::RedisServer::start();
    let namespace = support::redis::fresh_namespace();
    let dir = tempfile::tempdir().expect("dir");
    let hook: shiplog::store::DegradedHook = Arc::new(|_| {});
    let store = StateStore::redis(&redis.url, &namespace, dir.path(), hook)
        .await
        .expect("redis store");
    let (url, script) = serve(vec![Answer::ServerError]).await;
    let first = client(&url, 1, Some(store.clone()));
    for _ in 0..3 {
        let _ = first.get_deployment("dpl_x").await;
    }
    let second = client(&url, 1, Some(store));
    let err = second
        .get_deployment("dpl_x")
        .await
        .expect_err("open everywhere");
    assert!(matches!(err, VercelError::CircuitOpen { .. }), "{err}");
    assert_eq!(script.hits.load(Ordering::SeqCst), 3);
}
