//! Delivery of notifications to Slack, Discord, SMS (Twilio) and a generic JSON webhook over
//! HTTP, and e-mail over SMTP: retries for 5xx (SMTP 4xx) and network trouble with exponential
//! backoff, a 429 pauses the whole channel until its `Retry-After` (for every instance sharing
//! the state store), a permanent 4xx (SMTP 5xx) fails with the service's reason. A channel
//! switched off or without a destination says so. Destinations are secrets: they never reach a
//! log line, the screen or an error message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::channels::{self, Notification};
use super::rule::Channel;
use crate::clock::now_ms;
use crate::retry::{parse_retry_after, RetryPolicy};
use crate::secret::Secret;
use crate::store::StateStore;

/// How a notification to one channel went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// In the delivery queue, not yet sent.
    Queued,
    Sent {
        at_ms: i64,
    },
    /// Being retried (attempt `attempt`), for `reason`.
    Retrying {
        attempt: u32,
        reason: String,
    },
    Failed {
        reason: String,
    },
    /// Not sent on purpose: switched off, or no destination; counted as suppressed.
    Off {
        why: String,
    },
    /// The demo has no real destinations: the alert is shown in the log and on screen only.
    Demo,
}

impl DeliveryStatus {
    pub fn label(&self) -> String {
        match self {
            DeliveryStatus::Queued => "queued".to_owned(),
            DeliveryStatus::Sent { .. } => "sent".to_owned(),
            DeliveryStatus::Retrying { attempt, .. } => format!("retrying ({attempt})"),
            DeliveryStatus::Failed { reason } => format!("failed: {reason}"),
            DeliveryStatus::Off { why } => format!("off: {why}"),
            DeliveryStatus::Demo => "demo channel (shown here)".to_owned(),
        }
    }
}

/// Whether a channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// It does not, and why: switched off, or no destination.
    Off(String),
    /// The demo delivers it to the built-in demo channel.
    Demo,
}

/// Where each channel delivers, and whether it may.
#[derive(Debug, Clone, Default)]
pub struct ChannelSettings {
    pub slack_webhook: Option<Secret>,
    pub discord_webhook: Option<Secret>,
    pub webhook_url: Option<Secret>,
    pub twilio: Option<Twilio>,
    pub smtp: Option<Smtp>,
    /// Kill switches: `SLACK_ALERTS_ENABLED`, ... (SMS is opt-in).
    pub slack_on: bool,
    pub discord_on: bool,
    pub email_on: bool,
    pub sms_on: bool,
    pub webhook_on: bool,
    /// The demo: channels without a destination deliver to the built-in demo channel.
    pub demo: bool,
}

/// E-mail over SMTP: `SMTP_URL` (`smtp://user:pass@host:port`; `smtps://` for TLS,
/// `?tls=required` for STARTTLS), `ALERT_EMAIL_FROM`, `ALERT_EMAIL_TO` (comma-separated).
#[derive(Debug, Clone)]
pub struct Smtp {
    pub url: Secret,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Twilio {
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
    pub to: String,
}

impl ChannelSettings {
    /// From the environment (`SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`, `ALERT_WEBHOOK_URL`,
    /// `SMTP_URL`, `ALERT_EMAIL_*`, `TWILIO_*`, `ALERT_SMS_TO`, the `*_ALERTS_ENABLED` switches),
    /// then the config file's `[alert_channels]`.
    pub fn from_env_and(file: &AlertChannels) -> Self {
        Self::from_vars(|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| file.value_for(name))
        })
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let secret = |name: &str| var(name).filter(|v| !v.trim().is_empty()).map(Secret::new);
        let switch = |name: &str, default: bool| match var(name).as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            _ => default,
        };
        let twilio = match (
            var("TWILIO_ACCOUNT_SID"),
            secret("TWILIO_AUTH_TOKEN"),
            var("TWILIO_FROM"),
            var("ALERT_SMS_TO"),
        ) {
            (Some(account_sid), Some(auth_token), Some(from), Some(to)) => Some(Twilio {
                api_url: var("TWILIO_API_URL")
                    .unwrap_or_else(|| "https://api.twilio.com".to_owned()),
                account_sid,
                auth_token,
                from,
                to,
            }),
            _ => None,
        };
        let smtp = match (
            secret("SMTP_URL"),
            var("ALERT_EMAIL_FROM"),
            var("ALERT_EMAIL_TO"),
        ) {
            (Some(url), Some(from), Some(to)) => Some(Smtp {
                url,
                from,
                to: to
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }),
            _ => None,
        };
        ChannelSettings {
            smtp,
            slack_webhook: secret("SLACK_WEBHOOK_URL"),
            discord_webhook: secret("DISCORD_WEBHOOK_URL"),
            webhook_url: secret("ALERT_WEBHOOK_URL"),
            twilio,
            slack_on: switch("SLACK_ALERTS_ENABLED", true),
            discord_on: switch("DISCORD_ALERTS_ENABLED", true),
            email_on: switch("EMAIL_ALERTS_ENABLED", true),
            sms_on: switch("SMS_ALERTS_ENABLED", false),
            webhook_on: true,
            demo: false,
        }
    }
}

