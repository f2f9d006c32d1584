//! Taking an action through its guards to Vercel, and recording every step.
//!
//! The order matters: the role before anything is sent; the record of a request before it is
//! confirmed, of the confirmation before the claim and the request; the claim (one per action
//! and deployment, or per project for what moves production, across instances) before the
//! request. A request whose answer is lost is not simply sent again: first the deployment or
//! project is read (a redeploy is found by the action id in its `meta`), and only when that
//! shows nothing happened is it sent again (and recorded as resent). When Vercel cannot tell,
//! the action is recorded as unknown and its claim kept: it may have happened.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::audit::{ActionRecord, ActionTrail, Outcome};
use super::lookup::{self, Effect};
use super::plan::{Confirmation, Plan};
use super::{ActionError, ActionKind, ActionRequest, Actor, Refusal};
use crate::clock::now_ms;
use crate::retry::RetryPolicy;
use crate::store::StateStore;
use crate::vercel::{VercelClient, VercelError};

/// How long a claim holds while its action is being sent: longer than the slowest send (every
/// try timing out, each followed by a look at whether it took effect). An action that failed
/// gives its claim back at once; one whose fate is unknown keeps it.
const CLAIM_TTL: Duration = Duration::from_secs(10 * 60);

/// How long a done action keeps the same one from being sent again (a second dashboard
/// pressing it a moment later).
const DONE_CLAIM_TTL: Duration = Duration::from_secs(60);

/// The longest text from a person or the command line a record keeps.
const MAX_TYPED: usize = 200;

/// The longest reason kept (it also becomes a rollback's description at Vercel).
const MAX_REASON: usize = 500;

/// What the person said to the confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    Declined,
    /// On a terminal or the dashboard: the name typed (when asked) and a reason.
    Given {
        typed: Option<String>,
        reason: Option<String>,
    },
    /// `--yes`: confirmed beforehand, off a terminal.
    Assumed {
        reason: Option<String>,
    },
}

/// An action that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub plan: Plan,
    /// `Succeeded`, or `AlreadyDone` when it had happened before it was sent.
    pub outcome: Outcome,
    /// The deployment a redeploy made.
    pub created: Option<String>,
    /// What happened, in a sentence.
    pub message: String,
}

/// Who holds the claim on an action and deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    action_id: String,
    user: String,
    at: i64,
}

/// Takes actions for one person.
pub struct Actions {
    client: VercelClient,
    store: StateStore,
    trail: ActionTrail,
    actor: Actor,
    /// This process, in the records it writes.
    instance: String,
    retry: RetryPolicy,
}

impl Actions {
    pub fn new(client: VercelClient, store: StateStore, trail: ActionTrail, actor: Actor) -> Self {
        Actions {
            client,
            store,
            trail,
            actor,
            instance: instance_name(),
            retry: RetryPolicy::default(),
        }
    }

