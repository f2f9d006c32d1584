//! The PagerDuty channel against a local Events API that answers as PagerDuty documents it, and
//! PagerDuty's webhooks into `serve`'s listener: one dedup key from trigger to resolve, a 400
//! shown on the alert, 429 and 5xx tried again, an acknowledgement made in PagerDuty reaching
//! the alert (signed, deduplicated, never sent back).

mod support;

use std::sync::Arc;

use shiplog::alert::book::AlertState;
use shiplog::alert::channels::pagerduty::PagerDuty as PagerDutyChannel;
use shiplog::alert::channels::{ChannelSettings, Switched};
use shiplog::alert::delivery::DeliveryStatus;
use shiplog::alert::incident::IncidentKeys;
use shiplog::alert::queue::QueueSettings;
use shiplog::alert::runner::AlertCommand;
use shiplog::alert::Channel;
use shiplog::ingest::listener::{self, ListenerParts};
use shiplog::ingest::pagerduty::sign;
use shiplog::log::Logger;
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use support::alerting::{failed_build, wait_until, Alerting, Instance};
use support::pagerduty::{AlertStatus, PagerDuty};

const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";
const WEBHOOK_SECRET: &str = "shiplog-test-pd-secret";
const ACKNOWLEDGED: &[u8] = include_bytes!("fixtures/pagerduty/webhook-incident-acknowledged.json");
/// `signatures.json`'s for the file above.
const ACKNOWLEDGED_SIGNATURE: &str =
    "v1=f5321eaf614a9c09347a96c56347fa073d300381324ccee8fa5f3f8f46e31218";
/// The fixture's `incident_key`.
const FIXTURE_KEY: &str =
    "shiplog:production:prj_Qm4vT8xKz2LwR9bN6cYs1HdPgE3a:build-failed:7c1e9a42";

/// `build_failed` pages.
const PAGING: &str = r#"
[[alert_rules]]
key = "build_failed"
tier = "build"
event = ["failed"]
severity = "high"
channels = ["pagerduty"]
suppression_minutes = 15
"#;

fn paging(pagerduty: &PagerDuty, routing_key: &str) -> Alerting {
    let channels = ChannelSettings {
        pagerduty: Switched::to(PagerDutyChannel {
            events_url: Secret::new(pagerduty.events_url.clone()),
            routing_key: Secret::new(routing_key),
        }),
        ..Default::default()
    };
    Alerting {
        // Retries within the test's time: the backoff is the queue's, shortened.
        queue: QueueSettings {
            backoff: std::time::Duration::from_millis(20),
            ..QueueSettings::default()
        },
        ..Alerting::new(channels).rules(PAGING)
    }
}

fn store(dir: &std::path::Path) -> StateStore {
    StateStore::embedded(dir, "shiplog:production:").expect("store")
}

/// A failed build of the storefront with what an outcome entry carries about its deployment.
fn storefront_failed(instance: &Instance) {
    let entry = failed_build(
        "dpl_4HnW7pLx2QcR8vT5mYb9KsZ3dF1g",
        "storefront",
        "Type error: Property 'total' does not exist on type 'Cart'.",
    )
    .with_meta("target", "preview")
    .with_meta("branch", "feat/cart")
    .with_meta("commit", "3f2a1c9")
    .with_meta(
        "first_error",
        "Type error: Property 'total' does not exist on type 'Cart'.",
    )
    .with_meta(
        "inspector_url",
        "https://vercel.com/acme/storefront/4HnW7pLx2QcR8vT5mYb9KsZ3dF1g",
    );
    instance.logger.write(entry);
}

async fn the_alert(instance: &Instance) -> String {
    let alerts = wait_until(&instance.desk, "the alert", |a| a.len() == 1).await;
    alerts[0].fingerprint.clone()
}

