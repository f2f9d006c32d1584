//! Incident keys: the key an alert is known by in PagerDuty (its `dedup_key`). One key for the
//! life of one alert, from its first notification until it is resolved; a new one if it fires
//! again after that, so PagerDuty opens a new incident. Kept in the state store, both ways
//! (alert to key, key to alert), so every instance acknowledges with the key another instance
//! triggered with, and PagerDuty's webhooks find their alert.
//!
//! A key reads `{namespace}{project}:{rule}:{fingerprint's first 16}:{episode}`, e.g.
//! `shiplog:production:storefront:deploy_failed:7c1e9a42d0b3f5e1:01JD4X2K9QW8E5R7T3Y6U1I0PA`: what it is about,
//! at a glance, in PagerDuty.

use std::time::Duration;

use super::evaluator::Alert;
use crate::store::{StateStore, StoreError};

/// How long a key is remembered: past any incident's life.
const KEPT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The incident keys in the state store.
#[derive(Clone)]
pub struct IncidentKeys {
    store: StateStore,
}

impl IncidentKeys {
    pub fn new(store: StateStore) -> Self {
        IncidentKeys { store }
    }

    /// The alert's key: the one it has, or a new one (one instance makes it, every instance
    /// reads it).
    pub async fn open(&self, alert: &Alert) -> Result<String, StoreError> {
        let fingerprint = alert.fingerprint.as_str();
        let made = new_key(self.store.namespace(), alert);
        let key = self.claim(&by_alert(fingerprint), &made).await?;
        if key == made {
            self.claim(&by_key(&key), fingerprint).await?;
        } else {
            // Still in use: kept for another fortnight from now (an alert may fire for long).
            self.store
                .put_json(&by_alert(fingerprint), &key, KEPT)
                .await?;
            self.store
                .put_json(&by_key(&key), fingerprint, KEPT)
                .await?;
        }
        Ok(key)
    }

    /// The key of the alert's current incident, if it has one.
    pub async fn current(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
        self.store.get_json(&by_alert(fingerprint)).await
    }

    /// Ends the alert's incident: the next notification opens a new one. True for the one
    /// caller that ended it (the others find it ended).
    pub async fn close(&self, fingerprint: &str, key: &str) -> Result<bool, StoreError> {
        self.store
            .delete_if(&by_alert(fingerprint), &quoted(key))
            .await
    }

    /// Takes `key` (from PagerDuty) as the alert's current key, unless it has one: an incident
    /// reopened there is the alert's again.
    pub async fn remember_key(&self, fingerprint: &str, key: &str) -> Result<(), StoreError> {
        self.claim(&by_alert(fingerprint), key).await?;
        self.claim(&by_key(key), fingerprint).await.map(|_| ())
    }

    /// The fingerprint of the alert a key was made for.
    pub async fn alert_of(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.get_json(&by_key(key)).await
    }

    /// Remembers which alert PagerDuty's incident `id` is, for its later webhooks that carry no
    /// incident key.
    pub async fn remember_incident(&self, id: &str, fingerprint: &str) -> Result<(), StoreError> {
        self.claim(&by_incident(id), fingerprint).await.map(|_| ())
    }

    /// The fingerprint of the alert PagerDuty's incident `id` was opened for, if known.
    pub async fn alert_of_incident(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.store.get_json(&by_incident(id)).await
    }

    /// Stores `value` under `key` unless one is there; the value that stands.
    async fn claim(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let standing = self.store.put_if_absent(key, &quoted(value), KEPT).await?;
        Ok(serde_json::from_str(&standing).unwrap_or(standing))
    }
}

/// A text as the store's JSON reads it back.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn by_alert(fingerprint: &str) -> String {
    format!("incident:alert:{fingerprint}")
}

fn by_key(key: &str) -> String {
    format!("incident:key:{key}")
}

fn by_incident(id: &str) -> String {
    format!("incident:pagerduty:{id}")
}

/// A new key for the alert's next incident.
fn new_key(namespace: &str, alert: &Alert) -> String {
    let entry = &alert.entry;
    let project = entry
        .metadata
        .project
        .as_deref()
        .or(entry.project_id.as_deref())
        .unwrap_or("-");
    let clean = |text: &str, max: usize| -> String {
        text.chars()
            .filter(|c| !c.is_control() && !c.is_whitespace())
            .take(max)
            .collect()
    };
    let fingerprint: String = alert.fingerprint.as_str().chars().take(16).collect();
    let episode = ulid::Ulid::new().to_string();
    format!(
        "{}{}:{}:{fingerprint}:{}",
        clean(namespace, 48),
        clean(project, 64),
        clean(&alert.rule, 64),
        episode,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::channels::Channel;
    use crate::alert::{AlertSeverity, Fingerprint};
    use crate::log::{LogEntry, Severity, Tier};

    #[tokio::test]
    async fn a_key_lasts_until_its_incident_is_resolved_then_a_new_one_is_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::embedded(dir.path(), "shiplog:production:").expect("store");
        let keys = IncidentKeys::new(store);
        let mut entry = LogEntry::new(Tier::Deploy, Severity::Error, "failed", "x");
        entry.metadata.project = Some("store front".into());
        let alert = Alert {
            fingerprint: Fingerprint::known("7c1e9a42d0b3f5e1aaaabbbbccccddddeeeeffff"),
            rule: "deploy_failed".to_owned(),
            severity: AlertSeverity::High,
            channels: vec![Channel::Pagerduty],
            entry: Arc::new(entry),
        };
        let first = keys.open(&alert).await.expect("a key");
        assert!(
            first.starts_with("shiplog:production:storefront:deploy_failed:7c1e9a42d0b3f5e1:"),
            "{first}"
        );
        assert_eq!(
            keys.open(&alert).await.expect("a key"),
            first,
            "the same while open"
        );
        let fingerprint = alert.fingerprint.as_str();
        assert_eq!(
            keys.current(fingerprint).await.expect("read"),
            Some(first.clone())
        );
        assert_eq!(
            keys.alert_of(&first).await.expect("read").as_deref(),
            Some(fingerprint)
        );
        assert!(keys.close(fingerprint, &first).await.expect("closed"));
        assert!(!keys.close(fingerprint, &first).await.expect("once"));
        let second = keys.open(&alert).await.expect("a key");
        assert_ne!(second, first, "a new incident after a resolve");
        assert_eq!(
            keys.alert_of(&first).await.expect("read").as_deref(),
            Some(fingerprint),
            "old webhooks still find it"
        );
    }
}