    /// Waits between tries of a request whose answer was lost (tests make it short).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn trail(&self) -> &ActionTrail {
        &self.trail
    }

    /// This process, as the records it writes name it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Checks the role, looks the action up and checks it against the deployment's state; the
    /// request is recorded before this returns the plan to confirm.
    pub async fn plan(&self, request: &ActionRequest) -> Result<Plan, ActionError> {
        check_role(&self.trail, &self.actor, request).await?;
        let action_id = ulid::Ulid::new().to_string();
        let plan = match lookup::look_up(&self.client, request, action_id.clone()).await {
            Ok(plan) => plan,
            Err(err) => {
                let error = ActionError::from_vercel(request.kind, &err);
                let record = ActionRecord {
                    answer: Some(error.to_string()),
                    ..asked(
                        &self.actor,
                        &self.instance,
                        &action_id,
                        request,
                        Outcome::Failed,
                    )
                };
                self.best_effort(&record, "a failed look-up").await;
                return Err(error);
            }
        };
        if let Err(refusal) = plan.check() {
            return self
                .refused(self.plan_record(&plan, Outcome::Refused), refusal)
                .await;
        }
        self.write(self.plan_record(&plan, Outcome::Requested))
            .await?;
        Ok(plan)
    }

    /// Sends a confirmed plan: recorded, claimed, sent once (a lost answer is looked for before
    /// a second try), and its result recorded.
    pub async fn run(&self, plan: &Plan, consent: Consent) -> Result<Finished, ActionError> {
        // A plan is data: whoever hands one in is checked again.
        if !self.actor.role.may_act() {
            let refusal = Refusal::Role {
                role: self.actor.role.as_str(),
                action: plan.kind.as_str(),
            };
            return self
                .refused(self.plan_record(plan, Outcome::Refused), refusal)
                .await;
        }
        let reason = match consent {
            Consent::Declined => {
                let record = self.plan_record(plan, Outcome::Declined);
                return self.refused(record, Refusal::NotConfirmed).await;
            }
            Consent::Given { typed, reason } => {
                let typed = typed.unwrap_or_default();
                if plan.confirmation == Confirmation::ProjectName && typed.trim() != plan.project {
                    let refusal = Refusal::NameMismatch {
                        project: plan.project.clone(),
                    };
                    return self
                        .refused(self.plan_record(plan, Outcome::Refused), refusal)
                        .await;
                }
                reason
            }
            Consent::Assumed { reason } => reason,
        };
        let reason = reason
            .map(|r| clean(&r, MAX_REASON))
            .filter(|r| !r.is_empty());
        let confirmed = ActionRecord {
            reason: reason.clone(),
            ..self.plan_record(plan, Outcome::Confirmed)
        };
        self.write(confirmed).await?;
        let claim = self.claim(plan, reason.as_deref()).await?;
        let sent = self.send(plan, reason.as_deref()).await;
        let (outcome, created, answer) = match sent {
            Ok(done) => done,
            Err(err) => {
                let outcome = match err {
                    // It may have happened: the claim stays, so nobody sends it again blindly.
                    ActionError::Uncertain(_) => Outcome::Unknown,
                    _ => {
                        self.release(plan, &claim).await;
                        Outcome::Failed
                    }
                };
                let record = ActionRecord {
                    reason,
                    answer: Some(err.to_string()),
                    ..self.plan_record(plan, outcome)
                };
                self.best_effort(&record, "an action's failure").await;
                return Err(err);
            }
        };
        self.hold_done(plan).await;
        let record = ActionRecord {
            reason,
            created: created.clone(),
            answer: Some(answer.clone()),
            ..self.plan_record(plan, outcome)
        };
        // It happened either way; a trail that misses its result is said in the diagnostics.
        self.best_effort(&record, "an action's result").await;
        Ok(Finished {
            plan: plan.clone(),
            outcome,
            created,
            message: answer,
        })
    }

    /// Our claim on `plan`'s target, made now.
    fn claim_of(&self, plan: &Plan) -> Claim {
        Claim {
            action_id: plan.action_id.clone(),
            user: self.actor.user.clone(),
            at: now_ms(),
        }
    }

    /// One claim per action and target at a time, across every instance on the store.
    /// Gives the claim as stored, to give it back with.
    async fn claim(&self, plan: &Plan, reason: Option<&str>) -> Result<String, ActionError> {
        let ours = self.claim_of(plan);
        let text = serde_json::to_string(&ours).unwrap_or_default();
        let refusal = if self.store.is_degraded() {
            // Its local fallback is this machine's only: another instance would not see it.
            Err(Refusal::Store("Redis is unreachable".to_owned()))
        } else {
            match self
                .store
                .put_if_absent(&claim_key(plan), &text, CLAIM_TTL)
                .await
            {
                Err(err) => Err(Refusal::Store(err.to_string())),
                Ok(winner) => match serde_json::from_str::<Claim>(&winner) {
                    Ok(winner) if winner.action_id == plan.action_id => Ok(()),
                    Ok(winner) => Err(Refusal::Claimed {
                        user: clean(&winner.user, MAX_TYPED),
                        action: plan.kind.as_str(),
                        seconds: (now_ms() - winner.at).max(0) / 1000,
                        action_id: clean(&winner.action_id, MAX_TYPED),
                    }),
                    Err(_) => Err(Refusal::Store(format!(
                        "the claim {} is not shiplog's",
                        claim_key(plan)
                    ))),
                },
            }
        };
        let Err(refusal) = refusal else {
            return Ok(text);
        };
        let record = ActionRecord {
            reason: reason.map(str::to_owned),
            ..self.plan_record(plan, Outcome::Refused)
        };
        self.refused(record, refusal).await
    }

    /// A done action's claim holds a minute more, then lapses.
    async fn hold_done(&self, plan: &Plan) {
        let ours = self.claim_of(plan);
        if let Err(err) = self
            .store
            .put_json(&claim_key(plan), &ours, DONE_CLAIM_TTL)
            .await
        {
            tracing::warn!(error = %err, "could not shorten an action's claim");
        }
    }

    /// Gives the claim back after a failure, so the action can be tried again at once; only
    /// while it is still ours (`claim` as stored).
    async fn release(&self, plan: &Plan, claim: &str) {
        if let Err(err) = self.store.delete_if(&claim_key(plan), claim).await {
            tracing::warn!(error = %err, "could not give an action's claim back");
        }
    }

    /// Sends the request; after a lost answer, looks whether it took effect before sending it
    /// again. Gives the outcome, the deployment a redeploy made, and what happened.
    async fn send(
        &self,
        plan: &Plan,
        reason: Option<&str>,
    ) -> Result<(Outcome, Option<String>, String), ActionError> {
        if plan.kind != ActionKind::Redeploy {
            // Done meanwhile, by someone whose claim had lapsed.
            if let Ok(Effect::Done(created)) = lookup::effect(&self.client, plan).await {
                let answer = format!("{} had already happened; nothing was sent", plan.summary());
                return Ok((Outcome::AlreadyDone, created, answer));
            }
        }
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > 1 {
                let resent = ActionRecord {
                    reason: reason.map(str::to_owned),
                    ..self.plan_record(plan, Outcome::Resent)
                };
                self.write(resent).await?;
            }
            let error = match lookup::request(&self.client, plan, reason).await {
                Ok(created) => {
                    let answer = done_sentence(plan, created.clone());
                    return Ok((Outcome::Succeeded, created, answer));
                }
                // Rate limited: nothing was done; wait as asked and send it again.
                Err(err) if err.status() == Some(429) && tries < self.retry.max_attempts => {
                    tokio::time::sleep(self.retry.delay(tries - 1, err.retry_after())).await;
                    continue;
                }
                Err(err) if !may_have_acted(&err) => {
                    return Err(ActionError::from_vercel(plan.kind, &err))
                }
                Err(err) => err,
            };
            // The answer is lost, not necessarily the action: find out before anything else.
            match self.look_for_effect(plan, tries, &error).await? {
                Effect::Done(created) => {
                    let answer = format!(
                        "{} (its answer was lost; Vercel shows it done)",
                        done_sentence(plan, created.clone())
                    );
                    return Ok((Outcome::Succeeded, created, answer));
                }
                Effect::NotDone if tries >= self.retry.max_attempts => {
                    return Err(ActionError::from_vercel(plan.kind, &error))
                }
                Effect::NotDone => {}
            }
        }
    }

    /// Asks Vercel whether the action took effect after `error`, waiting between tries; when
    /// it cannot tell, the action's fate is unknown.
    async fn look_for_effect(
        &self,
        plan: &Plan,
        tries: u32,
        error: &VercelError,
    ) -> Result<Effect, ActionError> {
        let mut looks = 0;
        loop {
            tokio::time::sleep(self.retry.delay(tries - 1 + looks, error.retry_after())).await;
            match lookup::effect(&self.client, plan).await {
                Ok(effect) => return Ok(effect),
                Err(_) if looks + 1 < self.retry.max_attempts => looks += 1,
                Err(look) => {
                    return Err(ActionError::Uncertain(format!(
                        "the {} may have happened: its answer was lost ({error}) and Vercel could not say since ({look})",
                        plan.kind.as_str()
                    )))
                }
            }
        }
    }

    /// Writes a record the action does not wait for; a failure is said in the diagnostics.
    async fn best_effort(&self, record: &ActionRecord, what: &str) {
        best_effort(&self.trail, record, what).await;
    }

    async fn refused<T>(&self, record: ActionRecord, refusal: Refusal) -> Result<T, ActionError> {
        refused(&self.trail, record, refusal).await
    }

    /// Writes a record the action cannot go on without.
    async fn write(&self, record: ActionRecord) -> Result<(), ActionError> {
        self.trail
            .append(&record)
            .await
            .map_err(|err| Refusal::Audit(err.to_string()).into())
    }

    fn record_of(&self, action_id: &str, kind: ActionKind, outcome: Outcome) -> ActionRecord {
        record(&self.actor, &self.instance, action_id, kind, outcome)
    }

    fn plan_record(&self, plan: &Plan, outcome: Outcome) -> ActionRecord {
        ActionRecord {
            project: plan.project.clone(),
            deployment: plan.deployment.clone(),
            from: match plan.kind {
                ActionKind::Promote | ActionKind::Rollback => plan.production.clone(),
                _ => None,
            },
            ..self.record_of(&plan.action_id, plan.kind, outcome)
        }
    }
}