/// Fired, acknowledged and resolved in shiplog: PagerDuty hears trigger, acknowledge and resolve
/// with one routing key and one dedup key, and its alert goes triggered, acknowledged,
/// resolved; the trigger says what the on-call engineer needs first.
#[tokio::test]
async fn trigger_acknowledge_and_resolve_share_one_dedup_key() {
    let pagerduty = PagerDuty::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let instance = paging(&pagerduty, ROUTING_KEY).start(store(dir.path()));
    storefront_failed(&instance);
    let trigger = pagerduty.wait_taken(1, "the trigger").await.remove(0);
    let key = trigger["dedup_key"]
        .as_str()
        .expect("a dedup key")
        .to_owned();
    assert!(
        key.starts_with("shiplog:production:storefront:build_failed:"),
        "{key}"
    );
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    let payload = &trigger["payload"];
    assert_eq!(payload["severity"], "error");
    assert_eq!(payload["group"], "storefront");
    assert_eq!(payload["class"], "build_failed");
    assert_eq!(payload["component"], "dpl_4HnW7pLx2QcR8vT5mYb9KsZ3dF1g");
    let details = &payload["custom_details"];
    assert_eq!(details["branch"], "feat/cart");
    assert_eq!(details["commit"], "3f2a1c9");
    assert_eq!(details["target"], "preview");
    assert_eq!(details["rule"], "build_failed");
    assert_eq!(details["count"], 1);
    assert_eq!(
        details["first_error"],
        "Type error: Property 'total' does not exist on type 'Cart'."
    );
    assert_eq!(
        trigger["links"][0]["href"],
        "https://vercel.com/acme/storefront/4HnW7pLx2QcR8vT5mYb9KsZ3dF1g"
    );
    assert_eq!(pagerduty.alert(&key), Some((AlertStatus::Triggered, 1)));

    let fingerprint = the_alert(&instance).await;
    instance
        .ask(AlertCommand::Acknowledge {
            fingerprint: fingerprint.clone(),
            note: Some("on it".to_owned()),
        })
        .await;
    let ack = pagerduty
        .wait_taken(2, "the acknowledgement")
        .await
        .remove(1);
    assert_eq!(
        ack,
        serde_json::json!({"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": key})
    );
    assert_eq!(pagerduty.alert(&key), Some((AlertStatus::Acknowledged, 1)));
    instance.ask(AlertCommand::Resolve { fingerprint }).await;
    let resolve = pagerduty.wait_taken(3, "the resolution").await.remove(2);
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], key.as_str());
    assert_eq!(pagerduty.alert(&key), Some((AlertStatus::Resolved, 1)));
    assert!(pagerduty.dropped().is_empty(), "{:?}", pagerduty.dropped());
}

/// PagerDuty refuses the event (a routing key of the wrong length): the alert shows why, the
/// key it echoed is not shown, and nothing is tried again.
#[tokio::test]
async fn a_400_is_final_and_shown_on_the_alert() {
    let pagerduty = PagerDuty::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let instance = paging(&pagerduty, "R0UTINGKEY-too-short").start(store(dir.path()));
    storefront_failed(&instance);
    let alerts = wait_until(&instance.desk, "the refusal shown", |a| {
        a.iter().any(|r| {
            matches!(
                r.deliveries.get(&Channel::Pagerduty),
                Some(DeliveryStatus::Failed { .. })
            )
        })
    })
    .await;
    let Some(DeliveryStatus::Failed { reason }) = alerts[0].deliveries.get(&Channel::Pagerduty)
    else {
        unreachable!()
    };
    assert!(reason.contains("answered 400"), "{reason}");
    assert!(reason.contains("routing_key"), "{reason}");
    assert!(
        !reason.contains("R0UTINGKEY-too-short"),
        "the key is a secret: {reason}"
    );
    assert_eq!(pagerduty.events().len(), 1, "a 400 is not tried again");
}

/// A 429 (with `Retry-After`) and a 500: the trigger is tried again through the queue until
/// PagerDuty takes it, once.
#[tokio::test]
async fn a_429_and_a_500_are_tried_again_until_taken() {
    let pagerduty = PagerDuty::start().await;
    pagerduty.fail_with(&[(429, Some("1")), (500, None)]);
    let dir = tempfile::tempdir().expect("dir");
    let instance = paging(&pagerduty, ROUTING_KEY).start(store(dir.path()));
    storefront_failed(&instance);
    let taken = pagerduty.wait_taken(1, "the trigger, at last").await;
    assert_eq!(taken.len(), 1);
    assert_eq!(pagerduty.events().len(), 3, "a 429, a 500, then taken");
    wait_until(&instance.desk, "the alert shown sent", |a| {
        a.iter().any(|r| {
            matches!(
                r.deliveries.get(&Channel::Pagerduty),
                Some(DeliveryStatus::Sent { .. })
            )
        })
    })
    .await;
}

