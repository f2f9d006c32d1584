//! Delivery of notifications to Slack, Discord, SMS (Twilio) and a generic JSON webhook over
//! HTTP, and e-mail over SMTP: retries for 5xx (SMTP 4xx) and network trouble with exponential
//! backoff, a 429 pauses the whole channel until its `Retry-After` (for every instance sharing
//! the state store), a permanent 4xx (SMTP 5xx) fails with the service's reason. A channel
//! switched off or without a destination says so. What to send where is each channel's business
//! (`super::channels`); this module only sends it. Destinations are secrets: they never reach a
//! log line, the screen or an error message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::channels::{
    Body, Channel, ChannelSettings, HttpRequest, Notification, Readiness, Request,
};
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

    /// Whether `channel` sends (see [`ChannelSettings::readiness`]).
    pub fn readiness(&self, channel: Channel) -> Readiness {
        self.settings.readiness(channel)
    }

    /// Tries per notification to `channel`, when it needs other than the queue's.
    pub fn attempts(&self, channel: Channel) -> Option<u32> {
        self.settings.attempts(channel)
    }

    /// The window limit of `channel`'s destination, if it has one.
    pub fn rate_limit(&self, channel: Channel) -> Option<super::channels::RateLimit> {
        self.settings.rate_limit(channel)
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
        let outcome = match self.settings.request(channel, notification) {
            // The demo's channel: the notice in the log is its delivery.
            None => Ok(()),
            Some(Ok(Request::Http(request))) => self.send(&request).await,
            Some(Ok(Request::Email { message, server })) => send_email(&message, &server).await,
            Some(Err(err)) => Err(Failure::Permanent(err.to_string())),
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

    async fn send(&self, request: &HttpRequest) -> Result<(), Failure> {
        let mut builder = self.http.post(request.url.expose());
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
        // A service may echo what it was sent: the webhook's path, the credentials.
        let mut known = crate::secret::url_parts(request.url.expose());
        if let Some((_, password)) = &request.basic_auth {
            known.push(password.expose().to_owned());
        }
        known.extend(request.hidden.iter().map(|s| s.expose().to_owned()));
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let detail =
            crate::secret::scrub(&crate::log::redact::global().redact(body.trim()), &known)
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
                    .unwrap_or(request.rate_limited_pause)
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
