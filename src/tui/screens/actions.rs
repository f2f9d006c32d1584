//! The actions on a deployment, from any screen: `x` opens the ones that make sense for its
//! state and target; the chosen one is looked up by the actions engine, then confirmed (yes/no,
//! or the project's name typed again and a reason), then sent. While one is open it has the
//! keys. The activity panel shows the latest of every recent action, wherever it was taken.

use crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::mpsc;

use super::{step, Ask};
use crate::actions::desk::{ActionAnswer, ActionCommand, ActivityView};
use crate::actions::{
    ActionError, ActionKind, ActionRequest, Confirmation, Consent, Finished, Plan, Refusal,
};
use crate::tui::input::InputKind;
use crate::vercel::{DeploymentSummary, ReadyState};

/// One entry of the actions menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The key that picks it.
    pub key: char,
    pub label: String,
    pub request: ActionRequest,
}

/// Where the action being taken stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Step {
    #[default]
    Closed,
    /// Choosing among what the deployment allows.
    Menu {
        deployment: String,
        choices: Vec<Choice>,
        selected: usize,
    },
    /// The engine is looking the action up.
    Looking { what: String },
    /// Yes or no.
    Asking(Plan),
    /// The project's name is being typed (then a reason).
    Typing { plan: Plan, typed: Option<String> },
    /// Sent; waiting for how it went.
    Sending(Plan),
}

#[derive(Debug, Default)]
pub struct ActionsPanel {
    pub step: Step,
    /// What the engine last published; `None` when actions are not available here.
    pub view: Option<ActivityView>,
    commands: Option<mpsc::Sender<ActionCommand>>,
}

impl ActionsPanel {
    pub fn connect(&mut self, commands: mpsc::Sender<ActionCommand>) {
        self.commands = Some(commands);
    }

    /// An action is being chosen or confirmed: it has the keys.
    pub fn is_open(&self) -> bool {
        self.step != Step::Closed
    }

    /// `x` on a deployment.
    pub fn open(&mut self, deployment: &DeploymentSummary) -> Ask {
        if self.commands.is_none() {
            return Ask::Notice("Actions are not available here".to_owned());
        }
        if let Some(view) = self.view.as_ref().filter(|v| !v.role.may_act()) {
            let role = view.role.as_str();
            return Ask::Notice(format!(
                "The {role} role may not act on deployments (SHIPLOG_ROLE=operator may)"
            ));
        }
        let choices = choices_for(deployment);
        if choices.is_empty() {
            return Ask::Notice(format!("Nothing can be done to {} now", deployment.uid));
        }
        self.step = Step::Menu {
            deployment: deployment.uid.clone(),
            choices,
            selected: 0,
        };
        Ask::Nothing
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Ask {
        match std::mem::take(&mut self.step) {
            Step::Menu {
                deployment,
                choices,
                selected,
            } => self.on_menu_key(key, deployment, choices, selected),
            Step::Asking(plan) => match key.code {
                KeyCode::Char('y' | 'Y') => self.send(
                    ActionCommand::Run(
                        plan.clone(),
                        Consent::Given {
                            typed: None,
                            reason: None,
                        },
                    ),
                    Step::Sending(plan),
                ),
                KeyCode::Char('n' | 'N') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.send(ActionCommand::Run(plan, Consent::Declined), Step::Closed)
                }
                _ => {
                    self.step = Step::Asking(plan);
                    Ask::Nothing
                }
            },
            // Waiting for the engine: Esc only hides the box; the answer still comes.
            waiting => {
                if key.code != KeyCode::Esc {
                    self.step = waiting;
                }
                Ask::Nothing
            }
        }
    }

