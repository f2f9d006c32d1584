//! Browser login: OAuth 2.0 authorization code with PKCE (RFC 7636, `S256`) and `state`, the
//! browser's redirect caught on a loopback port (RFC 8252 §7.3).
//!
//! A terminal tool cannot keep a client secret, so PKCE is what ties the code to this process: the
//! verifier never leaves it except in the token request, and a code stolen from the redirect is
//! useless without it. `state` ties the redirect to this login, so a page that makes the browser
//! call our loopback port with its own code cannot log us in to someone else's account.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use reqwest::header::ACCEPT;
use reqwest::redirect::Policy;
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::secret::Secret;

/// How long the token request may take before the login gives up on it.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the loopback server gets to finish its last answer to the browser once the login has
/// what it needs; a client that keeps a connection open cannot hold the login up for longer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Text from a server longer than this is cut, so one description cannot bury the terminal.
const MAX_SERVER_TEXT: usize = 300;

const PAGE_DONE: &str = "<!doctype html><meta charset=\"utf-8\"><title>shiplog</title>\
<p>Login worked. You can close this tab and go back to the terminal.</p>";
const PAGE_FAILED: &str = "<!doctype html><meta charset=\"utf-8\"><title>shiplog</title>\
<p>Login did not work; the terminal says why. You can close this tab.</p>";
const PAGE_STRAY: &str = "<!doctype html><meta charset=\"utf-8\"><title>shiplog</title>\
<p>This address only takes the redirect of a shiplog login.</p>";
const PAGE_ALREADY_DONE: &str = "<!doctype html><meta charset=\"utf-8\"><title>shiplog</title>\
<p>This login has already finished. You can close this tab.</p>";

/// Where to send the user and where to trade the code for tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    /// Sent with the code (`client_secret_post`) when the app has one; Vercel's token endpoint
    /// authenticates clients this way.
    pub client_secret: Option<Secret>,
    /// Sent space-separated; an empty list sends no `scope`, leaving the choice to the server.
    pub scopes: Vec<String>,
}

/// Sign in with Vercel's authorization endpoint.
pub const VERCEL_AUTHORIZE_URL: &str = "https://vercel.com/oauth/authorize";
/// Sign in with Vercel's token endpoint.
pub const VERCEL_TOKEN_URL: &str = "https://api.vercel.com/login/oauth/token";

