//! An alert's labels: what silences, inhibition rules and grouping match on. Every alert has the
//! same eight (`rule`, `severity`, `project`, `target`, `branch`, `deployment`, `tier`, and
//! `message`: its first line with ids, numbers and times replaced, as fingerprints see it); one
//! it cannot tell is the empty string, as a missing label is in Alertmanager.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evaluator::Alert;

/// The names of the labels, in the order they are shown.
pub const NAMES: [&str; 8] = [
    "rule",
    "severity",
    "project",
    "target",
    "branch",
    "deployment",
    "tier",
    "message",
];

/// Label name to value, the empty ones left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// The labels of an alert: its rule and severity, and from the entry that fired it the
    /// project (its name, else its id), the target (`production`, `preview`, ...), the branch,
    /// the deployment (Vercel's `dpl_…`) and the tier.
    pub fn of(alert: &Alert) -> Labels {
        let entry = &alert.entry;
        let meta = &entry.metadata;
        let project = meta.project.as_deref().or(entry.project_id.as_deref());
        let deployment = entry
            .build_id
            .as_deref()
            .or(meta.vercel_deployment_id.as_deref());
        // A failed build's own error when it names one (the outcome's line also names the
        // branch and commit, which differ from one deployment to the next).
        let said = meta
            .get_str("first_error")
            .or_else(|| entry.message.lines().find(|l| !l.trim().is_empty()));
        let message = said.map(super::fingerprint::normalize);
        Labels::from_pairs([
            ("rule", Some(alert.rule.as_str())),
            ("severity", Some(alert.severity.as_str())),
            ("project", project),
            ("target", meta.get_str("target")),
            ("branch", meta.get_str("branch")),
            ("deployment", deployment),
            ("tier", Some(entry.tier.as_str())),
            ("message", message.as_deref()),
        ])
    }

    /// Labels from `(name, value)` pairs; `None` and empty values are left out.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Labels {
        Labels(
            pairs
                .into_iter()
                .filter_map(|(name, value)| {
                    let value = value.filter(|v| !v.is_empty())?;
                    Some((
                        name.to_owned(),
                        crate::printable::one_line(value).into_owned(),
                    ))
                })
                .collect(),
        )
    }

    /// The value of `name`; empty when the alert has none.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// `rule="deploy_failed", project="storefront"`: every label that has a value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
