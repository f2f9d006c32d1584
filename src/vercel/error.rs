//! Typed errors of the Vercel client. Messages never contain the token or any header value.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum VercelError {
    /// Vercel answered with an error envelope `{"error":{"code","message"}}`.
    #[error("Vercel API answered {status} ({code}): {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("could not reach the Vercel API: {0}")]
    Network(String),
    #[error("the Vercel API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the Vercel API sent a response shiplog could not read: {0}")]
    InvalidResponse(String),
    #[error("calls to the Vercel {family} API are paused after repeated failures (circuit open); retrying in {retry_in:?}")]
    CircuitOpen {
        family: &'static str,
        retry_in: Duration,
    },
}

impl VercelError {
    pub fn status(&self) -> Option<u16> {
        match self {
            VercelError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// 429, 5xx, network trouble and timeouts are worth another try; other 4xx are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            VercelError::Api { status, .. } => *status == 429 || *status >= 500,
            VercelError::Network(_) | VercelError::Timeout(_) | VercelError::CircuitOpen { .. } => {
                true
            }
            VercelError::InvalidResponse(_) => false,
        }
    }

    /// Counts towards opening the circuit breaker (the service is unwell, not the request).
    pub fn is_service_failure(&self) -> bool {
        match self {
            VercelError::Api { status, .. } => *status == 429 || *status >= 500,
            VercelError::Network(_) | VercelError::Timeout(_) => true,
            _ => false,
        }
    }

    /// The wait the server asked for (`Retry-After`), or the breaker's cool-down.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            VercelError::Api { retry_after, .. } => *retry_after,
            VercelError::CircuitOpen { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }

    /// A one-line hint for a person, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self.status() {
            Some(401) | Some(403) => Some(
                "check VERCEL_TOKEN (or --token) and, for a team's deployment, VERCEL_TEAM_ID (or --team)",
            ),
            Some(404) => Some("check the deployment id or URL, and the team it belongs to (--team)"),
            Some(429) => Some("Vercel is rate limiting this token; shiplog waits as asked and retries"),
            _ => match self {
                VercelError::Network(_) | VercelError::Timeout(_) => {
                    Some("check your network, or VERCEL_API_URL if you set it")
                }
                _ => None,
            },
        }
    }

    /// Builds the error for a non-success response from its status, headers and body.
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(alias = "err")]
            error: Option<Body>,
        }
        #[derive(Deserialize)]
        struct Body {
            code: Option<String>,
            message: Option<String>,
        }
        let parsed = serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|e| e.error);
        // What the server says reaches a terminal: redacted, one clean line, a sentence long.
        let shown = |text: &str| -> String {
            let redacted = crate::log::redact::global().redact(text);
            crate::printable::one_line(&redacted)
                .chars()
                .take(300)
                .collect()
        };
        let code = parsed
            .as_ref()
            .and_then(|b| b.code.as_deref())
            .map(shown)
            .unwrap_or_else(|| default_code(status).to_owned());
        let message = parsed
            .and_then(|b| b.message)
            .map(|m| shown(&m))
            .unwrap_or_else(|| default_message(status).to_owned());
        VercelError::Api {
            status,
            code,
            message,
            retry_after,
        }
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 | 403 => "forbidden",
        404 => "not_found",
        429 => "rate_limited",
        500..=599 => "internal_server_error",
        _ => "http_error",
    }
}

fn default_message(status: u16) -> &'static str {
    match status {
        401 | 403 => "Not authorized",
        404 => "Not found",
        429 => "Rate limit exceeded",
        500..=599 => "The server had an internal error",
        _ => "Unexpected response",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_error_body_reaches_the_terminal_clean_and_short() {
        let body = serde_json::json!({"error": {
            "code": "bad\u{1b}[2J",
            "message": format!("\u{1b}]52;c;cm0=\u{7}token=abc123 {}", "x".repeat(5000)),
        }});
        let err = VercelError::from_response(400, None, &serde_json::to_vec(&body).expect("json"));
        let text = err.to_string();
        assert!(!text.contains(|c: char| c.is_control()), "{text:?}");
        assert!(!text.contains("abc123"), "{text}");
        assert!(text.len() < 500, "{}", text.len());
    }

    #[test]
    fn parses_the_vercel_error_envelopes_from_the_fixtures() {
        let fixtures = include_str!("../../tests/fixtures/api-error-bodies.json");
        let all: serde_json::Value = serde_json::from_str(fixtures).expect("fixture is JSON");
        let body = serde_json::to_vec(&all["forbidden_403"]).expect("serialises");
        let err = VercelError::from_response(403, None, &body);
        assert_eq!(
            err.to_string(),
            "Vercel API answered 403 (forbidden): Not authorized"
        );
        assert!(!err.is_retryable());
        let body = serde_json::to_vec(&all["rate_limited_429_generic_errors_page"]).expect("json");
        let err = VercelError::from_response(429, Some(Duration::from_secs(7)), &body);
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_body_that_is_not_an_envelope_still_gives_a_clear_error() {
        let err = VercelError::from_response(502, None, b"<html>Bad gateway</html>");
        assert_eq!(
            err.to_string(),
            "Vercel API answered 502 (internal_server_error): The server had an internal error"
        );
        assert!(err.is_retryable());
    }
}
