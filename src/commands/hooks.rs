//! `shiplog webhooks` and `shiplog drains`: what Vercel posts to `serve --listen`, set up from
//! here. Registering and deleting change the team's settings: they need the operator role.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use shiplog::config::Settings;
use shiplog::exit;
use shiplog::log::Logger;
use shiplog::secret::Secret;
use shiplog::vercel::hooks::{NewDrain, DEPLOYMENT_EVENTS};
use shiplog::vercel::{VercelClient, VercelError};

use super::error::{CommandError, Exit};
use crate::cli::{Cli, DrainsCommand, HooksCommand, WebhooksCommand};

pub async fn webhooks(cli: &Cli, command: WebhooksCommand) -> Exit {
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    match command {
        WebhooksCommand::Register { url, projects } => {
            let client = connect(&mut settings, Some("register a webhook")).await?;
            let projects = with_watched(&client, &settings, projects).await?;
            let hook = client
                .create_webhook(&url, &projects)
                .await
                .map_err(vercel_failed)?;
            say!(
                "Created webhook {} posting {} to {}",
                hook.id,
                DEPLOYMENT_EVENTS.join(", "),
                hook.url
            );
            match &hook.secret {
                Some(secret) => print_secret(secret, "VERCEL_WEBHOOK_SECRET"),
                None => say!("Vercel sent no secret: copy it from the webhook's settings"),
            }
        }
        WebhooksCommand::Kept(command) => return kept(&mut settings, Kept::Webhook, command).await,
    }
    Ok(exit::OK)
}

pub async fn drains(cli: &Cli, command: DrainsCommand) -> Exit {
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    match command {
        DrainsCommand::Register {
            url,
            projects,
            sources,
            environments,
            encoding,
            gzip,
        } => {
            let client = connect(&mut settings, Some("register a log drain")).await?;
            let projects = with_watched(&client, &settings, projects).await?;
            let secret = Secret::new(new_secret());
            let drain = NewDrain {
                url,
                project_ids: projects,
                sources,
                environments,
                encoding,
                gzip,
                secret: secret.clone(),
            };
            let made = client.create_drain(&drain).await.map_err(vercel_failed)?;
            say!("Created log drain {} posting to {}", made.id, made.url);
            print_secret(&secret, "VERCEL_DRAIN_SECRET");
        }
        DrainsCommand::Kept(command) => return kept(&mut settings, Kept::Drain, command).await,
    }
    Ok(exit::OK)
}

/// Which of the two.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Webhook,
    Drain,
}

impl Kept {
    fn noun(self) -> &'static str {
        match self {
            Kept::Webhook => "webhook",
            Kept::Drain => "log drain",
        }
    }
}

/// `list` and `delete`, of webhooks or of drains.
async fn kept(settings: &mut Settings, kind: Kept, command: HooksCommand) -> Exit {
    match command {
        HooksCommand::List { json } => {
            let client = connect(settings, None).await?;
            let (listed, lines) = match kind {
                Kept::Webhook => {
                    let hooks = client.list_webhooks().await.map_err(vercel_failed)?;
                    let lines = hooks.iter().map(|hook| {
                        let events = hook.events.join(",");
                        format!(
                            "{}  {}  {events}  ({})",
                            hook.id,
                            hook.url,
                            scope(&hook.project_ids)
                        )
                    });
                    (serde_json::to_value(&hooks), lines.collect::<Vec<_>>())
                }
                Kept::Drain => {
                    let drains = client.list_drains().await.map_err(vercel_failed)?;
                    let lines = drains.iter().map(|drain| {
                        let status = drain.status.as_deref().unwrap_or("-");
                        format!(
                            "{}  {}  {status}  ({})",
                            drain.id,
                            drain.url,
                            scope(&drain.project_ids)
                        )
                    });
                    (serde_json::to_value(&drains), lines.collect::<Vec<_>>())
                }
            };
            if json {
                let listed = listed.map_err(|err| {
                    CommandError::new(exit::DATA, format!("could not write JSON: {err}"))
                })?;
                say!("{listed:#}");
            } else {
                lines.iter().for_each(|line| say!("{line}"));
            }
        }
        HooksCommand::Delete { id, yes } => {
            let noun = kind.noun();
            let client = connect(settings, Some(&format!("delete a {noun}"))).await?;
            confirm(&format!("Delete {noun} {id}?"), yes)?;
            match kind {
                Kept::Webhook => client.delete_webhook(&id).await,
                Kept::Drain => client.delete_drain(&id).await,
            }
            .map_err(vercel_failed)?;
            say!("Deleted {noun} {id}");
        }
    }
    Ok(exit::OK)
}

/// The client, once the role allows `change` (a change of the team's settings), when any.
async fn connect(
    settings: &mut Settings,
    change: Option<&str>,
) -> Result<VercelClient, CommandError> {
    if let Some(change) = change {
        if !settings.role.may_act() {
            return Err(CommandError::new(
                exit::DENIED,
                format!(
                    "{} may not {change}: it takes the operator role (this is {})",
                    settings.user,
                    settings.role.as_str()
                ),
            )
            .hint("run it as an operator: SHIPLOG_ROLE=operator (or --role operator)"));
        }
    }
    let logger = Logger::builder().build();
    let (_, _, client) = super::vercel_access(settings, &logger).await?;
    Ok(client)
}

/// `projects`, and the project `--project` (`SHIPLOG_PROJECT`) names, by its id.
async fn with_watched(
    client: &VercelClient,
    settings: &Settings,
    mut projects: Vec<String>,
) -> Result<Vec<String>, CommandError> {
    if let Some(watched) = &settings.project {
        let project = client.get_project(watched).await.map_err(vercel_failed)?;
        if !projects.contains(&project.id) {
            projects.push(project.id);
        }
    }
    Ok(projects)
}

/// The secret, once, with where it goes. It is shown nowhere else and kept nowhere by shiplog.
fn print_secret(secret: &Secret, variable: &str) {
    say!("Its secret, shown this once: {}", secret.expose());
    say!(
        "Give it to the listener, for example: {variable}=<the secret> shiplog serve --listen 8787"
    );
    say!("(keep it in your secret store; several, comma-separated, while you rotate)");
}

/// 32 random bytes as hex: a drain's signing secret.
fn new_secret() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scope(project_ids: &[String]) -> String {
    if project_ids.is_empty() {
        "every project".to_owned()
    } else {
        project_ids.join(",")
    }
}

/// Asked on a terminal; `--yes` elsewhere.
fn confirm(question: &str, yes: bool) -> Result<(), CommandError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CommandError::new(exit::DENIED, "not confirmed")
            .hint("add --yes to confirm without a terminal"));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    if answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(CommandError::new(exit::DENIED, "not confirmed"))
    }
}

fn vercel_failed(err: VercelError) -> CommandError {
    CommandError::new(exit::FOLLOW_FAILED, err)
}