/// `[alert_channels]` in the config file. Webhook URLs and tokens are secrets: they print as
/// `[REDACTED]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChannels {
    pub slack_webhook_url: Option<Secret>,
    pub discord_webhook_url: Option<Secret>,
    pub webhook_url: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub email_from: Option<String>,
    /// Comma-separated.
    pub email_to: Option<String>,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    pub twilio_from: Option<String>,
    pub twilio_api_url: Option<String>,
    pub sms_to: Option<String>,
    pub slack_enabled: Option<bool>,
    pub discord_enabled: Option<bool>,
    pub email_enabled: Option<bool>,
    pub sms_enabled: Option<bool>,
}

impl AlertChannels {
    /// The file's value for an environment variable's name (`SLACK_WEBHOOK_URL`, ...).
    pub fn value_for(&self, env_name: &str) -> Option<String> {
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
        let switch = |b: &Option<bool>| b.map(|b| b.to_string());
        match env_name {
            "SLACK_WEBHOOK_URL" => secret(&self.slack_webhook_url),
            "DISCORD_WEBHOOK_URL" => secret(&self.discord_webhook_url),
            "ALERT_WEBHOOK_URL" => secret(&self.webhook_url),
            "SMTP_URL" => secret(&self.smtp_url),
            "ALERT_EMAIL_FROM" => self.email_from.clone(),
            "ALERT_EMAIL_TO" => self.email_to.clone(),
            "TWILIO_ACCOUNT_SID" => self.twilio_account_sid.clone(),
            "TWILIO_AUTH_TOKEN" => secret(&self.twilio_auth_token),
            "TWILIO_FROM" => self.twilio_from.clone(),
            "TWILIO_API_URL" => self.twilio_api_url.clone(),
            "ALERT_SMS_TO" => self.sms_to.clone(),
            "SLACK_ALERTS_ENABLED" => switch(&self.slack_enabled),
            "DISCORD_ALERTS_ENABLED" => switch(&self.discord_enabled),
            "EMAIL_ALERTS_ENABLED" => switch(&self.email_enabled),
            "SMS_ALERTS_ENABLED" => switch(&self.sms_enabled),
            _ => None,
        }
    }
}

/// A notification ready to go.
enum Prepared {
    Http(Request),
    Email(Box<lettre::Message>, Secret),
}

