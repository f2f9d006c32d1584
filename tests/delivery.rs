//! Notifications over HTTP to local servers that answer like Slack, Discord, Twilio and a
//! webhook receiver: retries, 429 pauses, permanent failures, switched-off channels, and one
//! notification for fifty matches end to end.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use shiplog::alert::channels::discord::DiscordWebhook;
use shiplog::alert::channels::slack::SlackWebhook;
use shiplog::alert::channels::twilio::Twilio;
use shiplog::alert::channels::webhook::Webhook;
use shiplog::alert::channels::{ChannelSettings, Notification, Switched};
use shiplog::alert::delivery::{Deliverer, DeliveryStatus};
use shiplog::alert::{Alert, AlertSeverity, Channel, Fingerprint};
use shiplog::log::{LogEntry, Severity, Tier};
use shiplog::retry::RetryPolicy;
use shiplog::secret::Secret;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

/// A scripted answer: status, `Retry-After`, body.
type Answer = (u16, Option<&'static str>, &'static str);

/// Answers in order; the last one repeats.
#[derive(Clone)]
struct Receiver {
    answers: Arc<Mutex<Vec<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn receive(
    State(r): State<Receiver>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    r.seen.lock().expect("lock").push(Seen {
        path,
        query,
        headers,
        body,
    });
    let (status, retry_after, text) = {
        let mut answers = r.answers.lock().expect("lock");
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0]
        }
    };
    let status = StatusCode::from_u16(status).expect("status");
    match retry_after {
        Some(wait) => (status, [("retry-after", wait)], text).into_response(),
        None => (status, text).into_response(),
    }
}

async fn receiver(answers: Vec<Answer>) -> (String, Receiver) {
    let r = Receiver {
        answers: Arc::new(Mutex::new(answers)),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(r.clone());
    (support::http::serve(app).await, r)
}

fn alert() -> Alert {
    let entry = LogEntry::at(
        1_795_684_800_000,
        Tier::Deploy,
        Severity::Error,
        "failed",
        "Deployment dpl_x of storefront is ERROR",
    )
    .with_deployment("vercel-dpl_x-1");
    Alert {
        fingerprint: Fingerprint::of("deploy_failed", &entry),
        rule: "deploy_failed".to_owned(),
        severity: AlertSeverity::High,
        channels: vec![Channel::Slack],
        entry: Arc::new(entry),
    }
}

fn quick(settings: ChannelSettings) -> Deliverer {
    Deliverer::with_retry(
        settings,
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        },
    )
}

fn on() -> ChannelSettings {
    let mut settings = ChannelSettings::default();
    settings.slack.on = true;
    settings.discord.on = true;
    settings.email.on = true;
    settings.sms.on = true;
    settings.webhook.on = true;
    settings
}

#[tokio::test]
async fn a_429_pauses_the_channel_then_delivers() {
    let (url, r) = receiver(vec![(429, Some("1"), "rate_limited"), (200, None, "ok")]).await;
    let deliverer = quick(ChannelSettings {
        slack: Switched::to(SlackWebhook {
            url: Secret::new(format!("{url}/services/T0/B0/secret")),
        }),
        ..on()
    });
    let alert = alert();
    let mut progress = Vec::new();
    let status = deliverer
        .deliver(Channel::Slack, &Notification::firing(&alert), |s| {
            progress.push(s)
        })
        .await;
    assert!(matches!(status, DeliveryStatus::Sent { .. }), "{status:?}");
    assert!(
        matches!(progress.first(), Some(DeliveryStatus::Retrying { reason, .. }) if reason == "rate limited")
    );
    let seen = r.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).expect("json");
    assert!(body["text"]
        .as_str()
        .is_some_and(|t| t.contains("deploy_failed")));
    assert!(body["blocks"].as_array().is_some_and(|b| !b.is_empty()));
}

