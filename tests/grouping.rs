//! Grouping and inhibition end to end, through the alerting engine and its queue to local
//! receivers: ten deployments failing with one error are one notification per channel; a late
//! member waits for the group's interval; a failed deploy mutes its own build failure; PagerDuty
//! keeps one incident per group.

mod support;

use shiplog::alert::book::{AlertState, Muted};
use shiplog::alert::channels::pagerduty::PagerDuty as PagerDutyChannel;
use shiplog::alert::channels::slack::SlackWebhook;
use shiplog::alert::channels::webhook::Webhook;
use shiplog::alert::channels::{ChannelSettings, Switched};
use shiplog::alert::routing::{Routing, RoutingConfig};
use shiplog::alert::runner::AlertCommand;
use shiplog::log::{LogEntry, Severity, Tier};
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use support::alerting::{wait_until, Alerting, Instance, Recorder};
use support::pagerduty::{AlertStatus, PagerDuty};

const ERROR: &str = "Type error: Property 'id' does not exist on type 'Cart'.";

/// `deploy_failed` to Slack and the JSON webhook (and PagerDuty when given); `build_failed`
/// too.
const RULES: &str = r#"
[[alert_rules]]
key = "deploy_failed"
tier = "deploy"
event = ["failed"]
severity = "high"
channels = ["slack", "webhook", "pagerduty"]
suppression_minutes = 10

[[alert_rules]]
key = "build_failed"
tier = "build"
event = ["failed"]
severity = "medium"
channels = ["slack", "webhook"]
suppression_minutes = 10
"#;

fn routing(toml: &str) -> Routing {
    let config: RoutingConfig = toml::from_str(toml).expect("routing");
    Routing::from_config(&config).expect("valid routing")
}

fn channels(slack: &Recorder, webhook: &Recorder) -> ChannelSettings {
    ChannelSettings {
        slack: Switched::to(SlackWebhook {
            url: Secret::new(format!("{}/services/T/B/x", slack.url)),
        }),
        webhook: Switched::to(Webhook {
            url: Secret::new(format!("{}/hook", webhook.url)),
        }),
        ..Default::default()
    }
}

/// The outcome entry of a failed deployment of the storefront, as a follower writes it.
fn deploy_failed(i: usize) -> LogEntry {
    let mut entry = LogEntry::new(
        Tier::Deploy,
        Severity::Error,
        "failed",
        format!("storefront feat/{i} {i}f2a1c9: {ERROR} · Deployment dpl_{i}aaaaaa is ERROR"),
    )
    .with_deployment(format!("vercel-dpl_{i}aaaaaa-01JD"))
    .with_build(format!("dpl_{i}aaaaaa"))
    .with_meta("first_error", ERROR)
    .with_meta("branch", format!("feat/{i}"));
    entry.metadata.project = Some("storefront".into());
    entry
}

fn build_failed(i: usize) -> LogEntry {
    let mut entry = LogEntry::new(
        Tier::Build,
        Severity::Error,
        "failed",
        "Command \"npm run build\" exited with 1",
    )
    .with_deployment(format!("vercel-dpl_{i}aaaaaa-01JD"))
    .with_build(format!("dpl_{i}aaaaaa"));
    entry.metadata.project = Some("storefront".into());
    entry
}

/// Stops the run; it tells what its groups hold before it ends.
async fn stop(instance: Instance) {
    let _ = instance.stop.send(true);
    instance.running.await.expect("the run ends");
}

/// Ten deployments fail with one error within the group's wait: each channel gets one
/// notification, listing the ten.
#[tokio::test]
async fn ten_failing_deployments_with_one_error_are_one_notification_per_channel() {
    let (slack, webhook) = (Recorder::start().await, Recorder::start().await);
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore::embedded(dir.path(), "t:").expect("store");
    let instance = Alerting {
        routing: routing("group_wait_secs = 600"),
        ..Alerting::new(channels(&slack, &webhook)).rules(RULES)
    }
    .start(store);
    for i in 0..10 {
        instance.logger.write(deploy_failed(i));
    }
    wait_until(&instance.desk, "ten alerts, waiting in their group", |a| {
        a.len() == 10
    })
    .await;
    assert!(slack.taken().is_empty(), "group_wait holds them");
    stop(instance).await;
    for (receiver, name) in [(&slack, "slack"), (&webhook, "webhook")] {
        let taken = receiver.taken();
        assert_eq!(taken.len(), 1, "{name}: one notification");
        let text = taken[0].json().to_string();
        assert!(text.contains("(10 alerts)"), "{name}: {text}");
        for i in 0..10 {
            assert!(
                text.contains(&format!("dpl_{i}aaaaaa")),
                "{name} lists dpl_{i}: {text}"
            );
        }
    }
}