impl OAuthConfig {
    /// "Sign in with Vercel". `offline_access` asks for a refresh token, so a dashboard left open
    /// all day does not send its user back to the browser every hour; scopes the app is not
    /// configured for are dropped by Vercel rather than refused.
    pub fn vercel(client_id: impl Into<String>) -> Self {
        OAuthConfig {
            authorize_url: VERCEL_AUTHORIZE_URL.to_owned(),
            token_url: VERCEL_TOKEN_URL.to_owned(),
            client_id: client_id.into(),
            client_secret: None,
            scopes: ["openid", "email", "profile", "offline_access"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// What the token endpoint granted. `Debug` shows the tokens as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// The scopes granted; the ones asked for when the server did not say (RFC 6749 §5.1).
    pub scopes: Vec<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// Seconds the access token lives, when the server said.
    pub expires_in: Option<u64>,
}

/// Why a login failed. No message contains the code, the verifier, a token or a client secret,
/// and text from a server is stripped of control characters before it reaches a terminal.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the authorize URL {0:?} is not a valid URL")]
    InvalidAuthorizeUrl(String),
    #[error("could not listen on 127.0.0.1 for the browser's redirect: {0}")]
    Listen(io::Error),
    #[error("timed out after {} s waiting for the browser to come back from the login page", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the browser came back with a state that does not match this login (possible forgery); try again")]
    StateMismatch,
    #[error("the authorization server refused: {error}: {description}")]
    Refused { error: String, description: String },
    #[error("could not reach the token endpoint: {0}")]
    TokenUnreachable(String),
    #[error("the token endpoint refused (HTTP {status}): {error}: {description}")]
    TokenRefused {
        status: u16,
        error: String,
        description: String,
    },
    #[error("the token endpoint's answer is not a valid token response")]
    MalformedTokenResponse,
}

/// The PKCE `S256` challenge: BASE64URL-no-pad(SHA256(verifier)) (RFC 7636 §4.2).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh PKCE verifier: 32 random bytes, base64url, 43 characters (RFC 7636 §4.1 asks for
/// 43 to 128 unreserved characters and recommends this form).
pub fn new_verifier() -> Secret {
    Secret::new(random_urlsafe::<32>())
}

/// A fresh `state`: 128 random bits, base64url, so it cannot be guessed by a page that wants to
/// forge a redirect.
pub fn new_state() -> String {
    random_urlsafe::<16>()
}

/// `N` bytes from the thread-local generator (a CSPRNG seeded from the OS), base64url-no-pad.
fn random_urlsafe<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Logs in through the browser and returns the tokens.
///
/// `open` is handed the authorize URL; when it fails the login goes on (the caller is expected
/// to have shown the URL so the user can open it by hand). `wait` bounds how long the user has
/// to finish in the browser.
pub async fn login(
    config: &OAuthConfig,
    open: impl FnOnce(&str) -> std::io::Result<()>,
    wait: Duration,
) -> Result<TokenResponse, OAuthError> {
    let verifier = new_verifier();
    let state = new_state();
    let loopback = Loopback::start(&state).await?;
    let redirect_uri = loopback.redirect_uri.clone();
    let url = authorize_url(
        config,
        &redirect_uri,
        &state,
        &code_challenge(verifier.expose()),
    )?;
    if let Err(why) = open(url.as_str()) {
        tracing::warn!(%why, "could not open a browser; the login URL has to be opened by hand");
    }
    let code = loopback.finish(wait).await?;
    exchange(config, &code, &redirect_uri, &verifier).await
}

/// The authorize URL, its query form-encoded as RFC 6749 §4.1.1 asks.
fn authorize_url(
    config: &OAuthConfig,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> Result<Url, OAuthError> {
    let mut url = Url::parse(&config.authorize_url)
        .map_err(|_| OAuthError::InvalidAuthorizeUrl(config.authorize_url.clone()))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", redirect_uri);
        if !config.scopes.is_empty() {
            query.append_pair("scope", &config.scopes.join(" "));
        }
        query
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
    }
    Ok(url)
}

/// What the first authorization response on the loopback port said: a code, or why there is none.
type Outcome = Result<Secret, OAuthError>;

/// The server on `127.0.0.1:{ephemeral}` that waits for the browser's redirect. Dropping it
/// stops the server (the stop signal's sender goes away with it).
struct Loopback {
    redirect_uri: String,
    outcome: oneshot::Receiver<Outcome>,
    /// Set when a response with the wrong `state` arrived (and was ignored).
    forged: Arc<AtomicBool>,
    stop_signal: oneshot::Sender<()>,
    server: JoinHandle<io::Result<()>>,
}

impl Loopback {
    /// Binds loopback only, never a public interface, so nothing off this machine can answer in
    /// the browser's place; port 0 lets the OS pick a free port (RFC 8252 §7.3).
    async fn start(state: &str) -> Result<Self, OAuthError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(OAuthError::Listen)?;
        let port = listener.local_addr().map_err(OAuthError::Listen)?.port();
        let (sender, outcome) = oneshot::channel();
        let forged = Arc::new(AtomicBool::new(false));
        let catcher = Catcher {
            expected_state: state.into(),
            sender: Arc::new(Mutex::new(Some(sender))),
            forged: forged.clone(),
        };
        let app = Router::new()
            .route("/callback", get(callback))
            .with_state(catcher);
        let (stop_signal, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender stops the server too.
                    let _ = stopped.await;
                })
                .await
        });
        tracing::debug!(port, "waiting for the login redirect on loopback");
        Ok(Loopback {
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            outcome,
            forged,
            stop_signal,
            server,
        })
    }

    /// Waits up to `wait` for the first authorization response with the right `state`, then
    /// stops the server.
    async fn finish(mut self, wait: Duration) -> Outcome {
        let received = tokio::time::timeout(wait, &mut self.outcome).await;
        let forged = self.forged.load(Ordering::SeqCst);
        self.stop().await;
        match received {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(OAuthError::Listen(io::Error::other(
                "the loopback server stopped before the browser came back",
            ))),
            // Only forged responses came: that is what to report.
            Err(_) if forged => Err(OAuthError::StateMismatch),
            Err(_) => Err(OAuthError::Timeout(wait)),
        }
    }

    /// Stops accepting, lets the answer in flight reach the browser, and cuts off whatever is
    /// still connected after [`SHUTDOWN_GRACE`].
    async fn stop(mut self) {
        let _ = self.stop_signal.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

/// The loopback server's state: the `state` this login sent, and where the first authorization
/// response goes (taken by it, so later ones cannot change the outcome).
#[derive(Clone)]
struct Catcher {
    expected_state: Arc<str>,
    sender: Arc<Mutex<Option<oneshot::Sender<Outcome>>>>,
    forged: Arc<AtomicBool>,
}

/// The query of the redirect (RFC 6749 §4.1.2 and §4.1.2.1).
#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackParams {
    /// What the redirect says, or `None` when it is not an authorization response at all (a
    /// stray request, which must not end the login). `state` is checked first, for errors too:
    /// a forged "access denied" should not be believed either.
    fn outcome(self, expected_state: &str) -> Option<Outcome> {
        if self.code.is_none() && self.error.is_none() {
            return None;
        }
        // Compared in constant time: how long the check takes says nothing of the state.
        let state_matches = self.state.as_deref().is_some_and(|state| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                state.as_bytes(),
                expected_state.as_bytes(),
            ))
        });
        if !state_matches {
            return Some(Err(OAuthError::StateMismatch));
        }
        if let Some(error) = self.error {
            return Some(Err(OAuthError::Refused {
                error: printable(&error, &[]),
                description: describe(self.error_description.as_deref(), &[]),
            }));
        }
        self.code.map(|code| Ok(Secret::new(code)))
    }
}

