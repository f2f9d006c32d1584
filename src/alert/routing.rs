//! How notifications are routed, as the config file's `[alert_routing]` says: grouping (per
//! channel, with Alertmanager's `group_by`, `group_wait`, `group_interval`, `repeat_interval`)
//! and inhibition rules.
//!
//! ```toml
//! [alert_routing]
//! group_by = ["rule", "message"]   # the default: one rule, one (normalized) message
//! group_wait_secs = 30
//! group_interval_secs = 300
//! repeat_interval_secs = 14400
//!
//! [alert_routing.channels.pagerduty]
//! group_by = ["rule", "project"]
//!
//! [[alert_routing.inhibit_rules]]
//! source_matchers = ['severity="critical"']
//! target_matchers = ['severity="medium"']
//! equal = ["project"]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::channels::Channel;
use super::inhibit::{self, InhibitError, InhibitRule, InhibitRuleConfig};
use super::labels::NAMES;

/// Alertmanager's defaults.
pub const GROUP_WAIT: Duration = Duration::from_secs(30);
pub const GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 60 * 60);
/// The default `group_by`: ten deployments failing with one error are one notification.
pub const GROUP_BY: [&str; 2] = ["rule", "message"];
/// `group_by = ["..."]`: every alert is its own group.
pub const EVERY_LABEL: &str = "...";

/// One channel's grouping as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupingConfig {
    pub group_by: Option<Vec<String>>,
    pub group_wait_secs: Option<u64>,
    pub group_interval_secs: Option<u64>,
    pub repeat_interval_secs: Option<u64>,
}

/// `[alert_routing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(flatten)]
    pub grouping: GroupingConfig,
    /// Per channel, over the table's own settings.
    #[serde(default)]
    pub channels: BTreeMap<String, GroupingConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
}

/// How one channel groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoute {
    /// The labels whose values make a group; empty: every label (each alert alone).
    pub group_by: Vec<String>,
    pub wait: Duration,
    pub interval: Duration,
    pub repeat: Duration,
}

impl Default for GroupRoute {
    fn default() -> Self {
        GroupRoute {
            group_by: GROUP_BY.iter().map(|l| (*l).to_owned()).collect(),
            wait: GROUP_WAIT,
            interval: GROUP_INTERVAL,
            repeat: REPEAT_INTERVAL,
        }
    }
}

impl GroupRoute {
    /// `over` laid on this.
    fn with(&self, over: &GroupingConfig) -> Result<GroupRoute, RoutingError> {
        let secs =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_secs);
        let group_by = match &over.group_by {
            None => self.group_by.clone(),
            Some(labels) if labels.iter().any(|l| l == EVERY_LABEL) => Vec::new(),
            Some(labels) => {
                if let Some(unknown) = labels.iter().find(|l| !NAMES.contains(&l.as_str())) {
                    return Err(RoutingError::UnknownLabel(unknown.clone()));
                }
                labels.clone()
            }
        };
        let route = GroupRoute {
            group_by,
            wait: secs(over.group_wait_secs, self.wait),
            interval: secs(over.group_interval_secs, self.interval),
            repeat: secs(over.repeat_interval_secs, self.repeat),
        };
        if route.interval.is_zero() {
            return Err(RoutingError::ZeroInterval);
        }
        Ok(route)
    }
}

/// Grouping per channel, and the inhibition rules.
#[derive(Debug, Clone)]
pub struct Routing {
    default: GroupRoute,
    channels: BTreeMap<Channel, GroupRoute>,
    pub inhibit: Vec<InhibitRule>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RoutingError {
    #[error("[alert_routing]: unknown label {0:?} in group_by (labels are {names}, or \"...\" for each alert alone)", names = NAMES.join(", "))]
    UnknownLabel(String),
    #[error("[alert_routing]: there is no channel {0:?} (channels are {names})", names = Channel::named(&Channel::ALL))]
    UnknownChannel(String),
    #[error("[alert_routing]: group_interval_secs must be more than 0")]
    ZeroInterval,
    #[error("[alert_routing]: {0}")]
    Inhibit(#[from] InhibitError),
}

/// Alertmanager's grouping defaults and the built-in inhibition.
impl Default for Routing {
    fn default() -> Self {
        Routing {
            default: GroupRoute::default(),
            channels: BTreeMap::new(),
            inhibit: vec![InhibitRule::builtin()],
        }
    }
}

impl Routing {
    pub fn from_config(config: &RoutingConfig) -> Result<Routing, RoutingError> {
        Routing::with_default(config, GroupRoute::default())
    }

    /// The config laid over `base` rather than Alertmanager's defaults.
    pub fn with_default(config: &RoutingConfig, base: GroupRoute) -> Result<Routing, RoutingError> {
        let default = base.with(&config.grouping)?;
        let mut channels = BTreeMap::new();
        for (name, over) in &config.channels {
            let channel = Channel::ALL
                .into_iter()
                .find(|c| c.as_str() == name.as_str())
                .ok_or_else(|| RoutingError::UnknownChannel(name.clone()))?;
            channels.insert(channel, default.with(over)?);
        }
        Ok(Routing {
            default,
            channels,
            inhibit: inhibit::rules(&config.inhibit_rules)?,
        })
    }

    /// How `channel` groups.
    pub fn route(&self, channel: Channel) -> &GroupRoute {
        self.channels.get(&channel).unwrap_or(&self.default)
    }

    /// Every alert notified at once (`group_wait` 0), the rest as configured: for short-lived
    /// runs and tests.
    pub fn without_wait(mut self) -> Routing {
        self.default.wait = Duration::ZERO;
        for route in self.channels.values_mut() {
            route.wait = Duration::ZERO;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_alertmanagers_and_channels_override_them() {
        let config: RoutingConfig = toml::from_str(
            r#"
group_wait_secs = 10
[channels.pagerduty]
group_by = ["rule", "project"]
repeat_interval_secs = 3600
[channels.slack]
group_by = ["..."]
"#,
        )
        .expect("toml");
        let routing = Routing::from_config(&config).expect("valid");
        let email = routing.route(Channel::Email);
        assert_eq!(email.group_by, ["rule", "message"]);
        assert_eq!(
            (email.wait, email.interval, email.repeat),
            (Duration::from_secs(10), GROUP_INTERVAL, REPEAT_INTERVAL)
        );
        let pagerduty = routing.route(Channel::Pagerduty);
        assert_eq!(pagerduty.group_by, ["rule", "project"]);
        assert_eq!(
            (pagerduty.wait, pagerduty.repeat),
            (Duration::from_secs(10), Duration::from_secs(3600))
        );
        assert!(routing.route(Channel::Slack).group_by.is_empty());
        assert_eq!(routing.inhibit.len(), 1, "the built-in");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, said) in [
            ("group_by = [\"projet\"]", "unknown label \"projet\""),
            (
                "[channels.pager]\ngroup_wait_secs = 1",
                "no channel \"pager\"",
            ),
            ("group_interval_secs = 0", "more than 0"),
        ] {
            let config: RoutingConfig = toml::from_str(text).expect("toml");
            let err = Routing::from_config(&config).expect_err(text).to_string();
            assert!(err.contains(said), "{text}: {err}");
        }
    }
}
