//! Late deliveries: Vercel does not promise their order, so a deployment's state only moves
//! forward. A build ends once: the first final state (`READY`, `ERROR`, `CANCELED`) recorded for
//! it stays, and a `created` or another final state arriving after it is late news. Where
//! production points moves only to a newer event (`createdAt`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::webhook::{Delivery, DeliveryKind};
use crate::store::{StateStore, StoreError};

/// How long a deployment's final state, and a project's latest production move, are kept.
const KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a delivery means once the deliveries before it are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// News: act on it.
    Applies,
    /// It arrived after something that supersedes it: `current` is what stands.
    Late { current: String },
    /// The same news again under another name (`deployment.ready` after `.succeeded`).
    Known,
}

/// A deployment's final state, and which delivery recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FinalState {
    state: String,
    by: String,
}

/// Where a project's production was last moved, by which event.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProductionMove {
    deployment: String,
    created_at: i64,
}

#[derive(Debug, Clone)]
pub struct DeploymentOrder {
    store: StateStore,
}

impl DeploymentOrder {
    pub fn new(store: StateStore) -> Self {
        DeploymentOrder { store }
    }

    pub async fn verdict(&self, delivery: &Delivery) -> Result<Verdict, StoreError> {
        let Some(deployment) = &delivery.deployment else {
            return Ok(Verdict::Applies);
        };
        let final_key = format!("webhook:final:{deployment}");
        match &delivery.kind {
            DeliveryKind::Created => {
                let ended = self.store.get_json::<FinalState>(&final_key).await?;
                Ok(ended.map_or(Verdict::Applies, |ended| Verdict::Late {
                    current: ended.state,
                }))
            }
            kind if kind.is_final() => {
                let ours = FinalState {
                    state: kind.state().unwrap_or_default().to_owned(),
                    by: ulid::Ulid::new().to_string(),
                };
                let claimed = serde_json::to_string(&ours).unwrap_or_default();
                // Atomic, so that two instances taking two final states agree on the first.
                let standing = self.store.put_if_absent(&final_key, &claimed, KEPT).await?;
                if standing == claimed {
                    return Ok(Verdict::Applies);
                }
                let current = serde_json::from_str::<FinalState>(&standing)
                    .map_or(standing, |standing| standing.state);
                Ok(if current == ours.state {
                    Verdict::Known
                } else {
                    Verdict::Late { current }
                })
            }
            DeliveryKind::Promoted | DeliveryKind::Rollback => {
                self.production_moved(delivery, deployment).await
            }
            _ => Ok(Verdict::Applies),
        }
    }

    async fn production_moved(
        &self,
        delivery: &Delivery,
        deployment: &str,
    ) -> Result<Verdict, StoreError> {
        let Some(project) = &delivery.project_id else {
            return Ok(Verdict::Applies);
        };
        let key = format!("webhook:production:{project}");
        if let Some(last) = self.store.get_json::<ProductionMove>(&key).await? {
            if last.created_at > delivery.created_at {
                return Ok(Verdict::Late {
                    current: format!("production is {}", last.deployment),
                });
            }
        }
        let moved = ProductionMove {
            deployment: deployment.to_owned(),
            created_at: delivery.created_at,
        };
        self.store.put_json(&key, &moved, KEPT).await?;
        Ok(Verdict::Applies)
    }
}
