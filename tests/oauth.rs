//! Browser login against a local authorization server: the whole PKCE round trip through a
//! loopback redirect, and each way it must fail, never showing the code or the verifier.

mod support;

use std::time::Duration;

use reqwest::Url;
use shiplog::login::oauth::{login, OAuthConfig, OAuthError};
use support::oauth_server::{self, AuthServer, Behaviour};
use tokio::sync::oneshot;

/// Generous, so a loaded machine cannot fail a test; only the timeout test waits its own wait out.
const WAIT: Duration = Duration::from_secs(30);

fn config(server: &AuthServer) -> OAuthConfig {
    OAuthConfig {
        authorize_url: server.authorize_url(),
        token_url: server.token_url(),
        client_id: "cl_test".to_owned(),
        client_secret: None,
        scopes: vec!["openid".to_owned(), "offline_access".to_owned()],
    }
}

/// The last page the browser showed.
#[derive(Debug)]
struct Page {
    status: u16,
    body: String,
}

type Shown = oneshot::Receiver<Result<Page, String>>;

/// Stands in for the user's browser: follows the authorize URL through the server's redirect to
/// the loopback callback, after first visiting `stray` paths of the callback's address (requests
/// that are not a login redirect). What the last page said arrives on the receiver.
fn browser(stray: &'static [&'static str]) -> (impl FnOnce(&str) -> std::io::Result<()>, Shown) {
    let (shown, receiver) = oneshot::channel();
    let open = move |url: &str| {
        let url = url.to_owned();
        tokio::spawn(async move {
            let _ = shown.send(browse(&url, stray).await);
        });
        Ok(())
    };
    (open, receiver)
}

async fn browse(url: &str, stray: &[&str]) -> Result<Page, String> {
    let redirect_uri = redirect_uri_of(url)?;
    for path in stray {
        let page = fetch(redirect_uri.join(path).map_err(|e| e.to_string())?.as_str()).await?;
        if page.status != 400 && page.status != 404 {
            return Err(format!("stray request to {path} was answered {page:?}"));
        }
    }
    fetch(url).await
}

fn redirect_uri_of(url: &str) -> Result<Url, String> {
    let url = Url::parse(url).map_err(|e| e.to_string())?;
    let (_, value) = url
        .query_pairs()
        .find(|(key, _)| key == "redirect_uri")
        .ok_or("no redirect_uri in the authorize URL")?;
    Url::parse(&value).map_err(|e| e.to_string())
}

async fn fetch(url: &str) -> Result<Page, String> {
    let response = reqwest::get(url).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(Page { status, body })
}

async fn shown(receiver: Shown) -> Page {
    receiver
        .await
        .expect("the browser ran")
        .expect("the browser got a page")
}

/// Neither a code the server issued nor a verifier it was sent appears in what the user sees.
fn assert_keeps_secrets(err: &OAuthError, server: &AuthServer) {
    let shown = format!("{err} {err:?}");
    let secrets = [server.issued_codes(), server.verifiers_seen()].concat();
    for secret in secrets {
        assert!(
            !shown.contains(&secret),
            "the error shows a secret: {shown}"
        );
    }
}

#[tokio::test]
async fn full_login_returns_the_tokens_and_the_server_saw_a_matching_verifier() {
    let server = oauth_server::start(Behaviour::Approve).await;
    let (open, page) = browser(&[]);

    let token = login(&config(&server), open, WAIT)
        .await
        .expect("login works");

    assert!(token.access_token.expose().starts_with("vca_"));
    let refresh = token.refresh_token.as_ref().expect("a refresh token");
    assert!(refresh.expose().starts_with("vcr_"));
    assert_eq!(token.scopes, ["openid", "offline_access"]);
    assert_eq!(token.team_id.as_deref(), Some("team_test"));
    assert_eq!(token.user_id.as_deref(), Some("user_test"));
    assert_eq!(token.expires_in, Some(3600));
    assert!(!format!("{token:?}").contains("vca_"));
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.verifier_matched(), Some(true));
    let page = shown(page).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("close this tab"), "{}", page.body);
}

#[tokio::test]
async fn the_loopback_port_is_closed_once_the_login_is_done() {
    let server = oauth_server::start(Behaviour::Approve).await;
    let (open, _page) = browser(&[]);

    login(&config(&server), open, WAIT)
        .await
        .expect("login works");

    let redirect_uri = server
        .last_redirect_uri()
        .expect("an authorization request");
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:"),
        "{redirect_uri}"
    );
    let late = reqwest::get(format!("{redirect_uri}?code=late&state=late")).await;
    assert!(late.is_err(), "a late redirect was answered: {late:?}");
}

