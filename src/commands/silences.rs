//! `shiplog silences add|list|expire`: Alertmanager-style silences, kept in the state store
//! where every instance reads them at notification time.

use std::time::Duration;

use shiplog::alert::matcher;
use shiplog::alert::silence::{NewSilence, Silence, SilenceError, SilenceState, Silences};
use shiplog::clock::{now_ms, parse_duration, short_duration};
use shiplog::exit;
use shiplog::log::entry::{rfc3339_ms, rfc3339_ms::format as rfc3339};
use shiplog::log::Logger;

use super::error::{CommandError, Exit};
use crate::cli::{Cli, SilencesCommand};

pub async fn run(cli: &Cli, command: SilencesCommand) -> Exit {
    let settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let store = super::open_state(&settings, &Logger::builder().build()).await?;
    let silences = Silences::new(store);
    let now = now_ms();
    match command {
        SilencesCommand::Add {
            matchers,
            duration,
            comment,
            starts,
            author,
        } => {
            let asked = NewSilence {
                matchers: read_matchers(&matchers)?,
                starts_at: starts.as_deref().map(read_time).transpose()?,
                duration: read_duration(&duration)?,
                created_by: author.unwrap_or_else(|| settings.user.clone()),
                comment,
            };
            let silence = Silence::new(asked, now).map_err(refused)?;
            let silence = silences.add(silence).await.map_err(refused)?;
            say!(
                "Silenced {} until {} ({}): {}",
                matcher::describe(&silence.matchers),
                rfc3339(silence.ends_at),
                silence.id,
                silence.comment
            );
        }
        SilencesCommand::List { json, expired } => {
            let mut list = silences.all().await.map_err(refused)?;
            list.retain(|s| expired || s.state(now) != SilenceState::Expired);
            if json {
                let text = serde_json::to_string_pretty(&listed(&list, now)).map_err(|err| {
                    CommandError::new(exit::DATA, format!("could not write JSON: {err}"))
                })?;
                say!("{text}");
            } else if list.is_empty() {
                say!("No silences.");
            } else {
                list.iter().for_each(|s| say!("{}", line(s, now)));
            }
        }
        SilencesCommand::Expire { id } => {
            let (silence, ended) = silences.expire(&id, now).await.map_err(refused)?;
            let said = if ended { "Expired" } else { "Already expired:" };
            say!(
                "{said} silence {} {} (made by {}: {})",
                silence.id,
                matcher::describe(&silence.matchers),
                silence.created_by,
                silence.comment
            );
        }
    }
    Ok(exit::OK)
}

/// Each argument holds one or more matchers; all of them together make the silence's.
fn read_matchers(args: &[String]) -> Result<Vec<matcher::Matcher>, CommandError> {
    let mut all = Vec::new();
    for arg in args {
        let read = matcher::parse(arg).map_err(|err| {
            CommandError::new(
                exit::USAGE,
                format!("could not read the matcher {arg:?}: {err}"),
            )
            .hint(
                "write name=value, name!=value, name=~regex or name!~regex, e.g. rule=build_failed",
            )
        })?;
        all.extend(read);
    }
    Ok(all)
}

fn read_duration(text: &str) -> Result<Duration, CommandError> {
    parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CommandError::new(exit::USAGE, format!("--for {text:?} is not a duration"))
                .hint("write it as 90m, 2h, 1h30m or 1d")
        })
}

fn read_time(text: &str) -> Result<i64, CommandError> {
    rfc3339_ms::parse(text.trim()).map_err(|_| {
        CommandError::new(exit::USAGE, format!("--starts {text:?} is not a time"))
            .hint("write it in RFC 3339, e.g. 2026-12-05T22:00:00Z")
    })
}

fn refused(err: SilenceError) -> CommandError {
    let code = match err {
        SilenceError::Store(_)
        | SilenceError::Busy
        | SilenceError::Degraded
        | SilenceError::Unreadable(_) => exit::FOLLOW_FAILED,
        _ => exit::USAGE,
    };
    let hint = match err {
        SilenceError::MatchesEverything(_) => {
            Some("add a matcher that needs a value, such as rule=build_failed")
        }
        SilenceError::NoComment => Some("say why with --comment"),
        SilenceError::Unknown(_) => Some("`shiplog silences list --expired` shows every id"),
        _ => None,
    };
    CommandError::new(code, err).hint_if(hint)
}

/// `01JD4X2K9Q  active   {rule="build_failed"}  ends in 1h59m  ana: known flaky test`
fn line(silence: &Silence, now: i64) -> String {
    let state = silence.state(now);
    let when = match state {
        SilenceState::Pending => format!("starts in {}", short_duration(silence.starts_at - now)),
        SilenceState::Active => format!("ends in {}", short_duration(silence.ends_at - now)),
        SilenceState::Expired => format!("ended {} ago", short_duration(now - silence.ends_at)),
    };
    format!(
        "{}  {:<8} {}  {when}  {}: {}",
        silence.id,
        state.as_str(),
        matcher::describe(&silence.matchers),
        silence.created_by,
        silence.comment
    )
}

/// The silences with their state, as Alertmanager's API lists them.
fn listed(list: &[Silence], now: i64) -> Vec<serde_json::Value> {
    list.iter()
        .map(|s| {
            let mut value = serde_json::to_value(s).unwrap_or_default();
            value["status"] = serde_json::json!({ "state": s.state(now).as_str() });
            value
        })
        .collect()
}
