//! A local OAuth 2.0 authorization server standing in for "Sign in with Vercel": GET /authorize
//! approves at once (there is no user to ask) and redirects to the client's loopback
//! `redirect_uri`; POST /token trades a code for tokens after the checks a real server makes,
//! PKCE included. A [`Behaviour`] makes it misbehave in the ways a login has to survive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// How the server answers an authorization request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Approves and echoes `state`, as after the user clicks "Allow".
    #[default]
    Approve,
    /// Redirects with a `state` other than the one it was sent, as a forged redirect would.
    TamperState,
    /// Redirects with `error=access_denied`, as after the user clicks "Deny".
    DenyAccess,
    /// Remembers a challenge other than the one it was sent, so no verifier can match it.
    RememberWrongChallenge,
}

/// A running server; it lives as long as the test's runtime.
pub struct AuthServer {
    base: String,
    record: Arc<Mutex<Record>>,
}

/// Serves on a free loopback port.
pub async fn start(behaviour: Behaviour) -> AuthServer {
    let record = Arc::new(Mutex::new(Record::default()));
    let app = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(App {
            behaviour,
            record: record.clone(),
        });
    let base = super::http::serve(app).await;
    AuthServer { base, record }
}

impl AuthServer {
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    /// POSTs to /token, valid or not.
    pub fn token_requests(&self) -> usize {
        lock(&self.record).token_requests
    }

    /// Whether the last token request's verifier matched its code's challenge; `None` when no
    /// token request got that far.
    pub fn verifier_matched(&self) -> Option<bool> {
        lock(&self.record).verifier_matched
    }

    /// Every code handed out, so tests can check none of them is shown to the user.
    pub fn issued_codes(&self) -> Vec<String> {
        lock(&self.record).issued_codes.clone()
    }

    /// Every `code_verifier` received, so tests can check none of them is shown to the user.
    pub fn verifiers_seen(&self) -> Vec<String> {
        lock(&self.record).verifiers_seen.clone()
    }

    /// The client secrets sent to the token endpoint (`client_secret_post`).
    pub fn client_secrets_seen(&self) -> Vec<String> {
        lock(&self.record).client_secrets_seen.clone()
    }

    /// The `redirect_uri` of the last authorization request.
    pub fn last_redirect_uri(&self) -> Option<String> {
        lock(&self.record).redirect_uris.last().cloned()
    }
}

#[derive(Clone)]
struct App {
    behaviour: Behaviour,
    record: Arc<Mutex<Record>>,
}

/// What the server has seen and handed out.
#[derive(Default)]
struct Record {
    /// Codes not yet redeemed.
    grants: HashMap<String, Grant>,
    issued_codes: Vec<String>,
    redirect_uris: Vec<String>,
    verifiers_seen: Vec<String>,
    client_secrets_seen: Vec<String>,
    token_requests: usize,
    verifier_matched: Option<bool>,
}

/// What an authorization request asked for, remembered under its code.
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
}

/// A test that panicked while holding the lock should not hide what the server saw.
fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

/// PKCE `S256`, computed here rather than with the client's `code_challenge` so that a mistake
/// there cannot agree with itself.
fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[derive(Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl AuthorizeParams {
    /// The grant this request asks for, or why it is refused. Like Vercel, PKCE is required and
    /// only `S256` is accepted; like a server with a loopback redirect URI registered (RFC 8252
    /// §7.3), any port on `http://127.0.0.1/callback` is.
    fn grant(&self, behaviour: Behaviour) -> Result<Grant, &'static str> {
        if self.response_type.as_deref() != Some("code") {
            return Err("response_type must be code");
        }
        let client_id = self.client_id.clone().ok_or("client_id is required")?;
        let redirect_uri = self
            .redirect_uri
            .clone()
            .ok_or("redirect_uri is required")?;
        if !is_loopback_callback(&redirect_uri) {
            return Err("redirect_uri is not registered for this app");
        }
        let challenge = self
            .code_challenge
            .clone()
            .ok_or("code_challenge is required")?;
        if self.code_challenge_method.as_deref() != Some("S256") {
            return Err("code_challenge_method must be S256");
        }
        let challenge = match behaviour {
            Behaviour::RememberWrongChallenge => challenge_of("not the client's verifier"),
            _ => challenge,
        };
        Ok(Grant {
            client_id,
            redirect_uri,
            challenge,
            scope: self.scope.clone().unwrap_or_default(),
        })
    }

    /// The `state` to send back, altered when the test wants a forged redirect.
    fn returned_state(&self, behaviour: Behaviour) -> Option<String> {
        let state = self.state.clone()?;
        Some(match behaviour {
            Behaviour::TamperState => format!("{state}-tampered"),
            _ => state,
        })
    }
}

fn is_loopback_callback(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|url| {
        url.scheme() == "http"
            && url.host_str() == Some("127.0.0.1")
            && url.port().is_some()
            && url.path() == "/callback"
    })
}