#[tokio::test]
async fn stray_requests_to_the_loopback_port_do_not_end_the_login() {
    let server = oauth_server::start(Behaviour::Approve).await;
    let (open, page) = browser(&["/callback", "/callback?state=whatever", "/favicon.ico"]);

    login(&config(&server), open, WAIT)
        .await
        .expect("login works");

    assert_eq!(shown(page).await.status, 200);
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn tampered_state_is_refused_before_any_token_request() {
    let server = oauth_server::start(Behaviour::TamperState).await;
    let (open, page) = browser(&[]);

    // Only a forged response ever comes: the login waits out its time, then says so. The time
    // is long enough for the forged redirect to arrive on a slow machine.
    let err = login(&config(&server), open, Duration::from_secs(5))
        .await
        .expect_err("a forged redirect must not log in");

    assert!(matches!(err, OAuthError::StateMismatch), "{err:?}");
    assert!(err.to_string().contains("possible forgery"), "{err}");
    assert_eq!(server.token_requests(), 0);
    assert_eq!(server.issued_codes().len(), 1);
    assert_keeps_secrets(&err, &server);
    let page = shown(page).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("did not work"), "{}", page.body);
}

/// Something on this machine that finds the port sends a response with the wrong `state`
/// first: it is refused, and the real sign-in still completes.
#[tokio::test]
async fn a_forged_response_does_not_cancel_the_sign_in() {
    let server = oauth_server::start(Behaviour::Approve).await;
    let (open, page) = browser(&["callback?code=forged-code&state=forged-state"]);

    let tokens = login(&config(&server), open, WAIT)
        .await
        .expect("the real response still logs in");

    assert!(tokens.access_token.expose().starts_with("vca_"));
    assert_eq!(server.token_requests(), 1);
    assert_eq!(shown(page).await.status, 200);
}

#[tokio::test]
async fn a_verifier_that_does_not_match_is_refused_by_the_token_endpoint() {
    let server = oauth_server::start(Behaviour::RememberWrongChallenge).await;
    let (open, _page) = browser(&[]);

    let err = login(&config(&server), open, WAIT)
        .await
        .expect_err("the token endpoint refuses");

    assert!(
        matches!(&err, OAuthError::TokenRefused { status: 400, error, .. } if error == "invalid_grant"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("invalid_grant"), "{message}");
    // The server named the code in its description; the client hid it.
    assert!(message.contains("[REDACTED]"), "{message}");
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.verifier_matched(), Some(false));
    assert_eq!(server.verifiers_seen().len(), 1);
    assert_keeps_secrets(&err, &server);
}

#[tokio::test]
async fn denied_access_says_what_the_server_said() {
    let server = oauth_server::start(Behaviour::DenyAccess).await;
    let (open, page) = browser(&[]);

    let err = login(&config(&server), open, WAIT)
        .await
        .expect_err("access was denied");

    assert_eq!(
        err.to_string(),
        "the authorization server refused: access_denied: The user denied the request"
    );
    assert_eq!(server.token_requests(), 0);
    assert_eq!(shown(page).await.status, 400);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_reported_as_such() {
    let server = oauth_server::start(Behaviour::Approve).await;
    let mut config = config(&server);
    // Nothing listens on port 1 of loopback.
    config.token_url = "http://127.0.0.1:1/token".to_owned();
    let (open, _page) = browser(&[]);

    let err = login(&config, open, WAIT)
        .await
        .expect_err("nobody answers");

    assert!(matches!(err, OAuthError::TokenUnreachable(_)), "{err:?}");
    assert_eq!(server.issued_codes().len(), 1);
    assert_keeps_secrets(&err, &server);
}

#[tokio::test]
async fn nothing_arriving_in_time_is_a_timeout_even_when_no_browser_opened() {
    let server = oauth_server::start(Behaviour::Approve).await;
    let no_browser = |_: &str| Err(std::io::Error::other("no browser on this machine"));

    let err = login(&config(&server), no_browser, Duration::from_millis(300))
        .await
        .expect_err("nobody came back");

    assert!(matches!(err, OAuthError::Timeout(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "timed out after 0.3 s waiting for the browser to come back from the login page"
    );
    assert_eq!(server.token_requests(), 0);
}