/// `serve`'s listener with PagerDuty's webhooks going to `instance`'s alerting: its URL and
/// its metrics.
async fn listening(dir: &std::path::Path, instance: &Instance) -> (String, Arc<Metrics>) {
    let socket = listener::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let url = format!("http://{}", socket.local_addr().expect("address"));
    let (stream, _) = tokio::sync::mpsc::channel(8);
    let metrics = Arc::new(Metrics::new());
    let (_, engine) = tokio::sync::watch::channel(Default::default());
    let parts = ListenerParts {
        webhook_secrets: Default::default(),
        drain_secrets: Default::default(),
        drain_verify: None,
        store: store(dir),
        logger: Logger::builder().build(),
        metrics: metrics.clone(),
        stream,
        engine,
        project: None,
        pagerduty_secrets: vec![Secret::new(WEBHOOK_SECRET)],
        alerts: Some(instance.desk.mirrored.clone()),
        pagerduty_api: None,
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        listener::serve(socket, parts, shutdown).await;
        drop(stop);
    });
    (url, metrics)
}

async fn post(url: &str, body: &[u8], signature: Option<&str>, webhook_id: &str) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/pagerduty/webhook"))
        .header("content-type", "application/json")
        .header("x-webhook-id", webhook_id)
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-pagerduty-signature", signature);
    }
    request.send().await.expect("an answer").status().as_u16()
}

