//! Takes the deliveries the listener acknowledged, one at a time, in arrival order: a repeat is
//! counted and dropped, late news is said and dropped, news acts on the streaming engine.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::ledger::DeliveryLedger;
use super::order::{DeploymentOrder, Verdict};
use super::webhook::{Delivery, DeliveryKind};
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::StateStore;
use crate::stream::engine::StreamCommand;

/// The route deliveries come in on, as the metrics name it.
pub const WEBHOOK_ROUTE: &str = "/vercel/webhook";

pub struct WebhookDesk {
    ledger: DeliveryLedger,
    order: DeploymentOrder,
    logger: Logger,
    metrics: Arc<Metrics>,
    stream: mpsc::Sender<StreamCommand>,
}

impl WebhookDesk {
    pub fn new(
        store: StateStore,
        logger: Logger,
        metrics: Arc<Metrics>,
        stream: mpsc::Sender<StreamCommand>,
    ) -> Self {
        WebhookDesk {
            ledger: DeliveryLedger::new(store.clone()),
            order: DeploymentOrder::new(store),
            logger,
            metrics,
            stream,
        }
    }

    /// Takes deliveries from `queue` until `shutdown` (then those still queued) or until the
    /// listener is gone.
    pub async fn run(self, mut queue: mpsc::Receiver<Delivery>, mut shutdown: Shutdown) {
        let mut stopping = false;
        while let Some(delivery) =
            super::next_queued(&mut queue, &mut shutdown, &mut stopping).await
        {
            self.take(delivery).await;
        }
    }

    pub async fn take(&self, delivery: Delivery) {
        if delivery.created_at > 0 {
            let lag = crate::clock::now_ms() - delivery.created_at;
            self.metrics.observe_ingest_lag(lag.max(0) as u64);
        }
        // A store that cannot answer does not lose the delivery: taking it twice is harmless
        // (a follower starts once, a state only moves forward), missing it is not.
        let first = self
            .ledger
            .first_time(&delivery)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(%err, "could not check the webhook ledger; taking the delivery");
                true
            });
        if !first {
            self.metrics.duplicate_delivered(WEBHOOK_ROUTE);
            return;
        }
        let verdict = self.order.verdict(&delivery).await.unwrap_or_else(|err| {
            tracing::warn!(%err, "could not read what earlier webhooks said; taking the delivery");
            Verdict::Applies
        });
        match verdict {
            Verdict::Applies => self.apply(&delivery).await,
            Verdict::Known => self.metrics.duplicate_delivered(WEBHOOK_ROUTE),
            Verdict::Late { why } => {
                // A build whose start came late (or never) is still followed: its log and its
                // failure are news even when the webhooks were not in order.
                if delivery.kind == DeliveryKind::Created {
                    self.follow(&delivery).await;
                }
                let message = format!(
                    "Ignored a late {} for {}: {why} (Vercel does not promise the order of webhooks)",
                    delivery.name,
                    delivery.deployment.as_deref().unwrap_or("a deployment"),
                );
                self.logger.write(entry(&delivery, message));
            }
        }
    }

    async fn apply(&self, delivery: &Delivery) {
        let (Some(deployment), Some(message)) = (&delivery.deployment, news(delivery)) else {
            return;
        };
        self.logger.write(entry(delivery, message));
        let command = match delivery.kind {
            // The end of a build whose start never came is followed too (the engine follows a
            // deployment once, whatever asks).
            DeliveryKind::Created
            | DeliveryKind::Ready
            | DeliveryKind::Error
            | DeliveryKind::Canceled => return self.follow(delivery).await,
            DeliveryKind::Promoted | DeliveryKind::Rollback => match &delivery.project_id {
                Some(project) => StreamCommand::Production {
                    project: project.clone(),
                    deployment: deployment.clone(),
                },
                None => return,
            },
            _ => return,
        };
        if self.stream.send(command).await.is_err() {
            tracing::warn!("the streaming engine is gone; a webhook was not acted on");
        }
    }
}

impl WebhookDesk {
    async fn follow(&self, delivery: &Delivery) {
        let Some(deployment) = &delivery.deployment else {
            return;
        };
        let command = StreamCommand::Follow {
            deployment: deployment.clone(),
            project: [delivery.project_id.clone(), delivery.project_name.clone()],
        };
        if self.stream.send(command).await.is_err() {
            tracing::warn!("the streaming engine is gone; a webhook was not acted on");
        }
    }
}

/// One line about what a delivery said, for the output and the rules (event `webhook`: no
/// built-in rule alerts on it; the followers report the builds themselves).
fn news(delivery: &Delivery) -> Option<String> {
    let deployment = delivery.deployment.as_deref()?;
    let project = delivery.project_name.as_deref().unwrap_or("a project");
    let target = delivery.target.as_deref().unwrap_or("preview");
    Some(match &delivery.kind {
        DeliveryKind::Created => {
            format!("{project} {deployment} was created ({target}); following its build")
        }
        DeliveryKind::Promoted => format!("{project}'s production is now {deployment} (promoted)"),
        DeliveryKind::Rollback => format!(
            "{project}'s production rolled back to {deployment}{}",
            delivery
                .from_deployment
                .as_deref()
                .map(|from| format!(" from {from}"))
                .unwrap_or_default()
        ),
        kind => format!("{project} {deployment} is {}", kind.state()?),
    })
}

fn entry(delivery: &Delivery, message: String) -> LogEntry {
    let at = if delivery.created_at > 0 {
        delivery.created_at
    } else {
        crate::clock::now_ms()
    };
    let mut entry = LogEntry::at(at, Tier::Deploy, Severity::Info, "webhook", message);
    entry.build_id = delivery.deployment.as_deref().map(Arc::from);
    entry.project_id = delivery.project_id.as_deref().map(Arc::from);
    entry.metadata.vercel_deployment_id = entry.build_id.clone();
    entry.metadata.project = delivery.project_name.as_deref().map(Arc::from);
    entry
}
