//! `shiplog deployments list | cancel | redeploy | promote | rollback | audit`: the team's
//! deployments, and the actions engine from the command line. The confirmation is asked on a
//! terminal (stderr, stdin); off a terminal an action needs `--yes`.

use std::collections::HashMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use shiplog::actions::{
    check_role, ActionError, ActionKind, ActionRecord, ActionRequest, ActionTrail, Actions, Actor,
    Confirmation, Consent, Finished, Plan,
};
use shiplog::config::Settings;
use shiplog::exit;
use shiplog::log::entry::rfc3339;
use shiplog::log::Logger;
use shiplog::printable::one_line;
use shiplog::vercel::client::ListQuery;
use shiplog::vercel::{DeploymentSummary, Project, VercelClient};

use super::error::{CommandError, Exit};
use crate::cli::{Cli, ConfirmArgs, DeploymentsCommand};

pub async fn run(cli: &Cli, command: DeploymentsCommand) -> Exit {
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let action =
        |kind, deployment: String, confirm| (ActionRequest::on(kind, &deployment), confirm);
    let (request, confirm) = match command {
        DeploymentsCommand::Audit { json, limit } => return audit(&settings, json, limit).await,
        DeploymentsCommand::List { json, limit } => {
            let (client, _) = connect(&mut settings).await?;
            return list(&client, json, limit).await;
        }
        DeploymentsCommand::Cancel {
            deployment,
            confirm,
        } => action(ActionKind::Cancel, deployment, confirm),
        DeploymentsCommand::Redeploy {
            deployment,
            confirm,
        } => action(ActionKind::Redeploy, deployment, confirm),
        DeploymentsCommand::Promote {
            deployment,
            confirm,
        } => action(ActionKind::Promote, deployment, confirm),
        DeploymentsCommand::Rollback {
            project,
            to,
            confirm,
        } => (ActionRequest::rollback(&project, to.as_deref()), confirm),
    };
    let actor = Actor {
        user: settings.user.clone(),
        role: settings.role,
    };
    let trail = trail(&settings).await?;
    // Told before anything else is needed, a token included.
    check_role(&trail, &actor, &request).await.map_err(failed)?;
    let (client, store) = connect(&mut settings).await?;
    let actions = Actions::new(client, store, trail, actor);
    act(&actions, &request, &confirm).await
}

/// The client and the state store, with the token from the settings or a stored login.
async fn connect(
    settings: &mut Settings,
) -> Result<(VercelClient, shiplog::store::StateStore), CommandError> {
    let logger = Logger::builder().build();
    let store = super::open_state(settings, &logger).await?;
    if settings.token.is_none() {
        settings.token = super::login::stored_token(settings, &store).await?;
    }
    let Some(token) = settings.token.clone() else {
        return Err(CommandError::config(
            "no Vercel token: set VERCEL_TOKEN (or --token), or `shiplog login`",
        )
        .hint(
            "the dashboard's demo needs no token: `shiplog` without one plays a simulated team",
        ));
    };
    let client = super::client_for(settings, token, &store)?;
    Ok((client, store))
}

/// The action audit trail, which an action cannot go without (77).
async fn trail(settings: &Settings) -> Result<ActionTrail, CommandError> {
    super::action_trail(settings).await.map_err(|err| {
        CommandError::new(exit::DENIED, err).hint(
            "an action that cannot be audited is not sent; check REDIS_URL or the state directory",
        )
    })
}

async fn act(actions: &Actions, request: &ActionRequest, confirm: &ConfirmArgs) -> Exit {
    let plan = actions.plan(request).await.map_err(failed)?;
    let consent = consent(&plan, confirm);
    let finished = actions.run(&plan, consent).await.map_err(failed)?;
    if confirm.json {
        print_finished_json(&finished);
    } else {
        say!("{}", one_line(&finished.message));
    }
    Ok(exit::OK)
}

/// Asks on a terminal; `--yes` confirms beforehand; otherwise there is no consent.
fn consent(plan: &Plan, confirm: &ConfirmArgs) -> Consent {
    let reason = confirm.reason.clone();
    if confirm.yes {
        return Consent::Assumed { reason };
    }
    if !std::io::stdin().is_terminal() {
        return Consent::Declined;
    }
    let mut stderr = std::io::stderr();
    let ask = |question: &str| -> String {
        let _ = write!(std::io::stderr(), "{question}");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        answer.trim().to_owned()
    };
    match plan.confirmation {
        Confirmation::YesNo => {
            let answer = ask(&format!("{}? [y/N] ", one_line(&plan.summary())));
            if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
                Consent::Given {
                    typed: None,
                    reason,
                }
            } else {
                Consent::Declined
            }
        }
        Confirmation::ProjectName => {
            let _ = writeln!(stderr, "{}.", one_line(&plan.summary()));
            let typed = ask(&format!(
                "Type the project's name ({}) to confirm: ",
                one_line(&plan.project)
            ));
            if typed.is_empty() {
                return Consent::Declined;
            }
            // A wrong name is refused (by the engine) without asking for more.
            let reason = match typed == plan.project {
                true => reason.or_else(|| Some(ask("Reason (optional): "))),
                false => reason,
            };
            Consent::Given {
                typed: Some(typed),
                reason,
            }
        }
    }
}