/// GET /callback: hands the first authorization response to the login and tells the browser how
/// it went. The page never repeats what the server said: the terminal does.
async fn callback(
    State(catcher): State<Catcher>,
    Query(params): Query<CallbackParams>,
) -> (StatusCode, Html<&'static str>) {
    let Some(outcome) = params.outcome(&catcher.expected_state) else {
        return (StatusCode::BAD_REQUEST, Html(PAGE_STRAY));
    };
    // A response with the wrong `state` is refused and the login goes on waiting: anything
    // that finds the port could send one, and must not be able to cancel the sign-in.
    if matches!(outcome, Err(OAuthError::StateMismatch)) {
        catcher.forged.store(true, Ordering::SeqCst);
        return (StatusCode::BAD_REQUEST, Html(PAGE_FAILED));
    }
    let sender = catcher
        .sender
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let Some(sender) = sender else {
        return (StatusCode::BAD_REQUEST, Html(PAGE_ALREADY_DONE));
    };
    let answer = match outcome {
        Ok(_) => (StatusCode::OK, Html(PAGE_DONE)),
        Err(_) => (StatusCode::BAD_REQUEST, Html(PAGE_FAILED)),
    };
    // The login may have timed out in the meantime; then nobody is listening and that is fine.
    let _ = sender.send(outcome);
    answer
}

/// The token endpoint's success body (RFC 6749 §5.1 plus Vercel's `team_id` and `user_id`).
#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: Option<String>,
    scope: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    expires_in: Option<u64>,
}