/// GET /authorize: approves (or, per [`Behaviour`], denies) and sends the browser back with 302.
async fn authorize(State(app): State<App>, Query(params): Query<AuthorizeParams>) -> Response {
    let grant = match params.grant(app.behaviour) {
        Ok(grant) => grant,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why),
    };
    let Ok(mut location) = Url::parse(&grant.redirect_uri) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad redirect_uri",
        );
    };
    let mut record = lock(&app.record);
    record.redirect_uris.push(grant.redirect_uri.clone());
    if app.behaviour == Behaviour::DenyAccess {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied the request");
    } else {
        let code = format!("code_{}", random_hex());
        location.query_pairs_mut().append_pair("code", &code);
        record.issued_codes.push(code.clone());
        record.grants.insert(code, grant);
    }
    if let Some(state) = params.returned_state(app.behaviour) {
        location.query_pairs_mut().append_pair("state", &state);
    }
    (StatusCode::FOUND, [(LOCATION, location.to_string())]).into_response()
}

#[derive(Deserialize)]
struct TokenParams {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    client_secret: Option<String>,
}

/// POST /token: redeems a code once, for the client and redirect URI it was issued to, and only
/// with the verifier whose challenge came with the authorization request.
async fn token(State(app): State<App>, form: Result<Form<TokenParams>, FormRejection>) -> Response {
    let mut record = lock(&app.record);
    record.token_requests += 1;
    let Ok(Form(params)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    };
    match record.redeem(params) {
        Ok(grant) => Json(tokens(&grant)).into_response(),
        Err(why) => oauth_error(StatusCode::BAD_REQUEST, why.0, &why.1),
    }
}

impl Record {
    /// The grant behind a valid token request, or OAuth's error code and description.
    fn redeem(&mut self, params: TokenParams) -> Result<Grant, (&'static str, String)> {
        if let Some(verifier) = &params.code_verifier {
            self.verifiers_seen.push(verifier.clone());
        }
        if let Some(secret) = &params.client_secret {
            self.client_secrets_seen.push(secret.clone());
        }
        if params.grant_type.as_deref() != Some("authorization_code") {
            return Err((
                "unsupported_grant_type",
                "grant_type must be authorization_code".to_owned(),
            ));
        }
        let code = params.code.unwrap_or_default();
        // Single use: the code is gone whatever the rest of the request says (RFC 6749 §4.1.2).
        let grant = self
            .grants
            .remove(&code)
            .ok_or(("invalid_grant", "unknown or already used code".to_owned()))?;
        if params.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(("invalid_grant", "redirect_uri does not match".to_owned()));
        }
        if params.client_id.as_deref() != Some(grant.client_id.as_str()) {
            return Err((
                "invalid_grant",
                "the code was issued to another client".to_owned(),
            ));
        }
        let matched = params
            .code_verifier
            .is_some_and(|verifier| challenge_of(&verifier) == grant.challenge);
        self.verifier_matched = Some(matched);
        if !matched {
            // Names the code, as a careless server might, so tests see the client hide it.
            return Err((
                "invalid_grant",
                format!("code_verifier does not match the code_challenge of {code}"),
            ));
        }
        Ok(grant)
    }
}

/// The success body in the format of Vercel's token endpoint, with an extra field a client
/// must ignore (`token_type`).
fn tokens(grant: &Grant) -> serde_json::Value {
    json!({
        "access_token": format!("vca_{}", random_hex()),
        "refresh_token": format!("vcr_{}", random_hex()),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": grant.scope,
        "team_id": "team_test",
        "user_id": "user_test",
    })
}

/// OAuth's JSON error body (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body)).into_response()
}
