//! Acknowledgements, resolutions and delivery reports shared by every instance on one Redis
//! (pub/sub on `{namespace}alert_actions`), so an ack on one screen shows on every screen within
//! a second, with who acted, and every feed shows how a notification sent elsewhere went.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::queue::worker::Delivered;
use super::runner::AlertCommand;
use crate::redis_io::{
    ConnectFailure, RedisIoError, RedisLink, RedisTarget, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
};

/// An action taken on one instance, as every other instance hears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedAction {
    pub command: AlertCommand,
    pub by: String,
    pub at_ms: i64,
}

/// What instances tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SyncMessage {
    Action(SharedAction),
    /// How a notification went, reported by the instance whose worker sent it.
    Delivery(Delivered),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The instance that sent it; it ignores its own messages.
    origin: String,
    message: SyncMessage,
}

/// How often a lost subscription (Redis restarted) is tried again.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// Why the pub/sub link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Url(#[from] RedisIoError),
    #[error("Redis did not answer")]
    NoAnswer,
    #[error("could not connect to Redis for alert actions: {0}")]
    Connect(String),
    #[error("could not subscribe to alert actions")]
    Subscribe,
}

/// The pub/sub link of one instance.
pub struct AlertSync {
    client: redis::Client,
    /// Reconnects by itself after Redis comes back.
    publisher: RedisLink,
    channel: String,
    instance: String,
}

impl AlertSync {
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, SyncError> {
        let (client, target) = RedisTarget::open(url)?;
        let connection = target
            .manager(client.clone(), DEFAULT_CONNECT_TIMEOUT)
            .await
            .map_err(|failure| match failure {
                ConnectFailure::NoAnswer => SyncError::NoAnswer,
                ConnectFailure::Refused(err) => SyncError::Connect(target.describe(&err)),
            })?;
        Ok(AlertSync {
            client,
            publisher: RedisLink::new(connection, target, DEFAULT_COMMAND_TIMEOUT),
            channel: format!("{namespace}alert_actions"),
            instance: ulid::Ulid::new().to_string(),
        })
    }

    /// Tells every other instance.
    pub async fn publish(&self, message: SyncMessage) {
        let envelope = Envelope {
            origin: self.instance.clone(),
            message,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            return;
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&self.channel).arg(text);
        // The first command after Redis restarted finds the old connection gone: once more.
        let sent = self.publisher.run_reconnecting::<i64>(&publish).await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not share an alert action");
        }
    }

    /// What other instances say, as they say it. Subscribed when this returns; a subscription
    /// lost with Redis is made again when Redis is back.
    pub async fn subscribe(&self) -> Result<mpsc::Receiver<SyncMessage>, SyncError> {
        let mut pubsub = listen(&self.client, &self.channel).await?;
        let (tx, rx) = mpsc::channel(256);
        let client = self.client.clone();
        let channel = self.channel.clone();
        let instance = self.instance.clone();
        tokio::spawn(async move {
            loop {
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Ok(text) = message.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<Envelope>(&text) {
                        Ok(envelope) if envelope.origin != instance => {
                            if tx.send(envelope.message).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(%err, "ignored a malformed alert action"),
                    }
                }
                tracing::warn!("lost the alert actions subscription; subscribing again");
                pubsub = loop {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(RESUBSCRIBE_EVERY).await;
                    if let Ok(again) = listen(&client, &channel).await {
                        break again;
                    }
                };
            }
        });
        Ok(rx)
    }
}

/// A connection subscribed to `channel`.
async fn listen(client: &redis::Client, channel: &str) -> Result<PubSub, SyncError> {
    let failed = |_| SyncError::Subscribe;
    let mut pubsub = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| SyncError::NoAnswer)?
        .map_err(failed)?;
    pubsub.subscribe(channel).await.map_err(failed)?;
    Ok(pubsub)
}