/// A group told at once (no wait) gets a member a moment later: it is not told at once, but
/// with the group's next notification (here when the run stops, before `group_interval`).
#[tokio::test]
async fn a_late_member_waits_for_the_group_interval() {
    let (slack, webhook) = (Recorder::start().await, Recorder::start().await);
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore::embedded(dir.path(), "t:").expect("store");
    let instance = Alerting {
        routing: routing("group_wait_secs = 0\ngroup_interval_secs = 600"),
        ..Alerting::new(channels(&slack, &webhook)).rules(RULES)
    }
    .start(store);
    instance.logger.write(deploy_failed(1));
    slack.wait_for(1, "the first, at once").await;
    instance.logger.write(deploy_failed(2));
    wait_until(&instance.desk, "the late member in its group", |a| {
        a.len() == 2
    })
    .await;
    assert_eq!(slack.taken().len(), 1, "not told at once");
    stop(instance).await;
    let taken = slack.taken();
    assert_eq!(taken.len(), 2, "told with the group's next notification");
    let update = taken[1].json().to_string();
    assert!(update.contains("(2 alerts)"), "{update}");
}

/// A failed deploy and its own build failure: one notification (the deploy's), the build's
/// alert recorded and shown inhibited; another deployment's build failure is still told.
#[tokio::test]
async fn a_failed_deploy_mutes_its_own_build_failure() {
    let (slack, webhook) = (Recorder::start().await, Recorder::start().await);
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore::embedded(dir.path(), "t:").expect("store");
    let instance = Alerting {
        routing: routing("group_wait_secs = 600\ngroup_by = [\"...\"]"),
        ..Alerting::new(channels(&slack, &webhook)).rules(RULES)
    }
    .start(store);
    // The build's failure comes first, as it does in a real build.
    instance.logger.write(build_failed(1));
    instance.logger.write(deploy_failed(1));
    instance.logger.write(build_failed(2));
    let alerts = wait_until(&instance.desk, "the build failure shown inhibited", |a| {
        a.iter().any(|r| {
            r.rule == "build_failed"
                && r.labels.get("deployment") == "dpl_1aaaaaa"
                && matches!(&r.muted, Some(Muted::Inhibited { rule, .. }) if rule == "deploy_failed")
        })
    })
    .await;
    assert_eq!(alerts.len(), 3);
    stop(instance).await;
    let texts: Vec<String> = slack.taken().iter().map(|t| t.json().to_string()).collect();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(texts
        .iter()
        .any(|t| t.contains("deploy_failed") && t.contains("dpl_1aaaaaa")));
    assert!(texts
        .iter()
        .any(|t| t.contains("build_failed") && t.contains("dpl_2aaaaaa")));
    assert!(!texts
        .iter()
        .any(|t| t.contains("build_failed") && t.contains("dpl_1aaaaaa")));
}

/// Two deployments failing alike page PagerDuty once (one incident for the group): an
/// acknowledgement of either acknowledges it; it is resolved once both alerts are.
#[tokio::test]
async fn pagerduty_keeps_one_incident_per_group() {
    let pagerduty = PagerDuty::start().await;
    let (slack, webhook) = (Recorder::start().await, Recorder::start().await);
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore::embedded(dir.path(), "shiplog:production:").expect("store");
    let mut settings = channels(&slack, &webhook);
    settings.pagerduty = Switched::to(PagerDutyChannel {
        events_url: Secret::new(pagerduty.events_url.clone()),
        routing_key: Secret::new("0123456789abcdef0123456789abcdef"),
    });
    let instance = Alerting {
        routing: routing("group_wait_secs = 1"),
        ..Alerting::new(settings).rules(RULES)
    }
    .start(store);
    instance.logger.write(deploy_failed(1));
    instance.logger.write(deploy_failed(2));
    let trigger = pagerduty.wait_taken(1, "the group's page").await.remove(0);
    let key = trigger["dedup_key"].as_str().expect("key").to_owned();
    let alerts = wait_until(&instance.desk, "both alerts", |a| a.len() == 2).await;
    assert_eq!(pagerduty.taken().len(), 1, "one page for the group");
    let fingerprints: Vec<String> = alerts.iter().map(|a| a.fingerprint.clone()).collect();
    instance
        .ask(AlertCommand::Acknowledge {
            fingerprint: fingerprints[0].clone(),
            note: None,
        })
        .await;
    let ack = pagerduty
        .wait_taken(2, "the acknowledgement")
        .await
        .remove(1);
    assert_eq!(
        (ack["event_action"].as_str(), ack["dedup_key"].as_str()),
        (Some("acknowledge"), Some(key.as_str()))
    );
    for fingerprint in &fingerprints {
        instance
            .ask(AlertCommand::Resolve {
                fingerprint: fingerprint.clone(),
            })
            .await;
    }
    wait_until(&instance.desk, "both resolved", |a| {
        a.iter()
            .all(|r| matches!(r.state, AlertState::Resolved { .. }))
    })
    .await;
    let taken = pagerduty.wait_taken(3, "the resolution").await;
    assert_eq!(taken[2]["event_action"], "resolve");
    assert_eq!(taken[2]["dedup_key"], key.as_str());
    assert_eq!(pagerduty.alert(&key), Some((AlertStatus::Resolved, 1)));
    stop(instance).await;
    assert_eq!(pagerduty.taken().len(), 3, "resolved once, when both were");
}