/// 77 when a guard said no (nothing was sent), 2 when Vercel did or could not be reached.
fn failed(err: ActionError) -> CommandError {
    let code = match err {
        ActionError::Refused(_) => exit::DENIED,
        ActionError::Vercel(..) | ActionError::Uncertain(_) => exit::FOLLOW_FAILED,
    };
    let hint = err.hint();
    CommandError::new(code, err).hint_if(hint)
}

fn print_finished_json(finished: &Finished) {
    let value = serde_json::json!({
        "action_id": finished.plan.action_id,
        "action": finished.plan.kind.as_str(),
        "outcome": finished.outcome.as_str(),
        "deployment": finished.plan.deployment,
        "project": finished.plan.project,
        "from": finished.plan.production,
        "created": finished.created,
        "message": finished.message,
    });
    say!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

async fn list(client: &VercelClient, json: bool, limit: u32) -> Exit {
    let vercel = |err: shiplog::vercel::VercelError| {
        let hint = err.hint();
        CommandError::new(exit::FOLLOW_FAILED, err).hint_if(hint)
    };
    let deployments = client
        .list_deployments(&ListQuery {
            limit: Some(limit.clamp(1, 100)),
            ..ListQuery::default()
        })
        .await
        .map_err(vercel)?
        .deployments;
    // Each project as Vercel has it: where production points, whether it was rolled back.
    let mut projects: HashMap<String, Option<Project>> = HashMap::new();
    for id in deployments.iter().filter_map(|d| d.project_id.clone()) {
        if let std::collections::hash_map::Entry::Vacant(slot) = projects.entry(id) {
            let project = client.get_project(slot.key()).await.ok();
            slot.insert(project);
        }
    }
    let project_of = |d: &DeploymentSummary| {
        d.project_id
            .as_ref()
            .and_then(|p| projects.get(p))
            .and_then(Option::as_ref)
    };
    let serves = |d: &DeploymentSummary| {
        project_of(d).is_some_and(|p| p.production_id() == Some(d.uid.as_str()))
    };
    let rolled_back = |d: &DeploymentSummary| project_of(d).is_some_and(Project::is_rolled_back);
    if json {
        let items: Vec<serde_json::Value> = deployments
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.uid,
                    "project": d.name,
                    "project_id": d.project_id,
                    "state": d.state().as_str(),
                    "target": d.target.as_deref().unwrap_or("preview"),
                    "production": serves(d),
                    "production_rolled_back": rolled_back(d),
                    "branch": d.git().branch,
                    "commit": d.git().sha,
                    "message": d.git().message,
                    "created": d.created,
                })
            })
            .collect();
        say!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "  {:<32} {:<20} {:<10} {:<10} {:<16} {:<7} MESSAGE",
        "DEPLOYMENT", "PROJECT", "STATE", "TARGET", "BRANCH", "COMMIT"
    );
    for d in &deployments {
        let git = d.git();
        let line = format!(
            "{} {:<32} {:<20} {:<10} {:<10} {:<16} {:<7} {}",
            if serves(d) { "*" } else { " " },
            d.uid,
            cut(d.name.as_deref().unwrap_or("-"), 20),
            d.state().as_str(),
            d.target.as_deref().unwrap_or("preview"),
            cut(git.branch.unwrap_or("-"), 16),
            git.short_sha().unwrap_or("-"),
            git.message.unwrap_or(""),
        );
        let _ = writeln!(out, "{}", one_line(&line));
    }
    // Said loudly: after a rollback Vercel keeps new deployments off production.
    for project in projects.values().flatten().filter(|p| p.is_rolled_back()) {
        let _ = writeln!(
            out,
            "\n! production of {} was rolled back to {}: new deployments stay off production until one is promoted (shiplog deployments promote <id>)",
            one_line(&project.name),
            project.production_id().unwrap_or("?"),
        );
    }
    Ok(exit::OK)
}

/// At most `width` characters, so the columns stay in line.
fn cut(text: &str, width: usize) -> String {
    match text.chars().count() > width {
        true => text.chars().take(width - 1).chain(['…']).collect(),
        false => text.to_owned(),
    }
}

async fn audit(settings: &Settings, json: bool, limit: usize) -> Exit {
    let records = trail(settings)
        .await?
        .recent(limit)
        .await
        .map_err(|err| CommandError::new(exit::DATA, err))?;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    if records.is_empty() {
        say!("no actions recorded yet");
    }
    for record in &records {
        say!("{}", audit_line(record));
    }
    Ok(exit::OK)
}

fn audit_line(record: &ActionRecord) -> String {
    let mut line = format!(
        "{}  {} ({})  {} {}  {}  {}",
        rfc3339(record.at),
        record.user,
        record.role.as_str(),
        record.action.as_str(),
        record.outcome.as_str(),
        if record.project.is_empty() {
            "-"
        } else {
            &record.project
        },
        if record.deployment.is_empty() {
            "-"
        } else {
            &record.deployment
        },
    );
    if let Some(reason) = &record.reason {
        line.push_str(&format!("  reason: {reason}"));
    }
    if let Some(answer) = &record.answer {
        line.push_str(&format!("  ({answer})"));
    }
    shiplog::printable::one_line(&line).into_owned()
}