/// PagerDuty's webhook for an incident acknowledged there (the signed fixture, verbatim)
/// acknowledges the alert it was paged for, naming who; it is not sent back to PagerDuty; the
/// same webhook again is ignored; withdrawn, the alert fires again; a forged or unsigned one
/// is refused and changes nothing.
#[tokio::test]
async fn an_acknowledgement_in_pagerduty_reaches_the_alert_once_and_is_not_sent_back() {
    let pagerduty = PagerDuty::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let instance = paging(&pagerduty, ROUTING_KEY).start(store(dir.path()));
    let (url, metrics) = listening(dir.path(), &instance).await;
    storefront_failed(&instance);
    pagerduty.wait_taken(1, "the trigger").await;
    let fingerprint = the_alert(&instance).await;
    // The fixture's incident is this alert's (as if PagerDuty had been paged with its key).
    IncidentKeys::new(store(dir.path()))
        .remember_key(&fingerprint, FIXTURE_KEY)
        .await
        .expect("kept");

    assert_eq!(post(&url, ACKNOWLEDGED, None, "w0").await, 403);
    let forged = sign("not-the-secret", ACKNOWLEDGED);
    assert_eq!(post(&url, ACKNOWLEDGED, Some(&forged), "w0").await, 403);
    assert_eq!(
        post(&url, ACKNOWLEDGED, Some(ACKNOWLEDGED_SIGNATURE), "w1").await,
        202
    );
    wait_until(&instance.desk, "acknowledged by Dana in PagerDuty", |a| {
        matches!(&a[0].state, AlertState::Acknowledged { by, .. } if by == "Dana Example (PagerDuty)")
    })
    .await;

    let withdrawn = String::from_utf8_lossy(ACKNOWLEDGED)
        .replace("incident.acknowledged", "incident.unacknowledged")
        .replace("01F3ZQ8X7KV2M9T4BN6C5RJ1WD", "01F3ZQ8X7KV2M9T4BN6C5RJ1WE");
    let signature = sign(WEBHOOK_SECRET, withdrawn.as_bytes());
    assert_eq!(
        post(&url, withdrawn.as_bytes(), Some(&signature), "w2").await,
        202
    );
    wait_until(&instance.desk, "firing again", |a| {
        a[0].state == AlertState::Firing
    })
    .await;
    // PagerDuty retries w1: taken as a repeat, nothing changes.
    assert_eq!(
        post(&url, ACKNOWLEDGED, Some(ACKNOWLEDGED_SIGNATURE), "w1").await,
        202
    );
    support::wait::eventually("the retry counted as a repeat", async || {
        metrics
            .render_prometheus()
            .contains("shiplog_listener_duplicates_total{route=\"/pagerduty/webhook\"} 1")
    })
    .await;
    assert_eq!(instance.desk.alerts.borrow()[0].state, AlertState::Firing);
    // The signed body replayed under a new X-Webhook-Id (the header is not signed): a repeat.
    assert_eq!(
        post(&url, ACKNOWLEDGED, Some(ACKNOWLEDGED_SIGNATURE), "w9").await,
        202
    );
    support::wait::eventually("the replay counted as a repeat", async || {
        metrics
            .render_prometheus()
            .contains("shiplog_listener_duplicates_total{route=\"/pagerduty/webhook\"} 2")
    })
    .await;
    assert_eq!(instance.desk.alerts.borrow()[0].state, AlertState::Firing);
    // A resolve from here is the next event PagerDuty hears: the acknowledgement and its
    // withdrawal made there were never sent back.
    instance
        .ask(AlertCommand::Resolve {
            fingerprint: fingerprint.clone(),
        })
        .await;
    let taken = pagerduty.wait_taken(2, "the resolution").await;
    let actions: Vec<&str> = taken
        .iter()
        .map(|e| e["event_action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    let alerts = instance.desk.alerts.borrow().clone();
    assert!(
        matches!(&alerts[0].state, AlertState::Resolved { by: Some(by), .. } if by == "ana"),
        "the retried acknowledgement did not act again: {:?}",
        alerts[0].state
    );
}

/// `shiplog alerts ack` and `alerts resolve` from a terminal: the stored alert is found by the
/// start of its fingerprint, PagerDuty hears acknowledge then resolve with the page's dedup
/// key before each command returns, and `alerts list` shows the state.
#[tokio::test]
async fn the_cli_acknowledges_and_resolves_and_pagerduty_hears_it() {
    use support::bin::{run, shiplog};

    let pagerduty = PagerDuty::start().await;
    let home = tempfile::tempdir().expect("dir");
    // The store as the CLI opens it: `SHIPLOG_STATE_DIR/state`, the development namespace.
    let store = StateStore::embedded(home.path().join("state/state"), "shiplog:development:")
        .expect("store");
    let instance = paging(&pagerduty, ROUTING_KEY).start(store);
    storefront_failed(&instance);
    let key = pagerduty.wait_taken(1, "the page").await[0]["dedup_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let fingerprint = the_alert(&instance).await;
    let _ = instance.stop.send(true);
    instance.running.await.expect("stopped, its book kept");
    let cli = |args: &[&str]| {
        let mut cmd = shiplog(home.path(), "http://127.0.0.1:9");
        cmd.args(args)
            .env("SHIPLOG_USER", "ana")
            .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
            .env("PAGERDUTY_EVENTS_URL", &pagerduty.events_url);
        run(cmd)
    };
    let short = &fingerprint[..10];
    let acked = cli(&["alerts", "ack", short, "--note", "rolling back"]).await;
    assert_eq!(acked.code, 0, "{}", acked.stderr);
    assert!(
        acked.stdout.contains("Acknowledged build_failed"),
        "{}",
        acked.stdout
    );
    let taken = pagerduty.taken();
    assert_eq!(
        taken.len(),
        2,
        "sent before the command returned: {taken:?}"
    );
    assert_eq!(taken[1]["event_action"], "acknowledge");
    assert_eq!(taken[1]["dedup_key"], key.as_str());
    let listed = cli(&["alerts", "list"]).await;
    assert!(
        listed.stdout.contains(short) && listed.stdout.contains("[acked]"),
        "{}",
        listed.stdout
    );

    let resolved = cli(&["alerts", "resolve", short]).await;
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    let taken = pagerduty.taken();
    assert_eq!(taken.len(), 3);
    assert_eq!(taken[2]["event_action"], "resolve");
    assert_eq!(pagerduty.alert(&key), Some((AlertStatus::Resolved, 1)));
    let again = cli(&["alerts", "resolve", short]).await;
    assert_eq!(again.code, 64, "{}", again.stderr);
    assert!(
        again.stderr.contains("resolved already"),
        "{}",
        again.stderr
    );
    let unknown = cli(&["alerts", "ack", "ffff"]).await;
    assert_eq!(unknown.code, 64);
    assert!(unknown.stderr.contains("alerts list"), "{}", unknown.stderr);
}
