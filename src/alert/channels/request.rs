//! What carries a notification: an HTTP request or an e-mail, as a channel makes it and the
//! delivery (`super::super::delivery`) sends it.

use crate::secret::Secret;

/// A notification ready to go.
pub enum Request {
    Http(HttpRequest),
    /// An e-mail and the SMTP server's URL (`smtp://user:pass@host:port`, a secret).
    Email {
        message: Box<lettre::Message>,
        server: Secret,
    },
}

/// A `POST` to a channel.
pub struct HttpRequest {
    /// A secret: for webhooks, the URL is the credential.
    pub url: Secret,
    pub body: Body,
    /// HTTP Basic auth: the user and the password.
    pub basic_auth: Option<(String, Secret)>,
    /// Secrets in the body (a routing key) the service may echo back: kept out of its answer
    /// as shown.
    pub hidden: Vec<Secret>,
    /// How long the channel waits after a 429 that says nothing of when to try again.
    pub rate_limited_pause: std::time::Duration,
}

/// After a 429 without `Retry-After`.
pub const RATE_LIMITED_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

pub enum Body {
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`
    Form(String),
}

impl Request {
    /// JSON posted to `url`, without authentication (a webhook).
    pub fn json(url: &Secret, body: serde_json::Value) -> Request {
        Request::Http(HttpRequest {
            url: url.clone(),
            body: Body::Json(body),
            basic_auth: None,
            hidden: Vec::new(),
            rate_limited_pause: RATE_LIMITED_PAUSE,
        })
    }
}

/// Why a notification cannot be made into a request: the settings name something unusable.
/// Never worth another try.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `setting` names the environment variable.
    #[error("{setting} {value:?} is not an address")]
    NotAnAddress {
        setting: &'static str,
        value: String,
    },
    #[error("could not build the e-mail: {0}")]
    Email(#[from] lettre::error::Error),
}