/// The e-mail of a notification: plain text, subject without line breaks.
fn email_message(smtp: &Smtp, n: &Notification<'_>) -> Result<lettre::Message, String> {
    let mut builder = lettre::Message::builder()
        .from(
            smtp.from
                .parse()
                .map_err(|_| format!("ALERT_EMAIL_FROM {:?} is not an address", smtp.from))?,
        )
        .subject(channels::email::subject(n));
    for to in &smtp.to {
        builder = builder.to(to
            .parse()
            .map_err(|_| format!("ALERT_EMAIL_TO {to:?} is not an address"))?);
    }
    builder
        .body(channels::email::body(n))
        .map_err(|err| format!("could not build the e-mail: {err}"))
}

/// Sends over SMTP; 4xx replies and connection trouble are temporary, 5xx permanent.
async fn send_email(message: &lettre::Message, url: &Secret) -> Result<(), Failure> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
        .map_err(|_| {
            Failure::Permanent("SMTP_URL is not a usable smtp:// or smtps:// URL".to_owned())
        })?
        .timeout(Some(Duration::from_secs(15)))
        .build();
    match transport.send(message.clone()).await {
        Ok(_) => Ok(()),
        Err(err) => {
            // The server's words, never the URL (it holds the password).
            let reason = crate::log::redact::global()
                .redact(&err.to_string())
                .chars()
                .take(200)
                .collect::<String>();
            if err.is_permanent() {
                Err(Failure::Permanent(format!(
                    "the mail server refused: {reason}"
                )))
            } else {
                Err(Failure::Temporary(format!("mail server: {reason}")))
            }
        }
    }
}

/// A prepared HTTP request to a channel.
struct Request {
    url: String,
    body: Body,
    basic_auth: Option<(String, Secret)>,
}

enum Body {
    Json(serde_json::Value),
    Form(String),
}

/// Sends notifications; shared by every alert of the process.
pub struct Deliverer {
    http: reqwest::Client,
    settings: ChannelSettings,
    retry: RetryPolicy,
    /// Channels paused after a 429, until when.
    paused: Mutex<HashMap<Channel, std::time::Instant>>,
    /// Where a pause is shared with every other instance (Redis), when set.
    shared: Option<StateStore>,
}