#[tokio::test]
async fn server_errors_are_retried_and_permanent_errors_fail_visibly() {
    let (url, r) = receiver(vec![(500, None, ""), (502, None, ""), (200, None, "ok")]).await;
    let deliverer = quick(ChannelSettings {
        webhook: Switched::to(Webhook {
            url: Secret::new(format!("{url}/hook/s3cr3t")),
        }),
        ..on()
    });
    let alert = alert();
    let status = deliverer
        .deliver(Channel::Webhook, &Notification::firing(&alert), |_| {})
        .await;
    assert!(matches!(status, DeliveryStatus::Sent { .. }), "{status:?}");
    assert_eq!(r.seen.lock().expect("lock").len(), 3);
    let body: serde_json::Value =
        serde_json::from_slice(&r.seen.lock().expect("lock")[2].body).expect("json");
    assert_eq!(body["rule"], "deploy_failed");
    assert_eq!(body["entry"]["event"], "failed");

    let (url, r) = receiver(vec![(400, None, "invalid_payload")]).await;
    let deliverer = quick(ChannelSettings {
        discord: Switched::to(DiscordWebhook {
            url: Secret::new(format!("{url}/api/webhooks/1/tok3n")),
        }),
        ..on()
    });
    let status = deliverer
        .deliver(Channel::Discord, &Notification::firing(&alert), |_| {})
        .await;
    match status {
        DeliveryStatus::Failed { reason } => {
            assert_eq!(reason, "answered 400: invalid_payload");
            assert!(!reason.contains("tok3n"), "no secret in the reason");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let seen = r.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "a permanent 4xx is not retried");
    assert_eq!(seen[0].query.as_deref(), Some("wait=true"));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).expect("json");
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
}

#[tokio::test]
async fn sms_goes_to_twilio_as_a_form_with_basic_auth() {
    let (url, r) = receiver(vec![(201, None, "{\"sid\":\"SM1\"}")]).await;
    let deliverer = quick(ChannelSettings {
        sms: Switched::to(Twilio {
            api_url: url,
            account_sid: "AC123".to_owned(),
            auth_token: Secret::new("twilio-secret"),
            from: "+15005550006".to_owned(),
            to: "+15005550001".to_owned(),
        }),
        ..on()
    });
    let alert = alert();
    let status = deliverer
        .deliver(Channel::Sms, &Notification::firing(&alert), |_| {})
        .await;
    assert!(matches!(status, DeliveryStatus::Sent { .. }), "{status:?}");
    let seen = r.seen.lock().expect("lock").clone();
    assert_eq!(seen[0].path, "2010-04-01/Accounts/AC123/Messages.json");
    let form = String::from_utf8_lossy(&seen[0].body).into_owned();
    assert!(
        form.contains("To=%2B15005550001") && form.contains("Body="),
        "{form}"
    );
    let auth = seen[0]
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(auth.starts_with("Basic "));
}

#[tokio::test]
async fn switched_off_channels_and_channels_without_a_destination_say_so() {
    let settings = ChannelSettings::from_vars(|name| match name {
        "SLACK_WEBHOOK_URL" => Some("http://127.0.0.1:9/x".to_owned()),
        "SLACK_ALERTS_ENABLED" => Some("false".to_owned()),
        _ => None,
    });
    let deliverer = quick(settings);
    let alert = alert();
    for (channel, why) in [
        (Channel::Slack, "switched off (SLACK_ALERTS_ENABLED)"),
        (Channel::Discord, "no destination (DISCORD_WEBHOOK_URL)"),
        (Channel::Sms, "switched off (SMS_ALERTS_ENABLED)"),
        (Channel::Webhook, "no destination (ALERT_WEBHOOK_URL)"),
    ] {
        let status = deliverer
            .deliver(channel, &Notification::firing(&alert), |_| {})
            .await;
        assert_eq!(
            status,
            DeliveryStatus::Off {
                why: why.to_owned()
            },
            "{channel:?}"
        );
    }
    // The demo has no destinations: its alerts go to the demo channel (the screen and the log).
    let demo = quick(ChannelSettings { demo: true, ..on() });
    let status = demo
        .deliver(Channel::Slack, &Notification::firing(&alert), |_| {})
        .await;
    assert_eq!(status, DeliveryStatus::Demo);
    let debug = format!(
        "{:?}",
        ChannelSettings::from_vars(|n| (n == "SLACK_WEBHOOK_URL")
            .then(|| "https://hooks.slack.com/services/T/B/verysecret".to_owned()))
    );
    assert!(!debug.contains("verysecret"), "{debug}");
}

