//! Silences end to end: a silenced alert is recorded and shown muted but not sent; when the
//! silence ends while the alert still fires the team is told once; two instances on one Redis
//! agree; the CLI adds, lists and expires them.

mod support;

use std::time::Duration;

use shiplog::alert::channels::slack::SlackWebhook;
use shiplog::alert::channels::{ChannelSettings, Switched};
use shiplog::alert::delivery::DeliveryStatus;
use shiplog::alert::matcher;
use shiplog::alert::silence::{NewSilence, Silence, Silences};
use shiplog::alert::Channel;
use shiplog::clock::now_ms;
use shiplog::secret::Secret;
use shiplog::store::{DegradedHook, StateStore};
use support::alerting::{failed_build, wait_until, Alerting, Recorder};

fn slack_to(receiver: &Recorder) -> ChannelSettings {
    ChannelSettings {
        slack: Switched::to(SlackWebhook {
            url: Secret::new(format!("{}/services/T/B/x", receiver.url)),
        }),
        ..Default::default()
    }
}

fn silence(matchers: &str, comment: &str) -> Silence {
    let asked = NewSilence {
        matchers: matcher::parse(matchers).expect("matchers"),
        starts_at: None,
        duration: Duration::from_secs(3600),
        created_by: "ana".to_owned(),
        comment: comment.to_owned(),
    };
    Silence::new(asked, now_ms()).expect("a valid silence")
}

async fn redis_store(url: &str, namespace: &str, dir: &std::path::Path) -> StateStore {
    let hook: DegradedHook = std::sync::Arc::new(|_| {});
    StateStore::redis(url, namespace, dir, hook)
        .await
        .expect("redis store")
}

/// Two instances on one Redis (as two dashboards, or a dashboard and `serve`): a silence added
/// once mutes the alert on both, its notifications are not sent, other alerts still are, and
/// when the silence is expired while the alert still fires one notification says so.
#[tokio::test]
async fn two_instances_agree_on_a_silence_and_its_end_is_told_once() {
    let redis = support::redis::RedisServer::start();
    let namespace = support::redis::fresh_namespace();
    let dir = tempfile::tempdir().expect("dir");
    let slack = Recorder::start().await;
    let stores = [
        redis_store(&redis.url, &namespace, &dir.path().join("a")).await,
        redis_store(&redis.url, &namespace, &dir.path().join("b")).await,
    ];
    let sync = || shiplog::alert::sync::AlertSync::connect(&redis.url, &namespace);
    let sync_a = sync().await.expect("sync");
    let sync_b = sync().await.expect("sync");
    let a = Alerting {
        sync: Some(sync_a),
        ..Alerting::new(slack_to(&slack))
    }
    .start(stores[0].clone());
    let b = Alerting {
        user: "bo".to_owned(),
        sync: Some(sync_b),
        ..Alerting::new(slack_to(&slack))
    }
    .start(stores[1].clone());

    let silences = Silences::new(stores[0].clone());
    let made = silences
        .add(silence(
            r#"rule=build_failed, project=~"shop|web""#,
            "flaky e2e, fixing in #482",
        ))
        .await
        .expect("added");

    b.logger.write(failed_build(
        "dpl_shop1",
        "shop",
        "Command \"npm run build\" exited with 1",
    ));
    b.logger.write(failed_build(
        "dpl_blog1",
        "blog",
        "Command \"npm run build\" exited with 1",
    ));
    // The blog's alert is sent; the shop's is recorded, muted, not sent.
    slack.wait_for(1, "the blog's notification").await;
    for instance in [&b, &a] {
        let alerts = wait_until(
            &instance.desk,
            "both alerts shown, the shop's muted",
            |alerts| {
                alerts.len() == 2
                    && alerts.iter().any(|r| {
                        r.labels.get("project") == "shop"
                            && r.muted.as_ref().and_then(|m| m.silence()) == Some(made.id.as_str())
                    })
            },
        )
        .await;
        let shop = alerts
            .iter()
            .find(|r| r.labels.get("project") == "shop")
            .expect("shop");
        assert!(
            shop.muted
                .as_ref()
                .is_some_and(|m| m.describe().ends_with("(ana: flaky e2e, fixing in #482)")),
            "{shop:?}"
        );
        let blog = alerts
            .iter()
            .find(|r| r.labels.get("project") == "blog")
            .expect("blog");
        assert!(blog.muted.is_none());
    }
    let shop = b
        .desk
        .alerts
        .borrow()
        .iter()
        .find(|r| r.labels.get("project") == "shop")
        .cloned()
        .expect("shop");
    assert!(
        matches!(shop.deliveries.get(&Channel::Slack), Some(DeliveryStatus::Off { why }) if why.contains("muted by silence")),
        "{shop:?}"
    );
    assert!(b
        .metrics
        .render_prometheus()
        .contains("logs_alerts_suppressed_total{rule=\"build_failed\"} 1"));
    assert_eq!(slack.taken().len(), 1, "only the blog's");
    assert!(slack.taken()[0].json().to_string().contains("dpl_blog1"));

    // Expired on a third party's word (the CLI): both instances see it, one tells the team.
    silences.expire(&made.id, now_ms()).await.expect("expired");
    let told = slack.wait_for(2, "the silence's end told").await;
    let text = told[1].json().to_string();
    assert!(text.contains("dpl_shop1"), "{text}");
    assert!(text.contains("ended and it still fires"), "{text}");
    for instance in [&a, &b] {
        wait_until(
            &instance.desk,
            "the shop's alert no longer muted",
            |alerts| alerts.iter().all(|r| r.muted.is_none()),
        )
        .await;
    }
    // Both instances took the end in (the one that told, and the other through it): still told
    // once.
    for instance in [&a, &b] {
        wait_until(&instance.desk, "the reminder shown sent", |alerts| {
            alerts.iter().any(|r| {
                r.labels.get("project") == "shop"
                    && matches!(
                        r.deliveries.get(&Channel::Slack),
                        Some(DeliveryStatus::Sent { .. })
                    )
            })
        })
        .await;
    }
    assert_eq!(slack.taken().len(), 2, "the silence's end is told once");
}

