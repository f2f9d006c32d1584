//! Where Redis is, in forms that are safe to show: the URL without its secrets (for messages,
//! `Debug` and logs), and Redis' errors sorted and scrubbed of the password.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError, ServerErrorKind};

use super::RedisIoError;

const MASK: &str = "***";

/// Where a Redis user connects, in forms that are safe to show.
pub(crate) struct RedisTarget {
    /// `host:port` (or the socket path).
    address: String,
    /// The URL with its password (and `pass=` query value) replaced by `***`.
    redacted_url: String,
    /// Every form of the password seen in the URL, scrubbed from Redis' error texts.
    secrets: Vec<String>,
}

impl RedisTarget {
    pub(crate) fn open(url: &str) -> Result<(Client, Self), RedisIoError> {
        let redacted_url = redact_url(url);
        let mut secrets = url_secrets(url);
        let client = Client::open(url).map_err(|err| RedisIoError::InvalidUrl {
            url: redacted_url.clone(),
            reason: scrub(&describe_error(&err), &secrets),
        })?;
        let info = client.get_connection_info();
        if let Some(password) = info.redis_settings().password() {
            secrets.push(password.to_owned());
        }
        let target = Self {
            address: info.addr().to_string(),
            redacted_url,
            secrets,
        };
        Ok((client, target))
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// A connection manager for `client` that fails fast (see [`fail_fast`]), connected within
    /// `timeout`.
    pub(crate) async fn manager(
        &self,
        client: Client,
        timeout: Duration,
    ) -> Result<ConnectionManager, ConnectFailure> {
        match tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client, fail_fast(timeout, timeout)),
        )
        .await
        {
            Ok(Ok(manager)) => Ok(manager),
            Ok(Err(err)) => Err(ConnectFailure::Refused(err)),
            Err(_) => Err(ConnectFailure::NoAnswer),
        }
    }

    /// A short, password-free account of a Redis error, e.g. "connection refused".
    pub(crate) fn describe(&self, err: &RedisError) -> String {
        scrub(&describe_error(err), &self.secrets)
    }

    /// `err` sorted into an outage or a refusal, without the password.
    pub(crate) fn failure(&self, err: &RedisError) -> RedisIoError {
        let address = self.address.clone();
        let reason = self.describe(err);
        if is_outage(err) {
            return RedisIoError::Outage { address, reason };
        }
        RedisIoError::Refused {
            address,
            code: err.code().map(|code| scrub(code, &self.secrets)),
            detail: err.detail().map(|detail| scrub(detail, &self.secrets)),
            reason,
        }
    }
}

/// Errors that mean "Redis is not usable right now" rather than "Redis said no". A NOPERM is
/// deliberately not an outage: falling back to local files would bypass the ACL.
fn is_outage(err: &RedisError) -> bool {
    match err.kind() {
        ErrorKind::Io
        | ErrorKind::Parse
        | ErrorKind::AuthenticationFailed
        | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        ),
        _ => err.is_connection_dropped() || err.is_timeout(),
    }
}

/// Why a connection could not be made.
pub(crate) enum ConnectFailure {
    NoAnswer,
    Refused(RedisError),
}

/// The crate's defaults retry a failed connect 6 times with backoff (seconds); whoever must fail
/// fast (and fall back, or deny) wants one retry and explicit timeouts.
pub(crate) fn fail_fast(connect: Duration, command: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(command))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

fn describe_error(err: &RedisError) -> String {
    if err.is_connection_refusal() {
        return "connection refused".to_owned();
    }
    if err.is_timeout() {
        return "it did not answer in time".to_owned();
    }
    if err.kind() == ErrorKind::AuthenticationFailed {
        return format!("authentication failed ({err})");
    }
    err.to_string()
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), MASK)
        })
}