/// The role guard on its own: refuses, and records the refusal, when `actor` may not act, before
/// anything is looked up. [`Actions::plan`] runs it first; the command line runs it before it
/// needs a token.
pub async fn check_role(
    trail: &ActionTrail,
    actor: &Actor,
    request: &ActionRequest,
) -> Result<(), ActionError> {
    if actor.role.may_act() {
        return Ok(());
    }
    let refusal = Refusal::Role {
        role: actor.role.as_str(),
        action: request.kind.as_str(),
    };
    let action_id = ulid::Ulid::new().to_string();
    let record = asked(
        actor,
        &instance_name(),
        &action_id,
        request,
        Outcome::Refused,
    );
    refused(trail, record, refusal).await
}

/// A record of what was asked, before the deployment is known: the project and deployment as
/// typed, cleaned.
fn asked(
    actor: &Actor,
    instance: &str,
    action_id: &str,
    request: &ActionRequest,
    outcome: Outcome,
) -> ActionRecord {
    ActionRecord {
        project: clean(request.project.as_deref().unwrap_or_default(), MAX_TYPED),
        deployment: clean(request.deployment.as_deref().unwrap_or_default(), MAX_TYPED),
        ..record(actor, instance, action_id, request.kind, outcome)
    }
}

/// Writes a record the action does not wait for; a failure is said in the diagnostics.
async fn best_effort(trail: &ActionTrail, record: &ActionRecord, what: &str) {
    if let Err(err) = trail.append(record).await {
        tracing::warn!(error = %err, "could not record {what}");
    }
}