/// The CLI, as an on-call engineer types it: a silence added with matchers in Alertmanager's
/// syntax, listed (text and JSON, with its state), expired (and still listed with
/// `--expired`); one that would match everything, a typo in a label and no comment refused.
#[tokio::test]
async fn the_cli_adds_lists_and_expires_silences() {
    use support::bin::{run, shiplog};

    let dir = tempfile::tempdir().expect("dir");
    let cli = |args: &[&str]| {
        let mut cmd = shiplog(dir.path(), "http://127.0.0.1:9");
        cmd.arg("silences").args(args).env("USER", "ana");
        run(cmd)
    };
    let added = cli(&[
        "add",
        "rule=build_failed",
        r#"project=~"shop|web""#,
        "--for",
        "1h30m",
        "--comment",
        "flaky e2e, fixing in #482",
    ])
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(
        added
            .stdout
            .starts_with(r#"Silenced {rule="build_failed", project=~"shop|web"} until "#),
        "{}",
        added.stdout
    );
    let listed = cli(&["list", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    let silence = &json[0];
    assert_eq!(silence["status"]["state"], "active");
    assert_eq!(silence["createdBy"], "ana");
    assert_eq!(silence["matchers"][1]["isRegex"], true);
    let starts =
        shiplog::log::entry::rfc3339_ms::parse(silence["startsAt"].as_str().expect("start"))
            .expect("time");
    let ends = shiplog::log::entry::rfc3339_ms::parse(silence["endsAt"].as_str().expect("end"))
        .expect("time");
    assert_eq!(ends - starts, 90 * 60_000);
    let id = silence["id"].as_str().expect("id").to_owned();

    let text = cli(&["list"]).await.stdout;
    assert!(
        text.contains(&id) && text.contains("active") && text.contains("ana: flaky e2e"),
        "{text}"
    );

    let expired = cli(&["expire", &id[..20]]).await;
    assert_eq!(expired.code, 0, "{}", expired.stderr);
    assert!(
        expired.stdout.starts_with(&format!("Expired silence {id}")),
        "{}",
        expired.stdout
    );
    assert_eq!(cli(&["list"]).await.stdout.trim(), "No silences.");
    let all = cli(&["list", "--expired"]).await.stdout;
    assert!(all.contains(&id) && all.contains("expired"), "{all}");

    for (args, said) in [
        (
            vec!["add", "branch=~.*", "--comment", "x"],
            "matches every alert",
        ),
        (
            vec!["add", "rul=build_failed", "--comment", "x"],
            "unknown label \"rul\"",
        ),
        (vec!["add", "rule=x", "--comment", " "], "needs a comment"),
        (
            vec!["add", "rule=x", "--for", "soon", "--comment", "x"],
            "not a duration",
        ),
        (vec!["expire", "01ZZZ"], "no silence has an id"),
    ] {
        let refused = cli(&args).await;
        assert_eq!(refused.code, 64, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains(said),
            "{args:?}: {}",
            refused.stderr
        );
        assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
    }
}

/// `alerts check` applies the silences as they stand and the inhibition rules, and says how
/// the rest would group: ten deployments failing alike are one notification per channel, a
/// failed deploy's own build failure is inhibited, a silenced project's failure is muted.
#[tokio::test]
async fn alerts_check_reports_muted_inhibited_and_grouped_outcomes() {
    use shiplog::log::{LogEntry, Severity, Tier};
    use support::bin::{run, shiplog};

    let dir = tempfile::tempdir().expect("dir");
    let cli = |args: &[&str]| {
        let mut cmd = shiplog(dir.path(), "http://127.0.0.1:9");
        cmd.args(args).env("USER", "ana");
        run(cmd)
    };
    let added = cli(&[
        "silences",
        "add",
        "project=blog",
        "--comment",
        "blog rebuild",
    ])
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let error = "Type error: Property 'id' does not exist on type 'Cart'.";
    let mut lines = Vec::new();
    let entry = |tier, project: &str, dpl: &str, message: String, ts: i64| {
        let mut entry = LogEntry::at(
            1_795_684_800_000 + ts,
            tier,
            Severity::Error,
            "failed",
            message,
        )
        .with_deployment(format!("vercel-{dpl}-01JD"))
        .with_build(dpl.to_owned());
        entry.metadata.project = Some(project.into());
        entry
    };
    for i in 0..10 {
        let dpl = format!("dpl_{i}aaaaaa");
        let e = entry(
            Tier::Deploy,
            "storefront",
            &dpl,
            format!("storefront main {i}f2a1c9: {error} · Deployment {dpl} is ERROR"),
            i * 1000,
        )
        .with_meta("first_error", error);
        lines.push(serde_json::to_string(&e).expect("json"));
    }
    let build = entry(
        Tier::Build,
        "storefront",
        "dpl_0aaaaaa",
        "Command \"npm run build\" exited with 1".into(),
        0,
    );
    let blog = entry(
        Tier::Deploy,
        "blog",
        "dpl_blog111",
        "Deployment dpl_blog111 of blog is ERROR".into(),
        500,
    );
    lines.push(serde_json::to_string(&build).expect("json"));
    lines.push(serde_json::to_string(&blog).expect("json"));
    let file = dir.path().join("entries.ndjson");
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = cli(&["alerts", "check", file.to_str().expect("path")]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let said = &out.stdout;
    assert!(said.contains("12 alerts would fire"), "{said}");
    assert!(said.contains("1 muted by silences, 1 inhibited"), "{said}");
    assert!(
        said.contains("notifications, grouped: slack 1 for 10 alerts, discord 1 for 10 alerts, email 1 for 10 alerts"),
        "{said}"
    );
    let muted = said
        .lines()
        .find(|l| l.contains("dpl_blog111"))
        .expect("the blog's line");
    assert!(
        muted.contains("MUTED by silence") && muted.contains("(ana: blog rebuild)"),
        "{muted}"
    );
    let inhibited = said
        .lines()
        .find(|l| l.contains("build_failed"))
        .expect("the build's line");
    assert!(
        inhibited.contains("INHIBITED by deploy_failed"),
        "{inhibited}"
    );
}
