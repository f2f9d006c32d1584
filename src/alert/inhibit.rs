//! Inhibition, as Alertmanager has it: while an open alert matches a rule's source matchers,
//! the alerts matching its target matchers that have the same values of its `equal` labels are
//! muted (recorded and shown, not sent). A missing label is empty on both sides. An alert that
//! matches both sides is not inhibited by another that does too (nor by itself).
//!
//! Built in: a deployment's `deploy_failed` mutes that deployment's `build_failed` and
//! `system_error` (one page for one broken deploy, not three).

use serde::Deserialize;

use super::book::AlertRecord;
use super::labels::{Labels, NAMES};
use super::matcher::{self, Matcher, MatcherError};

/// The built-in rule's name: a rule of this name in the config file replaces it.
pub const BUILTIN: &str = "deploy_failed_mutes_its_build";

/// A rule as the config file writes it (`[[alert_routing.inhibit_rules]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    pub name: Option<String>,
    #[serde(default)]
    pub source_matchers: Vec<String>,
    #[serde(default)]
    pub target_matchers: Vec<String>,
    #[serde(default)]
    pub equal: Vec<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InhibitRule {
    pub name: String,
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

/// Why an inhibition rule could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InhibitError {
    #[error("inhibition rule {rule:?}: {matcher:?}: {source}")]
    Matcher {
        rule: String,
        matcher: String,
        source: MatcherError,
    },
    #[error("inhibition rule {0:?} needs source_matchers and target_matchers")]
    Empty(String),
    #[error("inhibition rule {rule:?}: unknown label {label:?} in equal (labels are {names})", names = NAMES.join(", "))]
    UnknownLabel { rule: String, label: String },
}

impl InhibitRule {
    pub fn builtin() -> InhibitRule {
        let parse = |text: &str| matcher::parse(text).unwrap_or_default();
        InhibitRule {
            name: BUILTIN.to_owned(),
            source: parse("rule=deploy_failed"),
            target: parse(r#"rule=~"build_failed|system_error""#),
            equal: vec!["deployment".to_owned()],
        }
    }

    fn from_config(config: &InhibitRuleConfig, index: usize) -> Result<InhibitRule, InhibitError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("inhibit_rules[{index}]"));
        let read = |texts: &[String]| -> Result<Vec<Matcher>, InhibitError> {
            let mut all = Vec::new();
            for text in texts {
                all.extend(
                    matcher::parse(text).map_err(|source| InhibitError::Matcher {
                        rule: name.clone(),
                        matcher: text.clone(),
                        source,
                    })?,
                );
            }
            Ok(all)
        };
        let (source, target) = (
            read(&config.source_matchers)?,
            read(&config.target_matchers)?,
        );
        if source.is_empty() || target.is_empty() {
            return Err(InhibitError::Empty(name));
        }
        if let Some(label) = config.equal.iter().find(|l| !NAMES.contains(&l.as_str())) {
            return Err(InhibitError::UnknownLabel {
                rule: name,
                label: label.clone(),
            });
        }
        Ok(InhibitRule {
            name,
            source,
            target,
            equal: config.equal.clone(),
        })
    }

    /// Could an alert with these labels be inhibited by this rule at all?
    pub fn targets(&self, target: &Labels) -> bool {
        matcher::all_match(&self.target, target)
    }

    /// Does an open alert with `source` labels inhibit one with `target` labels?
    pub fn inhibits(&self, source: &Labels, target: &Labels) -> bool {
        let both = |labels: &Labels| {
            matcher::all_match(&self.source, labels) && matcher::all_match(&self.target, labels)
        };
        matcher::all_match(&self.target, target)
            && matcher::all_match(&self.source, source)
            && self.equal.iter().all(|l| source.get(l) == target.get(l))
            && !(both(source) && both(target))
    }
}

/// The built-in rule and the config file's: one with the built-in's name replaces it, and
/// `enabled = false` leaves a rule out.
pub fn rules(configs: &[InhibitRuleConfig]) -> Result<Vec<InhibitRule>, InhibitError> {
    let mut rules = Vec::new();
    let replaces_builtin = configs.iter().any(|c| c.name.as_deref() == Some(BUILTIN));
    if !replaces_builtin {
        rules.push(InhibitRule::builtin());
    }
    for (index, config) in configs.iter().enumerate() {
        if config.enabled != Some(false) {
            rules.push(InhibitRule::from_config(config, index)?);
        }
    }
    Ok(rules)
}

