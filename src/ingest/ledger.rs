//! Which deliveries were already taken, kept in the state store so that every instance sharing
//! it agrees: Vercel retries a delivery for up to 24 hours, and may give a retry a new id.

use std::time::Duration;

use super::webhook::{Delivery, DeliveryKind};
use crate::store::{StateStore, StoreError};

/// Longer than Vercel's 24 hours of retries.
pub const LEDGER_TTL: Duration = Duration::from_secs(48 * 3600);

#[derive(Debug, Clone)]
pub struct DeliveryLedger {
    store: StateStore,
}

impl DeliveryLedger {
    pub fn new(store: StateStore) -> Self {
        DeliveryLedger { store }
    }

    /// True the first time a delivery is offered, on any instance; false for a repeat of its
    /// id, or of the event it carries under another id.
    pub async fn first_time(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let mut keys = Vec::with_capacity(2);
        if !delivery.id.is_empty() {
            keys.push(format!("webhook:delivery:{}", delivery.id));
        }
        if let Some(deployment) = &delivery.deployment {
            keys.push(match delivery.kind {
                // A deployment is created, and ends, once: the event is its type and deployment.
                DeliveryKind::Created
                | DeliveryKind::Ready
                | DeliveryKind::Error
                | DeliveryKind::Canceled => {
                    format!("webhook:event:{}:{deployment}", delivery.name)
                }
                // Production may come back to the same deployment later: the time tells.
                _ => format!(
                    "webhook:event:{}:{deployment}:{}",
                    delivery.name, delivery.created_at
                ),
            });
        }
        self.first_of_all(keys).await
    }

    /// True when none of `keys` was claimed before. Every key is claimed, not only up to the
    /// first repeat: each of a retry's ids then finds itself taken too.
    pub async fn first_of_all(
        &self,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<bool, StoreError> {
        let mut first = true;
        for key in keys {
            first &= self.store.first_claim(&key, LEDGER_TTL).await?;
        }
        Ok(first)
    }
}