impl TokenBody {
    fn into_response(self, requested: &[String]) -> Result<TokenResponse, OAuthError> {
        if self.access_token.is_empty() {
            return Err(OAuthError::MalformedTokenResponse);
        }
        let scopes = match self.scope {
            Some(scope) => scope.split_whitespace().map(String::from).collect(),
            None => requested.to_vec(),
        };
        Ok(TokenResponse {
            access_token: Secret::new(self.access_token),
            refresh_token: self.refresh_token.map(Secret::new),
            scopes,
            team_id: self.team_id,
            user_id: self.user_id,
            expires_in: self.expires_in,
        })
    }
}

/// OAuth's error body (RFC 6749 §5.2).
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

/// Trades the code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).
async fn exchange(
    config: &OAuthConfig,
    code: &Secret,
    redirect_uri: &str,
    verifier: &Secret,
) -> Result<TokenResponse, OAuthError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
        ("client_id", &config.client_id),
        ("code_verifier", verifier.expose()),
    ];
    if let Some(secret) = &config.client_secret {
        form.push(("client_secret", secret.expose()));
    }
    // No redirects: the body carries the code and the verifier, which go to the configured
    // endpoint and nowhere else.
    let client = reqwest::Client::builder()
        .timeout(TOKEN_TIMEOUT)
        .redirect(Policy::none())
        .build()
        .map_err(transport_error)?;
    let response = client
        .post(&config.token_url)
        .header(ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport_error)?;
    if !status.is_success() {
        let mut secrets = vec![code.expose(), verifier.expose()];
        secrets.extend(config.client_secret.as_ref().map(Secret::expose));
        return Err(refusal(status, &body, &secrets));
    }
    // serde's message is dropped on purpose: it can quote the offending value.
    serde_json::from_slice::<TokenBody>(&body)
        .map_err(|_| OAuthError::MalformedTokenResponse)?
        .into_response(&config.scopes)
}

/// The token endpoint's refusal, in OAuth's error format when it used it. `hide` are values the
/// server might echo (a careless server names the code it rejects) that must not be shown.
fn refusal(status: StatusCode, body: &[u8], hide: &[&str]) -> OAuthError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => OAuthError::TokenRefused {
            status: status.as_u16(),
            error: printable(&body.error, hide),
            description: describe(body.error_description.as_deref(), hide),
        },
        Err(_) => OAuthError::TokenRefused {
            status: status.as_u16(),
            error: "no OAuth error".to_owned(),
            description: "the answer is not in OAuth's JSON error format".to_owned(),
        },
    }
}

/// The error and its causes on one line: reqwest's own message rarely says what went wrong
/// ("connection refused", "operation timed out" are in the causes). Nothing here comes from the
/// request body, so neither the code nor the verifier can appear.
fn transport_error(err: reqwest::Error) -> OAuthError {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    OAuthError::TokenUnreachable(text)
}

/// A server's `error_description`, or a stand-in when it sent none.
fn describe(description: Option<&str>, hide: &[&str]) -> String {
    match description {
        Some(text) => printable(text, hide),
        None => "no description given".to_owned(),
    }
}