/// The rule and the open alert inhibiting `target`, if one does.
pub fn inhibitor<'a>(
    rules: &'a [InhibitRule],
    target: &AlertRecord,
    open: &[&'a AlertRecord],
) -> Option<(&'a InhibitRule, &'a AlertRecord)> {
    let others = open
        .iter()
        .copied()
        .filter(|source| source.fingerprint != target.fingerprint)
        .map(|source| (source, &source.labels));
    inhibiting(rules, &target.labels, others)
}

/// The rule and the first of `sources` (each with its labels) inhibiting an alert with
/// `target` labels, if one does.
pub fn inhibiting<'a, 'l, T: Copy>(
    rules: &'a [InhibitRule],
    target: &Labels,
    sources: impl Iterator<Item = (T, &'l Labels)> + Clone,
) -> Option<(&'a InhibitRule, T)> {
    // Most alerts are no rule's target: that is known without looking at the sources.
    rules
        .iter()
        .filter(|rule| rule.targets(target))
        .find_map(|rule| {
            sources
                .clone()
                .find(|(_, labels)| rule.inhibits(labels, target))
                .map(|(source, _)| (rule, source))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(k, v)| (*k, Some(*v))))
    }

    #[test]
    fn a_failed_deploy_mutes_its_own_build_and_system_errors_only() {
        let rule = InhibitRule::builtin();
        let deploy = labels(&[("rule", "deploy_failed"), ("deployment", "dpl_a")]);
        let cases = [
            (
                labels(&[("rule", "build_failed"), ("deployment", "dpl_a")]),
                true,
            ),
            (
                labels(&[("rule", "system_error"), ("deployment", "dpl_a")]),
                true,
            ),
            (
                labels(&[("rule", "build_failed"), ("deployment", "dpl_b")]),
                false,
            ),
            (
                labels(&[("rule", "runtime_error_burst"), ("deployment", "dpl_a")]),
                false,
            ),
            (labels(&[("rule", "system_error")]), false),
        ];
        for (target, inhibited) in cases {
            assert_eq!(rule.inhibits(&deploy, &target), inhibited, "{target:?}");
        }
        // A build failure does not mute the deploy failure.
        let build = labels(&[("rule", "build_failed"), ("deployment", "dpl_a")]);
        assert!(!rule.inhibits(&build, &deploy));
    }

    #[test]
    fn missing_labels_are_equal_and_both_sided_alerts_do_not_inhibit_each_other() {
        let config = InhibitRuleConfig {
            name: Some("critical_mutes_warnings".into()),
            source_matchers: vec!["severity=critical".into()],
            target_matchers: vec!["severity=~\"critical|medium\"".into()],
            equal: vec!["project".into()],
            enabled: None,
        };
        let rule = InhibitRule::from_config(&config, 0).expect("valid");
        let critical = labels(&[("severity", "critical")]);
        assert!(rule.inhibits(&critical, &labels(&[("severity", "medium")])));
        // Both match both sides: neither inhibits the other.
        assert!(!rule.inhibits(&critical, &labels(&[("severity", "critical")])));
        assert!(!rule.inhibits(
            &labels(&[("severity", "critical"), ("project", "a")]),
            &labels(&[("severity", "medium"), ("project", "b")])
        ));
    }

    #[test]
    fn the_config_replaces_or_drops_the_builtin_and_bad_rules_are_named() {
        assert_eq!(rules(&[]).expect("rules"), [InhibitRule::builtin()]);
        let off = InhibitRuleConfig {
            name: Some(BUILTIN.into()),
            enabled: Some(false),
            ..Default::default()
        };
        assert!(rules(&[off]).expect("rules").is_empty());
        let bad = InhibitRuleConfig {
            source_matchers: vec!["rul=x".into()],
            target_matchers: vec!["rule=y".into()],
            ..Default::default()
        };
        let err = rules(&[bad]).expect_err("a typo").to_string();
        assert!(
            err.contains("inhibit_rules[0]") && err.contains("unknown label"),
            "{err}"
        );
        let equal = InhibitRuleConfig {
            source_matchers: vec!["rule=x".into()],
            target_matchers: vec!["rule=y".into()],
            equal: vec!["deploymnet".into()],
            ..Default::default()
        };
        assert!(rules(&[equal])
            .expect_err("a typo")
            .to_string()
            .contains("deploymnet"));
    }
}
