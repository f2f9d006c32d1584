//! `shiplog breakglass list | access | audit`, and the breakglass service every command that
//! needs it opens: Redis at `BREAKGLASS_REDIS_URL` (else `REDIS_URL`), whose user decides what
//! this process may do, or files under the state directory; the emergency copies sealed with
//! `BREAKGLASS_KEY` (older keys in `BREAKGLASS_OLD_KEYS`).

use std::io::Write as _;

use shiplog::breakglass::access::Requester;
use shiplog::breakglass::store::{prefix_for, BreakglassStore, BreakglassStoreError};
use shiplog::breakglass::{Breakglass, Keyring};
use shiplog::config::Settings;
use shiplog::exit;
use shiplog::log::entry::rfc3339;
use shiplog::log::Logger;

use super::error::{CommandError, Exit};
use crate::cli::{BreakglassCommand, Cli};

/// The Redis URL for breakglass: `BREAKGLASS_REDIS_URL`, else `REDIS_URL`.
fn redis_url(settings: &Settings, var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .or_else(|| {
            settings
                .redis_url
                .as_ref()
                .map(|url| url.expose().to_owned())
        })
}

/// The keys of the emergency copies, if set; a malformed key is a configuration error.
pub fn breakglass_keys() -> Result<Option<Keyring>, CommandError> {
    Keyring::from_env("BREAKGLASS_KEY", "BREAKGLASS_OLD_KEYS").map_err(CommandError::config)
}

/// The token keys (`TOKEN_ENCRYPTION_KEY`, older ones in `TOKEN_ENCRYPTION_OLD_KEYS`).
pub fn token_keys() -> Result<Option<Keyring>, CommandError> {
    Keyring::from_env("TOKEN_ENCRYPTION_KEY", "TOKEN_ENCRYPTION_OLD_KEYS")
        .map_err(CommandError::config)
}

/// The token keys, which this command cannot do without; `hint` says what to set.
pub fn required_token_keys(hint: &str) -> Result<Keyring, CommandError> {
    token_keys()?.ok_or_else(|| {
        CommandError::config(shiplog::breakglass::VaultError::KeyMissing {
            var: "TOKEN_ENCRYPTION_KEY",
        })
        .hint(hint)
    })
}

/// Prints `value` as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> Exit {
    say!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    Ok(exit::OK)
}

/// The breakglass service, on Redis through `BREAKGLASS_REDIS_URL` (the engine's user).
pub async fn open(settings: &Settings, logger: Option<Logger>) -> Result<Breakglass, CommandError> {
    open_as(settings, logger, "BREAKGLASS_REDIS_URL").await
}

/// The breakglass service, on Redis through the URL in `url_var` (another ACL user's).
async fn open_as(
    settings: &Settings,
    logger: Option<Logger>,
    url_var: &str,
) -> Result<Breakglass, CommandError> {
    let keys = breakglass_keys()?;
    let store = match redis_url(settings, url_var) {
        Some(url) => BreakglassStore::redis(&url, &prefix_for(&settings.namespace)).await,
        None => BreakglassStore::files(
            settings.state_dir.join("breakglass"),
            keys.as_ref().map(Keyring::file_seal),
        ),
    };
    let store = store.map_err(|err| {
        CommandError::config(err).hint(
            "check BREAKGLASS_REDIS_URL (or REDIS_URL), or unset them to keep breakglass in local files",
        )
    })?;
    if let (Some(copies), Some(tokens)) = (&keys, token_keys()?) {
        if copies.newest().id == tokens.newest().id {
            return Err(CommandError::config(
                "BREAKGLASS_KEY is the same key as TOKEN_ENCRYPTION_KEY: losing one would lose both",
            )
            .hint("give breakglass a key of its own (`openssl rand -base64 32`)"));
        }
    }
    Ok(Breakglass::new(
        settings.breakglass_enabled,
        settings.breakglass_storage,
        keys,
        store,
        logger,
    ))
}

/// The breakglass service of the dashboard, or `None` (said in the diagnostics) when it
/// cannot open. The demo gets its own, with one entry (`conn_demo`) for a made-up token.
pub async fn for_screen(
    settings: &Settings,
    logger: &Logger,
    demo: bool,
) -> Option<std::sync::Arc<Breakglass>> {
    if !demo {
        return open(settings, Some(logger.clone()))
            .await
            .map(std::sync::Arc::new)
            .map_err(|_| tracing::warn!("breakglass is not available on this dashboard"))
            .ok();
    }
    // The demo keeps no seal: its key may be made afresh each run.
    let store = BreakglassStore::files(settings.state_dir.join("breakglass-demo"), None).ok()?;
    // The demo's copies are sealed with BREAKGLASS_KEY when set, else a key of this run only.
    let keys = match breakglass_keys().ok().flatten() {
        Some(keys) => keys,
        None => {
            use base64::Engine as _;
            let key: [u8; 32] = rand::random();
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            Keyring::parse(&text, None, "BREAKGLASS_KEY", "BREAKGLASS_OLD_KEYS").ok()?
        }
    };
    let breakglass = Breakglass::new(
        settings.breakglass_enabled,
        settings.breakglass_storage,
        Some(keys),
        store,
        Some(logger.clone()),
    );
    let now = shiplog::clock::now_ms();
    let connection = shiplog::breakglass::Connection {
        connection_id: "conn_demo".to_owned(),
        user_id: "user_demo".to_owned(),
        team_id: Some("team_demo".to_owned()),
        team_name: Some("Demo Team".to_owned()),
        project_ids: Vec::new(),
        access_token: String::new(),
        refresh_token: None,
        scopes: Vec::new(),
        created_at: now,
        updated_at: now,
        api_origin: None,
    };
    let token: String = (0..24)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rand::random_range(0..36)]))
        .collect();
    let token = shiplog::secret::Secret::new(format!("vcp_demo_{token}"));
    breakglass
        .create_entry(
            &connection,
            &token,
            None,
            "automatic_on_oauth_success",
            None,
        )
        .await
        .map_err(|err| tracing::warn!(%err, "the demo breakglass entry was not made"))
        .ok()?;
    Some(std::sync::Arc::new(breakglass))
}

