//! Vercel's deployment webhooks: the envelope `{id, type, createdAt, region, payload}` read
//! leniently (a field of the wrong type is a missing field; unknown fields are ignored), and the
//! one thing shiplog needs from each delivery.

use serde_json::Value;

/// What a delivery says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryKind {
    Created,
    /// `deployment.succeeded` and `deployment.ready`: the build is done and serving.
    Ready,
    Error,
    Canceled,
    /// The deployment now serves its project's production.
    Promoted,
    /// Production rolled back to another deployment.
    Rollback,
    /// Any other event (`deployment.cleanup`, checks, project events): acknowledged, not used.
    Other(String),
}

impl DeliveryKind {
    /// The name Vercel sends; legacy hooks still get the old dashed names.
    fn of(name: &str) -> Self {
        match name {
            "deployment.created" | "deployment" => DeliveryKind::Created,
            "deployment.succeeded"
            | "deployment.ready"
            | "deployment-ready"
            | "deployment-succeeded" => DeliveryKind::Ready,
            "deployment.error" | "deployment-error" => DeliveryKind::Error,
            "deployment.canceled" | "deployment-canceled" => DeliveryKind::Canceled,
            "deployment.promoted" | "deployment-promoted" => DeliveryKind::Promoted,
            "deployment.rollback" => DeliveryKind::Rollback,
            other => DeliveryKind::Other(other.to_owned()),
        }
    }

    /// A state a build ends in; nothing moves a deployment out of it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DeliveryKind::Ready | DeliveryKind::Error | DeliveryKind::Canceled
        )
    }

    /// The deployment's state after this event, as Vercel names states.
    pub fn state(&self) -> Option<&'static str> {
        match self {
            DeliveryKind::Created => Some("BUILDING"),
            DeliveryKind::Ready => Some("READY"),
            DeliveryKind::Error => Some("ERROR"),
            DeliveryKind::Canceled => Some("CANCELED"),
            _ => None,
        }
    }
}

/// One webhook delivery, as far as shiplog uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery's id (may be empty when a sender leaves it out).
    pub id: String,
    /// The event's name as sent.
    pub name: String,
    pub kind: DeliveryKind,
    /// When Vercel created the event (ms); 0 when absent.
    pub created_at: i64,
    /// The deployment it is about: for a rollback, the one production rolled back to.
    pub deployment: Option<String>,
    /// For a rollback, the deployment production left.
    pub from_deployment: Option<String>,
    pub project_id: Option<String>,
    /// The project's name, for display.
    pub project_name: Option<String>,
    /// `production`, `staging`, or none (a preview).
    pub target: Option<String>,
}

/// Why a body is not a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedDelivery {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a webhook delivery: it has no `type`")]
    NoType,
    #[error("a {0} delivery without a deployment id")]
    NoDeployment(String),
}

/// Reads a delivery's raw body.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, MalformedDelivery> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|err| MalformedDelivery::NotJson(err.to_string()))?;
    let name = text(&envelope, &["type"]).ok_or(MalformedDelivery::NoType)?;
    let kind = DeliveryKind::of(&name);
    let payload = envelope.get("payload").unwrap_or(&Value::Null);
    let (deployment, from_deployment) = match kind {
        DeliveryKind::Rollback => (
            text(payload, &["toDeploymentId"]).or_else(|| text(payload, &["deployment", "id"])),
            text(payload, &["fromDeploymentId"]),
        ),
        _ => (text(payload, &["deployment", "id"]), None),
    };
    if deployment.is_none() && !matches!(kind, DeliveryKind::Other(_)) {
        return Err(MalformedDelivery::NoDeployment(name));
    }
    Ok(Delivery {
        id: text(&envelope, &["id"]).unwrap_or_default(),
        created_at: envelope
            .get("createdAt")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        deployment,
        from_deployment,
        project_id: text(payload, &["project", "id"]),
        project_name: text(payload, &["deployment", "name"]).or_else(|| text(payload, &["name"])),
        target: text(payload, &["target"]),
        name,
        kind,
    })
}