    fn on_menu_key(
        &mut self,
        key: KeyEvent,
        deployment: String,
        choices: Vec<Choice>,
        selected: usize,
    ) -> Ask {
        let picked = match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('x') => return Ask::Nothing,
            KeyCode::Enter => choices.get(selected).cloned(),
            KeyCode::Char(c) => choices.iter().find(|choice| choice.key == c).cloned(),
            _ => None,
        };
        if let Some(choice) = picked {
            let what = choice.label.clone();
            return self.send(ActionCommand::Plan(choice.request), Step::Looking { what });
        }
        let delta = match key.code {
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::Down | KeyCode::Char('j') => 1,
            _ => 0,
        };
        let selected = step(choices.len(), Some(selected), delta).unwrap_or(0);
        self.step = Step::Menu {
            deployment,
            choices,
            selected,
        };
        Ask::Nothing
    }

    /// What the input box typed: the project's name, then the reason.
    pub fn typed(&mut self, kind: InputKind, text: &str) -> Ask {
        let Step::Typing { plan, typed } = std::mem::take(&mut self.step) else {
            return Ask::Nothing;
        };
        match (kind, typed) {
            (InputKind::ProjectName, _) => {
                self.step = Step::Typing {
                    plan,
                    typed: Some(text.trim().to_owned()),
                };
                Ask::input(InputKind::Reason)
            }
            (_, typed) => {
                let consent = Consent::Given {
                    typed,
                    reason: Some(text.to_owned()),
                };
                self.send(
                    ActionCommand::Run(plan.clone(), consent),
                    Step::Sending(plan),
                )
            }
        }
    }

    /// The input box was closed with Esc: the action is declined.
    pub fn typing_cancelled(&mut self) -> Ask {
        match std::mem::take(&mut self.step) {
            Step::Typing { plan, .. } => {
                self.send(ActionCommand::Run(plan, Consent::Declined), Step::Closed)
            }
            other => {
                self.step = other;
                Ask::Nothing
            }
        }
    }

    /// The engine's answer; what to tell the person, and the finished action for the list.
    pub fn on_answer(&mut self, answer: ActionAnswer) -> (Ask, Option<Finished>) {
        match answer {
            ActionAnswer::Planned(Ok(plan)) => match plan.confirmation {
                Confirmation::YesNo => {
                    self.step = Step::Asking(plan);
                    (Ask::Nothing, None)
                }
                Confirmation::ProjectName => {
                    self.step = Step::Typing { plan, typed: None };
                    (Ask::input(InputKind::ProjectName), None)
                }
            },
            ActionAnswer::Ran(Ok(finished)) => {
                self.step = Step::Closed;
                (Ask::Notice(finished.message.clone()), Some(finished))
            }
            ActionAnswer::Planned(Err(err)) | ActionAnswer::Ran(Err(err)) => {
                self.step = Step::Closed;
                let said = match err {
                    ActionError::Refused(Refusal::NotConfirmed) => {
                        "Not confirmed; nothing was sent".to_owned()
                    }
                    err => err.to_string(),
                };
                (Ask::Notice(said), None)
            }
        }
    }

    fn send(&mut self, command: ActionCommand, next: Step) -> Ask {
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|commands| commands.try_send(command).is_ok());
        if sent {
            self.step = next;
            Ask::Nothing
        } else {
            self.step = Step::Closed;
            Ask::Notice("The actions engine is busy or gone; nothing was sent".to_owned())
        }
    }
}

/// What can be done to `deployment` in its state and target.
pub fn choices_for(deployment: &DeploymentSummary) -> Vec<Choice> {
    let id = deployment.uid.as_str();
    let production = deployment.target.as_deref() == Some("production");
    let project = deployment
        .project_id
        .clone()
        .or_else(|| deployment.name.clone())
        .unwrap_or_default();
    let choice = |key, label: &str, request| Choice {
        key,
        label: label.to_owned(),
        request,
    };
    let mut choices = Vec::new();
    let state = deployment.state();
    if matches!(
        state,
        ReadyState::Queued | ReadyState::Initializing | ReadyState::Building
    ) {
        choices.push(choice(
            'c',
            "Cancel this build",
            ActionRequest::on(ActionKind::Cancel, id),
        ));
    }
    if state == ReadyState::Ready && production {
        choices.push(choice(
            'p',
            "Promote to production",
            ActionRequest::on(ActionKind::Promote, id),
        ));
        choices.push(choice(
            'b',
            "Roll production back to this deployment",
            ActionRequest::rollback(&project, Some(id)),
        ));
    }
    if state.is_terminal() && state != ReadyState::Deleted {
        let label = match production {
            true => "Redeploy (a new production build)",
            false => "Redeploy (a new preview build)",
        };
        choices.push(choice(
            'r',
            label,
            ActionRequest::on(ActionKind::Redeploy, id),
        ));
    }
    choices
}
