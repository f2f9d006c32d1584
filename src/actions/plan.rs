//! An action looked up before it is confirmed: the deployment, its project and where production
//! points; whether the action can apply in that state (said before anything is sent, in the
//! deployment's terms, rather than left to Vercel's error); and what the person must confirm.

use super::{ActionKind, Refusal};
use crate::vercel::ReadyState;

/// What the person must give before the action is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Yes or no (a cancel, a preview redeploy).
    YesNo,
    /// The project's name typed again, and an optional reason (anything that moves production).
    ProjectName,
}

/// An action ready to be confirmed and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One per action; in the audit trail, the claim and a redeploy's `meta`.
    pub action_id: String,
    pub kind: ActionKind,
    /// The deployment acted on; for a rollback, the one production goes back to.
    pub deployment: String,
    pub state: ReadyState,
    /// `production`, or `None` for a preview.
    pub target: Option<String>,
    pub project_id: String,
    pub project: String,
    /// Where production points now.
    pub production: Option<String>,
    pub confirmation: Confirmation,
    /// When it was looked up (ms): a promote or rollback Vercel shows as requested before
    /// this is someone else's.
    pub planned_at: i64,
}

impl Plan {
    /// What the action will do, in a sentence.
    pub fn summary(&self) -> String {
        let (id, project) = (&self.deployment, &self.project);
        let now = self.production.as_deref().unwrap_or("nothing");
        match self.kind {
            ActionKind::Cancel => format!("Cancel {id} of {project} ({})", self.state),
            ActionKind::Redeploy => format!(
                "Redeploy {id} of {project} as a new {} build",
                self.target.as_deref().unwrap_or("preview")
            ),
            ActionKind::Promote => {
                format!("Promote {id} to production of {project} (now {now})")
            }
            ActionKind::Rollback => {
                format!("Roll back production of {project} from {now} to {id}")
            }
        }
    }

    /// Whether the action can apply: said in the deployment's terms.
    pub fn check(&self) -> Result<(), Refusal> {
        let id = &self.deployment;
        let refuse = |why: String| Err(Refusal::Ineligible(why));
        let production = self.target.as_deref() == Some("production");
        match self.kind {
            ActionKind::Rollback if id.is_empty() => refuse(format!(
                "{} has no earlier ready production deployment to roll back to",
                self.project
            )),
            ActionKind::Cancel => match self.state {
                ReadyState::Canceled => refuse(format!("{id} is already canceled")),
                state if state.is_terminal() => refuse(format!(
                    "{id} is {state}: only a queued or building deployment can be canceled"
                )),
                _ => Ok(()),
            },
            ActionKind::Redeploy if self.state == ReadyState::Deleted => {
                refuse(format!("{id} was deleted and cannot be built again"))
            }
            ActionKind::Redeploy => Ok(()),
            ActionKind::Promote | ActionKind::Rollback => {
                let verb = match self.kind {
                    ActionKind::Promote => "promoted",
                    _ => "rolled back to",
                };
                if self.project_id.is_empty() {
                    return refuse(format!("{id} is not a deployment of {}", self.project));
                }
                if self.state != ReadyState::Ready {
                    refuse(format!(
                        "{id} is {}: only a READY deployment can be {verb}",
                        self.state
                    ))
                } else if !production {
                    refuse(format!(
                        "{id} is a preview: only a production deployment can be {verb} without a new build (redeploy it for production instead)"
                    ))
                } else if self.production.as_deref() == Some(id.as_str()) {
                    refuse(format!(
                        "{id} already serves production of {}",
                        self.project
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// What `kind` on a deployment with `target` asks of the person.
pub(super) fn confirmation_for(kind: ActionKind, target: Option<&str>) -> Confirmation {
    match kind {
        ActionKind::Cancel => Confirmation::YesNo,
        ActionKind::Redeploy if target != Some("production") => Confirmation::YesNo,
        _ => Confirmation::ProjectName,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: ActionKind, state: ReadyState, target: Option<&str>) -> Plan {
        Plan {
            action_id: "01J".into(),
            kind,
            deployment: "dpl_a".into(),
            state,
            target: target.map(str::to_owned),
            project_id: "prj_1".into(),
            project: "checkout-web".into(),
            production: Some("dpl_b".into()),
            confirmation: confirmation_for(kind, target),
            planned_at: 0,
        }
    }

    #[test]
    fn a_cancel_applies_only_to_a_build_that_has_not_ended() {
        assert!(plan(ActionKind::Cancel, ReadyState::Building, None)
            .check()
            .is_ok());
        assert!(plan(ActionKind::Cancel, ReadyState::Queued, None)
            .check()
            .is_ok());
        let ready = plan(ActionKind::Cancel, ReadyState::Ready, None).check();
        assert_eq!(
            ready.unwrap_err().to_string(),
            "dpl_a is READY: only a queued or building deployment can be canceled"
        );
        let again = plan(ActionKind::Cancel, ReadyState::Canceled, None).check();
        assert_eq!(again.unwrap_err().to_string(), "dpl_a is already canceled");
    }

    #[test]
    fn production_moves_only_to_a_ready_production_deployment_it_is_not_on() {
        let prod = Some("production");
        assert!(plan(ActionKind::Promote, ReadyState::Ready, prod)
            .check()
            .is_ok());
        assert!(plan(ActionKind::Rollback, ReadyState::Ready, prod)
            .check()
            .is_ok());
        for refused in [
            plan(ActionKind::Promote, ReadyState::Error, prod),
            plan(ActionKind::Rollback, ReadyState::Ready, None),
            Plan {
                production: Some("dpl_a".into()),
                ..plan(ActionKind::Rollback, ReadyState::Ready, prod)
            },
        ] {
            assert!(refused.check().is_err(), "{}", refused.summary());
        }
    }

    #[test]
    fn what_touches_production_asks_for_the_project_name() {
        assert_eq!(
            confirmation_for(ActionKind::Cancel, Some("production")),
            Confirmation::YesNo
        );
        assert_eq!(
            confirmation_for(ActionKind::Redeploy, None),
            Confirmation::YesNo
        );
        for kind in [ActionKind::Promote, ActionKind::Rollback] {
            assert_eq!(
                confirmation_for(kind, Some("production")),
                Confirmation::ProjectName
            );
        }
        assert_eq!(
            confirmation_for(ActionKind::Redeploy, Some("production")),
            Confirmation::ProjectName
        );
    }
}