/// Splits `scheme://userinfo@host/path?query#fragment` loosely, so even a URL that does not
/// parse is redacted.
struct UrlParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Self {
        let scheme_len = url.find("://").map_or(0, |i| i + 3);
        let (scheme, after_scheme) = url.split_at(scheme_len);
        let authority_len = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(authority_len);
        let (userinfo, host) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at..]),
            None => (None, authority),
        };
        Self {
            scheme,
            userinfo,
            host,
            rest,
        }
    }

    /// `(name, value)` of each query pair that carries a password.
    fn secret_query_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let query = self.rest.split_once('?').map_or("", |(_, query)| query);
        let query = query.split('#').next().unwrap_or("");
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| is_secret_param(name))
    }
}

fn is_secret_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("pass") || name.eq_ignore_ascii_case("password")
}

pub(crate) fn redact_url(url: &str) -> String {
    let parts = UrlParts::split(url);
    let mut out = parts.scheme.to_owned();
    // `user:password@`: keep the user. Without a colon the whole userinfo may be a password
    // written the wrong way round, so hide it.
    if let Some(userinfo) = parts.userinfo {
        if let Some((user, _)) = userinfo.split_once(':') {
            out.push_str(user);
            out.push(':');
        }
        out.push_str(MASK);
    }
    out.push_str(parts.host);
    out.push_str(&redact_query(parts.rest));
    out
}

fn redact_query(rest: &str) -> String {
    let Some((path, query)) = rest.split_once('?') else {
        return rest.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn url_secrets(url: &str) -> Vec<String> {
    let parts = UrlParts::split(url);
    let mut secrets = Vec::new();
    if let Some(userinfo) = parts.userinfo {
        match userinfo.split_once(':') {
            Some((_, password)) => secrets.push(password.to_owned()),
            None => secrets.push(userinfo.to_owned()),
        }
    }
    secrets.extend(
        parts
            .secret_query_pairs()
            .map(|(_, value)| value.to_owned()),
    );
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact_url("redis://user:secretpw@example.com:6380/2"),
            "redis://user:***@example.com:6380/2"
        );
        assert_eq!(
            redact_url("redis://:secretpw@localhost"),
            "redis://:***@localhost"
        );
        assert_eq!(
            redact_url("redis://secretpw@localhost"),
            "redis://***@localhost"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=secretpw#x"),
            "redis+unix:///run/redis.sock?db=1&pass=***#x"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn a_password_with_an_at_sign_is_hidden_whole() {
        let url = "redis://user:p@ss@host:1";
        assert_eq!(redact_url(url), "redis://user:***@host:1");
        assert_eq!(url_secrets(url), vec!["p@ss".to_owned()]);
    }

    #[test]
    fn scrubs_every_secret_form() {
        let secrets = url_secrets("redis://u:s3cret@h?password=other");
        assert_eq!(scrub("bad s3cret and other", &secrets), "bad *** and ***");
    }

    #[test]
    fn a_lost_connection_is_an_outage_and_a_refusal_is_not() {
        let (_, target) = RedisTarget::open("redis://user:s3cret@127.0.0.1:6390").unwrap();
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            target.failure(&refused.into()),
            RedisIoError::Outage {
                address: "127.0.0.1:6390".to_owned(),
                reason: "connection refused".to_owned(),
            }
        );
        let noperm = RedisError::from((
            ErrorKind::Server(ServerErrorKind::NoPerm),
            "no permissions",
            "user with s3cret may not".to_owned(),
        ));
        let failure = target.failure(&noperm);
        assert!(!failure.is_outage());
        assert!(
            matches!(&failure, RedisIoError::Refused { code: Some(code), .. } if code == "NOPERM")
        );
        assert!(!failure.to_string().contains("s3cret"), "{failure}");
        assert!(!format!("{failure:?}").contains("s3cret"), "{failure:?}");
    }

    #[test]
    fn no_answer_is_an_outage_told_in_seconds() {
        let err = RedisIoError::NoAnswer {
            address: "127.0.0.1:6390".to_owned(),
            within: Duration::from_millis(1500),
        };
        assert!(err.is_outage());
        assert_eq!(
            err.to_string(),
            "Redis at 127.0.0.1:6390: no answer within 1.5 s"
        );
    }
}