#[tokio::test]
async fn fifty_failures_reach_slack_once_and_the_feed_shows_it_sent() {
    use shiplog::alert::runner::desk;
    use shiplog::alert::{RuleEvaluator, RuleSet, Suppressor};
    use shiplog::log::{Delivery, Logger};
    use shiplog::metrics::Metrics;
    use shiplog::store::StateStore;

    let (url, r) = receiver(vec![(200, None, "ok")]).await;
    let deliverer = Arc::new(quick(ChannelSettings {
        slack: Switched::to(SlackWebhook {
            url: Secret::new(format!("{url}/services/T/B/x")),
        }),
        ..on()
    }));
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
    let (builder, outlet) = Logger::builder().channel("alerts", 1024, Delivery::DropWhenFull);
    let logger = builder.build();
    let engine = RuleEvaluator::new(
        RuleSet::builtin(),
        Suppressor::shared(store),
        Arc::new(Metrics::new()),
    );
    let (runner, mut desk) = desk();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let outward = shiplog::alert::runner::Outward {
        deliverer,
        queue: Arc::new(shiplog::alert::queue::DeliveryQueue::in_memory(
            Default::default(),
        )),
        metrics: Arc::new(Metrics::new()),
        user: "ana".to_owned(),
        sync: None,
        store: None,
        routing: Arc::new(shiplog::alert::routing::Routing::default().without_wait()),
    };
    tokio::spawn(runner.run(engine, outlet, logger.clone(), shutdown, outward));
    for i in 0..50 {
        logger.write(
            LogEntry::at(
                1_795_684_800_000 + i,
                Tier::Deploy,
                Severity::Error,
                "failed",
                "Deployment dpl_x of storefront is ERROR",
            )
            .with_deployment("vercel-dpl_x-1"),
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let done = desk.alerts.borrow().iter().any(|a| {
            a.rule == "deploy_failed"
                && a.count == 50
                && matches!(
                    a.deliveries.get(&Channel::Slack),
                    Some(DeliveryStatus::Sent { .. })
                )
        });
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery within 20 s: {:?}",
            desk.alerts.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), desk.alerts.changed()).await;
    }
    assert_eq!(
        r.seen.lock().expect("lock").len(),
        1,
        "one notification for fifty matches"
    );
    let record = desk.alerts.borrow()[0].clone();
    assert!(record
        .deliveries
        .get(&Channel::Discord)
        .is_some_and(|s| matches!(s, DeliveryStatus::Off { .. })));
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server_without_header_injection() {
    let smtp = support::smtp::SmtpServer::start();
    let deliverer = quick(ChannelSettings::from_vars(|name| match name {
        "SMTP_URL" => Some(format!("smtp://127.0.0.1:{}", smtp.port)),
        "ALERT_EMAIL_FROM" => Some("shiplog@example.com".to_owned()),
        "ALERT_EMAIL_TO" => Some("oncall@example.com, lead@example.com".to_owned()),
        _ => None,
    }));
    let entry = LogEntry::at(
        1_795_684_800_000,
        Tier::Deploy,
        Severity::Error,
        "failed",
        "Deployment failed\r\nBcc: attacker@example.com",
    )
    .with_deployment("vercel-dpl_x-1");
    let alert = Alert {
        fingerprint: Fingerprint::of("deploy_failed", &entry),
        rule: "deploy_failed".to_owned(),
        severity: AlertSeverity::High,
        channels: vec![Channel::Email],
        entry: Arc::new(entry),
    };
    let status = deliverer
        .deliver(Channel::Email, &Notification::firing(&alert), |_| {})
        .await;
    assert!(matches!(status, DeliveryStatus::Sent { .. }), "{status:?}");
    // The server prints this after the whole message, so every header has been read by then.
    smtp.wait_for(
        "------------ END MESSAGE ------------",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(smtp.received().contains("deploy_failed"));
    let received = smtp.received();
    assert!(
        received.contains("oncall@example.com") && received.contains("lead@example.com"),
        "{received}"
    );
    assert!(
        !received.lines().any(|l| l.starts_with("Bcc:")),
        "no injected header: {received}"
    );

    // A server that is not there: temporary, retried, then failed with a reason.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let deliverer = quick(ChannelSettings::from_vars(|name| match name {
        "SMTP_URL" => Some(format!("smtp://user:hunter2@127.0.0.1:{port}")),
        "ALERT_EMAIL_FROM" => Some("shiplog@example.com".to_owned()),
        "ALERT_EMAIL_TO" => Some("oncall@example.com".to_owned()),
        _ => None,
    }));
    match deliverer
        .deliver(Channel::Email, &Notification::firing(&alert), |_| {})
        .await
    {
        DeliveryStatus::Failed { reason } => {
            assert!(
                reason.contains("after 3 attempts") && !reason.contains("hunter2"),
                "{reason}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Like a real rate limiter: a 429 (`Retry-After: 1`) for the first request and for every
/// request in the second after it, then 200.
#[derive(Clone, Default)]
struct Limiter {
    limited_since: Arc<Mutex<Option<std::time::Instant>>>,
    served_429: Arc<Mutex<u32>>,
    served_200: Arc<Mutex<u32>>,
}

async fn limit(State(l): State<Limiter>) -> Response {
    let mut since = l.limited_since.lock().expect("lock");
    let now = std::time::Instant::now();
    let limited = match *since {
        None => {
            *since = Some(now);
            true
        }
        Some(start) => now.duration_since(start) < Duration::from_secs(1),
    };
    if limited {
        *l.served_429.lock().expect("lock") += 1;
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "rate_limited",
        )
            .into_response()
    } else {
        *l.served_200.lock().expect("lock") += 1;
        (StatusCode::OK, "ok").into_response()
    }
}

#[tokio::test]
async fn a_429_pauses_the_channel_for_every_instance_sharing_the_state() {
    use shiplog::store::StateStore;
    let limiter = Limiter::default();
    let app = Router::new()
        .route("/{*path}", post(limit))
        .with_state(limiter.clone());
    let url = format!("{}/services/T/B/x", support::http::serve(app).await);

    let dir = tempfile::tempdir().expect("dir");
    let instance = || {
        let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
        Arc::new(
            quick(ChannelSettings {
                slack: Switched::to(SlackWebhook {
                    url: Secret::new(url.clone()),
                }),
                ..on()
            })
            .sharing_pauses(store),
        )
    };
    let (a, b) = (instance(), instance());
    let alert = Arc::new(alert());
    // Instance B starts once A has been told to wait (A reports the pause as it retries).
    let (paused, is_paused) = tokio::sync::oneshot::channel();
    let first = {
        let (a, alert) = (a.clone(), alert.clone());
        tokio::spawn(async move {
            let mut paused = Some(paused);
            a.deliver(Channel::Slack, &Notification::firing(&alert), |_| {
                if let Some(paused) = paused.take() {
                    let _ = paused.send(());
                }
            })
            .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), is_paused)
        .await
        .expect("A was rate limited within 10 s")
        .expect("A reported it");
    let second = b
        .deliver(Channel::Slack, &Notification::firing(&alert), |_| {})
        .await;
    let first = first.await.expect("task");
    assert!(matches!(first, DeliveryStatus::Sent { .. }), "{first:?}");
    assert!(matches!(second, DeliveryStatus::Sent { .. }), "{second:?}");
    assert_eq!(
        *limiter.served_429.lock().expect("lock"),
        1,
        "B waited out A's pause instead of hitting the limit"
    );
    assert_eq!(*limiter.served_200.lock().expect("lock"), 2);
}