/// Text from a server made safe for a terminal: `hide` values replaced, control characters
/// (which could move the cursor or recolour the screen) dropped, length capped.
fn printable(text: &str, hide: &[&str]) -> String {
    crate::secret::scrub(text, hide)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SERVER_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn is_unreserved(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    }

    #[test]
    fn verifier_is_43_url_safe_characters_and_fresh_each_time() {
        let verifier = new_verifier();
        assert_eq!(verifier.expose().len(), 43);
        assert!(verifier.expose().chars().all(is_unreserved));
        assert_ne!(verifier, new_verifier());
    }

    #[test]
    fn state_is_url_safe_and_fresh_each_time() {
        let state = new_state();
        assert_eq!(state.len(), 22);
        assert!(state.chars().all(is_unreserved));
        assert_ne!(state, new_state());
    }

    #[test]
    fn authorize_url_carries_every_parameter_encoded() {
        let mut config = OAuthConfig::vercel("cl_123");
        config.authorize_url = "https://example.test/oauth/authorize?prompt=consent".to_owned();
        let url = authorize_url(&config, "http://127.0.0.1:4242/callback", "st&te=1", "chal")
            .expect("valid URL");
        let query = url.query().expect("a query");
        assert!(query.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A4242%2Fcallback"));
        assert!(query.contains("state=st%26te%3D1"));
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let expected = [
            ("prompt", "consent"),
            ("response_type", "code"),
            ("client_id", "cl_123"),
            ("redirect_uri", "http://127.0.0.1:4242/callback"),
            ("scope", "openid email profile offline_access"),
            ("state", "st&te=1"),
            ("code_challenge", "chal"),
            ("code_challenge_method", "S256"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn no_scope_parameter_without_scopes() {
        let mut config = OAuthConfig::vercel("cl_123");
        config.scopes.clear();
        let url = authorize_url(&config, "http://127.0.0.1:1/callback", "s", "c").expect("valid");
        assert!(url.query_pairs().all(|(key, _)| key != "scope"));
    }

    #[test]
    fn token_response_debug_shows_no_token() {
        let body: TokenBody = serde_json::from_str(
            r#"{"access_token":"vca_SECRET1","refresh_token":"vcr_SECRET2","token_type":"Bearer",
                "scope":"openid  email","team_id":null,"user_id":"u1","expires_in":3600}"#,
        )
        .expect("parses");
        let token = body.into_response(&[]).expect("valid");
        let debug = format!("{token:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert_eq!(token.scopes, ["openid", "email"]);
        assert_eq!(
            token
                .refresh_token
                .map(|t| t.expose().to_owned())
                .as_deref(),
            Some("vcr_SECRET2")
        );
    }

    #[test]
    fn missing_scope_means_the_requested_ones() {
        let body: TokenBody = serde_json::from_str(r#"{"access_token":"a"}"#).expect("parses");
        let token = body.into_response(&["openid".to_owned()]).expect("valid");
        assert_eq!(token.scopes, ["openid"]);
        assert_eq!((token.expires_in, token.team_id), (None, None));
    }

    #[test]
    fn empty_access_token_is_malformed() {
        let body: TokenBody = serde_json::from_str(r#"{"access_token":""}"#).expect("parses");
        assert!(matches!(
            body.into_response(&[]),
            Err(OAuthError::MalformedTokenResponse)
        ));
    }

    #[test]
    fn server_text_loses_hidden_values_and_control_characters() {
        let text = printable("bad code abc123\u{1b}[2J\n!", &["abc123", ""]);
        assert_eq!(text, "bad code [REDACTED][2J!");
        assert_eq!(printable(&"x".repeat(1000), &[]).len(), MAX_SERVER_TEXT);
    }

    #[test]
    fn refusal_outside_oauth_format_names_the_status() {
        let err = refusal(StatusCode::BAD_GATEWAY, b"<html>", &[]);
        assert!(err.to_string().contains("HTTP 502"), "{err}");
    }

    #[test]
    fn stray_requests_are_not_authorization_responses() {
        let params = CallbackParams {
            code: None,
            state: Some("s".to_owned()),
            error: None,
            error_description: None,
        };
        assert!(params.outcome("s").is_none());
    }

    #[test]
    fn an_error_with_the_wrong_state_is_a_state_mismatch() {
        let params = CallbackParams {
            code: None,
            state: Some("forged".to_owned()),
            error: Some("access_denied".to_owned()),
            error_description: None,
        };
        assert!(matches!(
            params.outcome("s"),
            Some(Err(OAuthError::StateMismatch))
        ));
    }
}