pub async fn run(cli: &Cli, command: BreakglassCommand) -> Exit {
    let settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    match command {
        BreakglassCommand::List { json } => list(&settings, json).await,
        BreakglassCommand::Access {
            connection,
            justification,
        } => access(&settings, &connection, &justification).await,
        BreakglassCommand::Audit { json, limit } => audit(&settings, json, limit).await,
    }
}

async fn list(settings: &Settings, json: bool) -> Exit {
    let breakglass = open(settings, None).await?;
    let entries = breakglass
        .entries()
        .await
        .map_err(|err| CommandError::new(exit::FOLLOW_FAILED, err))?;
    if json {
        return print_json(&entries);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "breakglass: {}; you are {} ({}); storage {}",
        if breakglass.enabled {
            "ENABLED"
        } else {
            "off (VERCEL_BREAKGLASS_ENABLED)"
        },
        settings.user,
        settings.role.as_str(),
        match settings.breakglass_storage {
            shiplog::breakglass::entry::Storage::Sealed => "sealed",
            shiplog::breakglass::entry::Storage::Plaintext =>
                "PLAINTEXT (readable by anyone who reads the store)",
        }
    );
    if entries.is_empty() {
        let _ = writeln!(
            out,
            "No breakglass entries. `shiplog login` makes one per connection."
        );
        return Ok(exit::OK);
    }
    let now = shiplog::clock::now_ms();
    for entry in entries {
        let state = entry.state(now);
        let _ = writeln!(
            out,
            "{}  team {}  {}  uses left {}/{}  ({})",
            entry.connection_id,
            entry
                .team_name
                .as_deref()
                .or(entry.team_id.as_deref())
                .unwrap_or("personal"),
            state,
            entry.uses_left(),
            entry.max_access_count,
            entry.reason
        );
    }
    Ok(exit::OK)
}

async fn access(settings: &Settings, connection: &str, justification: &str) -> Exit {
    // The grant's VERCEL_BREAKGLASS_ACCESS entry goes to stderr and, when alerting is on, to
    // the alert rules (a critical alert), which are given time to deliver before exiting.
    let (logger, outlet) = super::stderr_logger(settings.alerts_enabled);
    let breakglass = open(settings, Some(logger.clone())).await?;
    let requester = Requester {
        user: settings.user.clone(),
        role: settings.role,
    };
    let result = breakglass
        .request_access(connection, &requester, justification)
        .await;
    super::alert_on(settings, &logger, outlet).await;
    match result {
        Ok(grant) => {
            say!("{}", grant.access_token.expose());
            eprintln!(
                "shiplog: breakglass access granted and audited: {} uses left, the entry expires {}.\n  {}",
                grant.uses_left,
                rfc3339(grant.expires_at),
                grant.warning
            );
            Ok(exit::OK)
        }
        Err(denial) => Err(CommandError::new(
            exit::DENIED,
            format!("breakglass access denied: {denial}"),
        )),
    }
}

async fn audit(settings: &Settings, json: bool, limit: usize) -> Exit {
    // A broken chain raises the breakglass_access alert, as an access would.
    let (logger, outlet) = super::stderr_logger(settings.alerts_enabled);
    let breakglass = open_as(settings, Some(logger.clone()), "BREAKGLASS_AUDIT_REDIS_URL").await?;
    let records = breakglass.audit(limit).await;
    super::alert_on(settings, &logger, outlet).await;
    let records = records.map_err(|err| match err {
        BreakglassStoreError::Tampered(_) => CommandError::new(exit::DATA, err).hint(
            "restore the breakglass directory from a backup; every access is refused until then",
        ),
        err => CommandError::new(exit::FOLLOW_FAILED, err).hint(
            "on Redis the audit trail is read with the auditor's user: BREAKGLASS_AUDIT_REDIS_URL",
        ),
    })?;
    if json {
        return print_json(&records);
    }
    let mut out = std::io::stdout().lock();
    if records.is_empty() {
        let _ = writeln!(out, "The audit trail is empty.");
    }
    for record in records {
        let _ = writeln!(
            out,
            "{}  {:<7}  {} ({})  {}  {}  \"{}\"",
            rfc3339(record.at),
            format!("{:?}", record.outcome).to_lowercase(),
            record.admin_id,
            record.role,
            record.connection_id,
            record.reason,
            record.justification
        );
    }
    Ok(exit::OK)
}