/// The non-empty string at `path` under `value`.
fn text(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Delivery {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&path).expect("fixture");
        parse_delivery(&body).expect("a delivery")
    }

    #[test]
    fn every_fixture_reads_as_what_it_says() {
        let created = fixture("webhook-deployment-created.json");
        assert_eq!(created.kind, DeliveryKind::Created);
        assert_eq!(created.id, "Wc6yM1pT9vKx4QnR8sLbH");
        assert_eq!(created.created_at, 1_767_712_800_123);
        assert_eq!(
            created.deployment.as_deref(),
            Some("dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e")
        );
        assert_eq!(
            created.project_id.as_deref(),
            Some("prj_Qm4vT8xKz2LwR9bN6cYs1HdPgE3a")
        );
        assert_eq!(created.project_name.as_deref(), Some("storefront"));
        assert_eq!(created.target.as_deref(), Some("production"));
        for (file, kind) in [
            ("webhook-deployment-succeeded.json", DeliveryKind::Ready),
            (
                "webhook-deployment-succeeded-triggerdev-example.json",
                DeliveryKind::Ready,
            ),
            ("webhook-deployment-error.json", DeliveryKind::Error),
            ("webhook-deployment-canceled.json", DeliveryKind::Canceled),
            ("webhook-deployment-promoted.json", DeliveryKind::Promoted),
        ] {
            let delivery = fixture(file);
            assert_eq!(delivery.kind, kind, "{file}");
            assert!(delivery.deployment.is_some(), "{file}");
        }
        let preview = fixture("webhook-deployment-succeeded-triggerdev-example.json");
        assert_eq!(preview.target, None, "a null target is a preview");
        let rollback = fixture("webhook-deployment-rollback.json");
        assert_eq!(rollback.kind, DeliveryKind::Rollback);
        assert_eq!(
            rollback.deployment.as_deref(),
            Some("dpl_6RkM3wQz8TnB2vX9cL5yH4sJ7pG1")
        );
        assert_eq!(
            rollback.from_deployment.as_deref(),
            Some("dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e")
        );
    }

    #[test]
    fn odd_bodies_are_refused_or_read_without_the_odd_parts() {
        assert!(matches!(
            parse_delivery(b"{\"type\":"),
            Err(MalformedDelivery::NotJson(_))
        ));
        assert_eq!(parse_delivery(b"[1,2]"), Err(MalformedDelivery::NoType));
        assert_eq!(
            parse_delivery(br#"{"type":"deployment.created","payload":{"deployment":{"id":7}}}"#),
            Err(MalformedDelivery::NoDeployment("deployment.created".into()))
        );
        let other = parse_delivery(br#"{"type":"project.created","id":"x"}"#).expect("other");
        assert_eq!(other.kind, DeliveryKind::Other("project.created".into()));
        let odd = parse_delivery(
            br#"{"type":"deployment-ready","id":5,"createdAt":"soon","payload":{"deployment":{"id":"dpl_1","name":false},"target":null}}"#,
        )
        .expect("legacy name, odd types");
        assert_eq!(odd.kind, DeliveryKind::Ready);
        assert_eq!((odd.id.as_str(), odd.created_at), ("", 0));
        assert_eq!(odd.project_name, None);
    }

    proptest! {
        /// Whatever arrives, the parser answers (no panic), and a delivery it reads about a
        /// deployment names one.
        #[test]
        fn any_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(delivery) = parse_delivery(&body) {
                prop_assert!(matches!(delivery.kind, DeliveryKind::Other(_)) || delivery.deployment.is_some());
            }
        }

        #[test]
        fn any_envelope_is_read_or_refused(
            kind in prop::sample::select(vec!["deployment.created", "deployment.error", "deployment.rollback", "x"]),
            id in prop::option::of("[a-zA-Z0-9]{0,24}"),
            deployment in prop::option::of(prop_oneof![Just(Value::from("dpl_1")), Just(Value::from(3)), Just(Value::Null)]),
            created in prop::option::of(any::<i64>()),
        ) {
            let mut envelope = serde_json::json!({"type": kind, "payload": {"deployment": {}}});
            if let Some(id) = id { envelope["id"] = id.into(); }
            if let Some(created) = created { envelope["createdAt"] = created.into(); }
            if let Some(deployment) = deployment { envelope["payload"]["deployment"]["id"] = deployment; }
            let body = serde_json::to_vec(&envelope).expect("json");
            match parse_delivery(&body) {
                Ok(delivery) => prop_assert_eq!(delivery.created_at, created.unwrap_or(0)),
                Err(err) => prop_assert!(matches!(err, MalformedDelivery::NoDeployment(_))),
            }
        }
    }
}
