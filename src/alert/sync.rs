//! Acknowledgements, resolutions and delivery reports shared by every instance on one Redis
//! (pub/sub on `{namespace}alert_actions`), so an ack on one screen shows on every screen within
//! a second, with who acted, and every feed shows how a notification sent elsewhere went.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::queue::worker::Delivered;
use super::runner::AlertCommand;

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
pub enum Shared {
    Action(SharedAction),
    /// How a notification went, reported by the instance whose worker sent it.
    Delivery(Delivered),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The instance that sent it; it ignores its own messages.
    origin: String,
    message: Shared,
}

/// The pub/sub link of one instance.
pub struct AlertSync {
    client: redis::Client,
    publisher: redis::aio::MultiplexedConnection,
    channel: String,
    instance: String,
}

impl AlertSync {
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|_| "REDIS_URL is not usable".to_owned())?;
        let publisher = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "Redis did not answer".to_owned())?
        .map_err(|_| "could not connect to Redis for alert actions".to_owned())?;
        Ok(AlertSync {
            client,
            publisher,
            channel: format!("{namespace}alert_actions"),
            instance: ulid::Ulid::new().to_string(),
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Tells every other instance.
    pub async fn publish(&self, message: Shared) {
        let envelope = Envelope {
            origin: self.instance.clone(),
            message,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            return;
        };
        let mut connection = self.publisher.clone();
        let sent: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(text)
            .query_async(&mut connection)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not share an alert action");
        }
    }

    /// What other instances say, as they say it.
    pub async fn subscribe(&self) -> Result<mpsc::Receiver<Shared>, String> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|_| "could not subscribe to alert actions".to_owned())?;
        pubsub
            .subscribe(&self.channel)
            .await
            .map_err(|_| "could not subscribe to alert actions".to_owned())?;
        let (tx, rx) = mpsc::channel(256);
        let instance = self.instance.clone();
        tokio::spawn(async move {
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
        });
        Ok(rx)
    }
}
