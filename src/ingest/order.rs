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
    /// It arrived after something that supersedes it; `why` says what stands.
    Late { why: String },
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

fn already(state: &str) -> Verdict {
    Verdict::Late {
        why: format!("it is already {state}"),
    }
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
                Ok(ended.map_or(Verdict::Applies, |ended| already(&ended.state)))
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
                    already(&current)
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
                    why: format!(
                        "a newer event already moved production to {}",
                        last.deployment
                    ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(kind: DeliveryKind, deployment: &str, created_at: i64) -> Delivery {
        Delivery {
            id: String::new(),
            name: String::new(),
            kind,
            created_at,
            deployment: Some(deployment.to_owned()),
            from_deployment: None,
            project_id: Some("prj_1".to_owned()),
            project_name: None,
            target: None,
        }
    }

    #[tokio::test]
    async fn states_only_move_forward_and_production_only_to_newer_news() {
        let dir = tempfile::tempdir().expect("dir");
        let order = DeploymentOrder::new(StateStore::embedded(dir.path(), "t:").expect("store"));
        let verdict = async |kind, deployment, at| {
            order
                .verdict(&delivery(kind, deployment, at))
                .await
                .expect("store")
        };
        assert_eq!(
            verdict(DeliveryKind::Created, "dpl_a", 1).await,
            Verdict::Applies
        );
        assert_eq!(
            verdict(DeliveryKind::Ready, "dpl_a", 3).await,
            Verdict::Applies
        );
        assert_eq!(
            verdict(DeliveryKind::Ready, "dpl_a", 4).await,
            Verdict::Known
        );
        let late = already("READY");
        assert_eq!(verdict(DeliveryKind::Error, "dpl_a", 2).await, late);
        assert_eq!(verdict(DeliveryKind::Created, "dpl_a", 1).await, late);
        assert_eq!(
            verdict(DeliveryKind::Promoted, "dpl_a", 10).await,
            Verdict::Applies
        );
        assert_eq!(
            verdict(DeliveryKind::Rollback, "dpl_b", 9).await,
            Verdict::Late {
                why: "a newer event already moved production to dpl_a".into()
            },
            "an older move arriving late"
        );
        assert_eq!(
            verdict(DeliveryKind::Rollback, "dpl_b", 11).await,
            Verdict::Applies
        );
        assert_eq!(
            verdict(DeliveryKind::Promoted, "dpl_a", 12).await,
            Verdict::Applies
        );
    }
}