/// Records a refusal (best effort: the action is refused either way) and returns it.
async fn refused<T>(
    trail: &ActionTrail,
    record: ActionRecord,
    refusal: Refusal,
) -> Result<T, ActionError> {
    let record = ActionRecord {
        answer: Some(refusal.to_string()),
        ..record
    };
    best_effort(trail, &record, "a refused action").await;
    Err(refusal.into())
}

/// A record of `actor`'s action, with nothing of the deployment yet.
fn record(
    actor: &Actor,
    instance: &str,
    action_id: &str,
    kind: ActionKind,
    outcome: Outcome,
) -> ActionRecord {
    ActionRecord {
        at: now_ms(),
        action_id: action_id.to_owned(),
        action: kind,
        outcome,
        user: actor.user.clone(),
        role: actor.role,
        project: String::new(),
        deployment: String::new(),
        from: None,
        created: None,
        reason: None,
        answer: None,
        instance: instance.to_owned(),
    }
}

/// This process, as the records it writes name it.
fn instance_name() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

/// What a claim is on: the deployment, or for a rollback the project (a second rollback
/// pressed a moment later would go back another step).
fn claim_key(plan: &Plan) -> String {
    match plan.kind {
        ActionKind::Rollback => format!("action_claim:rollback:{}", plan.project_id),
        kind => format!("action_claim:{}:{}", kind.as_str(), plan.deployment),
    }
}

/// Whether a request that failed this way may still have acted: its answer was lost (a
/// timeout, a broken connection, an answer that could not be read) or the server failed
/// after it may have started. A refusal (4xx) or a call the breaker held back did not.
fn may_have_acted(err: &VercelError) -> bool {
    match err {
        VercelError::Api { status, .. } => *status >= 500,
        VercelError::Network(_) | VercelError::Timeout(_) | VercelError::InvalidResponse(_) => true,
        VercelError::CircuitOpen { .. } => false,
    }
}

/// What was done, in a sentence.
fn done_sentence(plan: &Plan, created: Option<String>) -> String {
    match (plan.kind, created) {
        (ActionKind::Redeploy, Some(created)) => {
            format!("{} is building {created}", plan.project)
        }
        (ActionKind::Promote | ActionKind::Rollback, _) => format!(
            "production of {} now points at {}",
            plan.project, plan.deployment
        ),
        (kind, _) => format!("{} {}", plan.deployment, kind.done()),
    }
}

/// Text from a person or the outside as a record keeps it (a reason also goes to Vercel):
/// redacted, on one line, at most `max` characters.
fn clean(text: &str, max: usize) -> String {
    let redacted = crate::log::redact::global().redact(text);
    crate::printable::one_line(&redacted)
        .trim()
        .chars()
        .take(max)
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "shiplog".to_owned())
}