impl Deliverer {
    /// Three attempts with exponential backoff from 2 s (the plan's queue settings).
    pub fn new(settings: ChannelSettings) -> Self {
        Self::with_retry(
            settings,
            RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(30),
            },
        )
    }

    pub fn with_retry(settings: ChannelSettings, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("shiplog/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Deliverer {
            http,
            settings,
            retry,
            paused: Mutex::default(),
            shared: None,
        }
    }

    /// Shares 429 pauses through the state store, so that every instance waits.
    pub fn sharing_pauses(mut self, store: StateStore) -> Self {
        self.shared = Some(store);
        self
    }

    /// Whether `channel` sends: it may be switched off, have no destination (in the demo, it
    /// then delivers to the demo channel), or be ready.
    pub fn readiness(&self, channel: Channel) -> Readiness {
        let s = &self.settings;
        let (on, has_destination, switch, destination) = match channel {
            Channel::Slack => (
                s.slack_on,
                s.slack_webhook.is_some(),
                "SLACK_ALERTS_ENABLED",
                "SLACK_WEBHOOK_URL",
            ),
            Channel::Discord => (
                s.discord_on,
                s.discord_webhook.is_some(),
                "DISCORD_ALERTS_ENABLED",
                "DISCORD_WEBHOOK_URL",
            ),
            Channel::Sms => (
                s.sms_on,
                s.twilio.is_some(),
                "SMS_ALERTS_ENABLED",
                "TWILIO_* and ALERT_SMS_TO",
            ),
            Channel::Webhook => (
                s.webhook_on,
                s.webhook_url.is_some(),
                "",
                "ALERT_WEBHOOK_URL",
            ),
            Channel::Email => (
                s.email_on,
                s.smtp.is_some(),
                "EMAIL_ALERTS_ENABLED",
                "SMTP_URL, ALERT_EMAIL_FROM and ALERT_EMAIL_TO",
            ),
            Channel::Demo => return Readiness::Ready,
        };
        if !on {
            Readiness::Off(format!("switched off ({switch})"))
        } else if has_destination {
            Readiness::Ready
        } else if s.demo {
            Readiness::Demo
        } else {
            Readiness::Off(format!("no destination ({destination})"))
        }
    }

    /// `Off` when `channel` will not send.
    pub fn skipped(&self, channel: Channel) -> Option<DeliveryStatus> {
        match self.readiness(channel) {
            Readiness::Off(why) => Some(DeliveryStatus::Off { why }),
            Readiness::Ready | Readiness::Demo => None,
        }
    }

    /// Delivers one notification to one channel, retrying as the policy says; `progress` hears
    /// about each retry. (`alerts test` sends this way; alerts go through the queue.)
    pub async fn deliver(
        &self,
        channel: Channel,
        notification: &Notification<'_>,
        mut progress: impl FnMut(DeliveryStatus),
    ) -> DeliveryStatus {
        let mut attempt = 0;
        loop {
            if let Some(wait) = self.paused_for(channel).await {
                tokio::time::sleep(wait).await;
            }
            attempt += 1;
            let (reason, rate_limited) = match self.attempt(channel, notification).await {
                Ok(status) => return status,
                Err(Failure::Permanent(reason)) => return DeliveryStatus::Failed { reason },
                Err(Failure::RateLimited(_)) => {
                    // A rate limit is the service asking for time, not a failed attempt.
                    attempt -= 1;
                    ("rate limited".to_owned(), true)
                }
                Err(Failure::Temporary(reason)) => (reason, false),
            };
            if attempt >= self.retry.max_attempts {
                return DeliveryStatus::Failed {
                    reason: format!("{reason} (after {attempt} attempts)"),
                };
            }
            progress(DeliveryStatus::Retrying { attempt, reason });
            if !rate_limited {
                tokio::time::sleep(self.retry.delay(attempt - 1, None)).await;
            }
        }
    }

    /// One try: `Ok` with how it ended (sent, switched off, the demo channel), or why not. A
    /// 429 pauses the channel (for every instance) before it returns.
    pub async fn attempt(
        &self,
        channel: Channel,
        notification: &Notification<'_>,
    ) -> Result<DeliveryStatus, Failure> {
        match self.readiness(channel) {
            Readiness::Off(why) => return Ok(DeliveryStatus::Off { why }),
            Readiness::Demo => return Ok(DeliveryStatus::Demo),
            Readiness::Ready => {}
        }
        let outcome = match self.prepare(channel, notification) {
            // The demo's channel: the notice in the log is its delivery.
            Ok(None) => Ok(()),
            Ok(Some(Prepared::Http(request))) => self.send(&request).await,
            Ok(Some(Prepared::Email(message, url))) => send_email(&message, &url).await,
            Err(reason) => Err(Failure::Permanent(reason)),
        };
        match outcome {
            Ok(()) => Ok(DeliveryStatus::Sent { at_ms: now_ms() }),
            Err(Failure::RateLimited(wait)) => {
                self.pause(channel, wait).await;
                Err(Failure::RateLimited(wait))
            }
            Err(failure) => Err(failure),
        }
    }

    /// What to send where; `Ok(None)` for the demo channel.
    fn prepare(&self, channel: Channel, n: &Notification<'_>) -> Result<Option<Prepared>, String> {
        let s = &self.settings;
        if let (Channel::Email, Some(smtp)) = (channel, &s.smtp) {
            let message = email_message(smtp, n)?;
            return Ok(Some(Prepared::Email(Box::new(message), smtp.url.clone())));
        }
        let json = |url: &Secret, body| Request {
            url: url.expose().to_owned(),
            body: Body::Json(body),
            basic_auth: None,
        };
        let request = match channel {
            Channel::Slack => s
                .slack_webhook
                .as_ref()
                .map(|url| json(url, channels::slack::payload(n))),
            Channel::Discord => s.discord_webhook.as_ref().map(|url| Request {
                url: channels::discord::url_with_wait(url.expose()),
                body: Body::Json(channels::discord::payload(n)),
                basic_auth: None,
            }),
            Channel::Webhook => s
                .webhook_url
                .as_ref()
                .map(|url| json(url, channels::webhook::payload(n))),
            Channel::Sms => s.twilio.as_ref().map(|t| Request {
                url: channels::twilio::messages_url(&t.api_url, &t.account_sid),
                body: Body::Form(channels::twilio::encode_form(&channels::twilio::form(
                    n, &t.from, &t.to,
                ))),
                basic_auth: Some((t.account_sid.clone(), t.auth_token.clone())),
            }),
            Channel::Email | Channel::Demo => None,
        };
        Ok(request.map(Prepared::Http))
    }

    async fn send(&self, request: &Request) -> Result<(), Failure> {
        let mut builder = self.http.post(&request.url);
        builder = match &request.body {
            Body::Json(value) => builder.json(value),
            Body::Form(text) => builder
                .header("content-type", "application/x-www-form-urlencoded")
                .body(text.clone()),
        };
        if let Some((user, password)) = &request.basic_auth {
            builder = builder.basic_auth(user, Some(password.expose()));
        }
        let response = builder.send().await.map_err(|err| {
            // Never the URL: for webhooks it is the secret.
            Failure::Temporary(if err.is_timeout() {
                "timed out".to_owned()
            } else {
                "could not connect".to_owned()
            })
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = response.text().await.unwrap_or_default();
        let detail = crate::log::redact::global()
            .redact(body.trim())
            .chars()
            .take(200)
            .collect::<String>();
        let reason = if detail.is_empty() {
            format!("answered {}", status.as_u16())
        } else {
            format!("answered {}: {detail}", status.as_u16())
        };
        match status.as_u16() {
            // A service asking for more than an hour is not taken at its word.
            429 => Err(Failure::RateLimited(
                retry_after
                    .unwrap_or(Duration::from_secs(5))
                    .min(Duration::from_secs(60 * 60)),
            )),
            500..=599 => Err(Failure::Temporary(reason)),
            _ => Err(Failure::Permanent(reason)),
        }
    }

    async fn pause(&self, channel: Channel, wait: Duration) {
        if let Ok(mut paused) = self.paused.lock() {
            paused.insert(channel, std::time::Instant::now() + wait);
        }
        if let Some(store) = &self.shared {
            // One millisecond more: `now_ms` drops the fraction, and another instance must never
            // try before the service's own window has ended.
            let until = now_ms() + wait.as_millis() as i64 + 1;
            if let Err(err) = store.put_json(&pause_key(channel), &until, wait).await {
                tracing::warn!(error = %err, "could not share a channel pause");
            }
        }
    }

    /// How long `channel` still waits after a 429 (here or on another instance), if it does.
    pub async fn paused_for(&self, channel: Channel) -> Option<Duration> {
        let local = self
            .paused
            .lock()
            .ok()
            .and_then(|p| p.get(&channel).copied())
            .map(|until| until.saturating_duration_since(std::time::Instant::now()))
            .filter(|wait| !wait.is_zero());
        if local.is_some() {
            return local;
        }
        let store = self.shared.as_ref()?;
        let until_ms = store.get_json::<i64>(&pause_key(channel)).await.ok()??;
        let wait = until_ms - now_ms();
        (wait > 0).then(|| Duration::from_millis(wait as u64))
    }
}

/// `alert_channel_pause:{channel}`: until when (ms) a channel waits, for every instance.
fn pause_key(channel: Channel) -> String {
    format!("alert_channel_pause:{}", channel.as_str())
}

/// Why one try did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try later (5xx, SMTP 4xx, the network).
    Temporary(String),
    /// The service refused for good (4xx, SMTP 5xx, a bad address).
    Permanent(String),
    /// 429: the channel pauses for this long.
    RateLimited(Duration),
}
