//! `shiplog login`, and the stored login other commands fall back to when no token is given.
//!
//! A login stores a connection (the token sealed with `TOKEN_ENCRYPTION_KEY`) and makes its
//! breakglass entry (the emergency copy sealed with `BREAKGLASS_KEY`). When the stored token
//! cannot be opened (the key was lost or replaced), the emergency copy is used only for an
//! admin with breakglass switched on, and audited like any access; anyone else is told what
//! happened and what to do.

use std::io::BufRead as _;
use std::time::Duration;

use shiplog::breakglass::access::{EntryError, Requester};
use shiplog::breakglass::connection::{
    api_origin, require_scopes, token_binding, Connections, REQUIRED_SCOPES,
};
use shiplog::breakglass::{vault, Connection, Keyring, VaultError};
use shiplog::clock::now_ms;
use shiplog::config::Settings;
use shiplog::exit;
use shiplog::log::Logger;
use shiplog::login::oauth::{self, OAuthConfig};
use shiplog::secret::Secret;
use shiplog::store::StateStore;

use super::error::{CommandError, Exit};
use crate::cli::{Cli, LoginArgs};

/// How long the browser sign-in may take.
const SIGN_IN_WAIT: Duration = Duration::from_secs(300);

/// What a login brought.
struct Tokens {
    access: Secret,
    refresh: Option<Secret>,
    scopes: Vec<String>,
    team_id: Option<String>,
    /// The breakglass entry's reason.
    reason: &'static str,
}

pub async fn run(cli: &Cli, args: LoginArgs) -> Exit {
    let settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let keys = super::breakglass::required_token_keys(
        "shiplog keeps tokens only sealed; set the key, and keep it safe",
    )?;
    let tokens = match settings.token.clone() {
        Some(token) => personal_token(token)?,
        None => sign_in(&args).await?,
    };
    // Before any API call: what the sign-in was granted covers what shiplog needs.
    require_scopes(&tokens.scopes, &REQUIRED_SCOPES).map_err(|err| {
        CommandError::new(
            exit::FOLLOW_FAILED,
            format!("the sign-in was not granted enough: {err}"),
        )
    })?;
    let connection = store_connection(&settings, &keys, &tokens).await?;
    let breakglass = super::breakglass::open(&settings, None).await?;
    let made = breakglass
        .create_entry(
            &connection,
            &tokens.access,
            tokens.refresh.as_ref(),
            tokens.reason,
            None,
        )
        .await;
    match made {
        Ok(entry) => say!(
            "Breakglass entry made ({}): {} uses within {}.",
            tokens.reason,
            entry.max_access_count,
            shiplog::clock::short_duration(entry.expires_at - now_ms())
        ),
        Err(err @ EntryError::NoKey) => eprintln!("shiplog: {err}"),
        Err(err) => {
            return Err(CommandError::new(
                exit::FOLLOW_FAILED,
                format!("the login is stored, but its breakglass entry is not: {err}"),
            ))
        }
    }
    Ok(exit::OK)
}

/// Asks Vercel who the token belongs to, then stores the login (replacing the same user's
/// login for the same team) with its tokens sealed under `keys`.
async fn store_connection(
    settings: &Settings,
    keys: &Keyring,
    tokens: &Tokens,
) -> Result<Connection, CommandError> {
    let logger = Logger::builder().build();
    let (store, client) = super::open_session(settings, tokens.access.clone(), &logger).await?;
    let user = client.get_user().await.map_err(|err| {
        CommandError::new(
            exit::FOLLOW_FAILED,
            format!("Vercel did not accept the token: {err}"),
        )
    })?;
    let team_id = settings.team_id.clone().or(tokens.team_id.clone());
    let team_name = match &team_id {
        Some(id) => client
            .get_team(id)
            .await
            .ok()
            .and_then(|t| t.name.or(t.slug)),
        None => None,
    };
    let connections = Connections::new(store);
    let previous = connections
        .find(&user.id, team_id.as_deref())
        .await
        .ok()
        .flatten();
    let now = now_ms();
    let id = previous
        .as_ref()
        .map_or_else(Connection::new_id, |c| c.connection_id.clone());
    let api_origin = api_origin(&settings.api_url);
    let (access_token, refresh_token) = vault::seal_tokens(
        keys,
        vault::TOKEN,
        &token_binding(&id, api_origin.as_deref()),
        &tokens.access,
        tokens.refresh.as_ref(),
    )
    .map_err(CommandError::config)?;
    let connection = Connection {
        connection_id: id.clone(),
        user_id: user.id.clone(),
        team_id,
        team_name,
        project_ids: settings.project.iter().cloned().collect(),
        access_token,
        refresh_token,
        scopes: tokens.scopes.clone(),
        created_at: previous.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
        api_origin,
    };
    connections.save(&connection).await.map_err(|err| {
        CommandError::new(
            exit::FOLLOW_FAILED,
            format!("could not store the login: {err}"),
        )
    })?;
    let who = user.username.clone().unwrap_or_else(|| user.id.clone());
    let scope = connection
        .team_name
        .clone()
        .or(connection.team_id.clone())
        .unwrap_or_else(|| "personal account".to_owned());
    say!("Logged in as {who} ({scope}); connection {id}; the token is sealed with TOKEN_ENCRYPTION_KEY.");
    Ok(connection)
}

/// `--token` (or `VERCEL_TOKEN`); `-` reads the token from stdin.
fn personal_token(token: Secret) -> Result<Tokens, CommandError> {
    let access = if token.expose() == "-" {
        let mut line = zeroize::Zeroizing::new(String::new());
        if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
            return Err(CommandError::new(exit::USAGE, "no token on stdin")
                .hint("pipe the token in: `shiplog login --token - < file`"));
        }
        Secret::new(line.trim())
    } else {
        token
    };
    Ok(Tokens {
        access,
        refresh: None,
        scopes: Vec::new(),
        team_id: None,
        reason: "automatic_on_token_login",
    })
}

/// Sign in with Vercel in the browser: authorization code with PKCE through a loopback
/// redirect on 127.0.0.1.
async fn sign_in(args: &LoginArgs) -> Result<Tokens, CommandError> {
    let Some(client_id) = args.client_id.clone().filter(|c| !c.trim().is_empty()) else {
        return Err(CommandError::config(
            "signing in with Vercel needs your app's OAuth client id (VERCEL_OAUTH_CLIENT_ID or --client-id)",
        )
        .hint("or store a personal token: `shiplog login --token -` (create one at vercel.com/account/tokens)"));
    };
    for url in [&args.authorize_url, &args.token_url] {
        if !is_safe_endpoint(url) {
            return Err(CommandError::config(format!(
                "{url} is not https: the code and verifier would travel in the clear"
            ))
            .hint("use https (plain http only to 127.0.0.1 or localhost, for testing)"));
        }
    }
    let config = OAuthConfig {
        authorize_url: args.authorize_url.clone(),
        token_url: args.token_url.clone(),
        client_secret: args
            .client_secret
            .clone()
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        ..OAuthConfig::vercel(client_id)
    };
    let no_browser = args.no_browser;
    let open = move |url: &str| {
        eprintln!("shiplog: sign in with Vercel at:\n  {url}");
        if no_browser {
            return Ok(());
        }
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        std::process::Command::new(opener)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|err| {
                std::io::Error::new(err.kind(), format!("could not start {opener}: {err}"))
            })
    };
    match oauth::login(&config, open, SIGN_IN_WAIT).await {
        Ok(response) => Ok(Tokens {
            access: response.access_token,
            refresh: response.refresh_token,
            scopes: response.scopes,
            team_id: response.team_id,
            reason: "automatic_on_oauth_success",
        }),
        Err(err) => Err(CommandError::new(
            exit::FOLLOW_FAILED,
            format!("signing in failed: {err}"),
        )),
    }
}

/// The token of the most recent stored login, when no token was given (its team too, unless
/// one was given); `None` when there is no stored login.
pub async fn stored_token(
    settings: &mut Settings,
    store: &StateStore,
) -> Result<Option<Secret>, CommandError> {
    let Some(connection) = Connections::new(store.clone())
        .list()
        .await
        .ok()
        .and_then(|all| all.into_iter().next())
    else {
        return Ok(None);
    };
    // A stored token goes only to the API it was made for: whoever can set VERCEL_API_URL or
    // `api_url` must not be able to collect it.
    let here = api_origin(&settings.api_url).unwrap_or_default();
    if connection.origin() != here {
        return Err(CommandError::config(format!(
            "the stored login was made for {}, and the API is set to {here}; shiplog sends a stored token only to the API it was made for",
            connection.origin()
        ))
        .hint("give a token for that API with VERCEL_TOKEN, or `shiplog login` against it"));
    }
    // Before any API call: what the login was granted covers what shiplog needs.
    connection
        .require_scopes(&REQUIRED_SCOPES)
        .map_err(|err| CommandError::config(err).hint("`shiplog login` asks for them again"))?;
    let opened = match super::breakglass::token_keys()? {
        Some(keys) => connection.access_token(&keys),
        None => Err(VaultError::KeyMissing {
            var: "TOKEN_ENCRYPTION_KEY",
        }),
    };
    let err = match opened {
        Ok(token) => {
            adopt_team(settings, &connection);
            return Ok(Some(token));
        }
        Err(err) => err,
    };
    // The plan's fallback: the emergency copy, for an admin only, audited and alerted on; not
    // when the key is merely not set in this shell.
    let key_broken = !matches!(err, VaultError::KeyMissing { .. });
    if key_broken && settings.role.may_break_glass() && settings.breakglass_enabled {
        let token = emergency_token(settings, &connection, &err).await?;
        adopt_team(settings, &connection);
        return Ok(Some(token));
    }
    Err(CommandError::config(format!(
        "the stored login's token cannot be opened: {err}"
    ))
    .hint("log in again with `shiplog login`, or set the TOKEN_ENCRYPTION_KEY it was sealed with (an admin may use breakglass)"))
}

/// The plan's fallback when the stored token cannot be opened: the emergency copy, through
/// breakglass like any access (audited, and alerted on when alerting is on).
async fn emergency_token(
    settings: &Settings,
    connection: &Connection,
    err: &VaultError,
) -> Result<Secret, CommandError> {
    let (logger, outlet) = super::stderr_logger(settings.alerts_enabled);
    let breakglass = super::breakglass::open(settings, Some(logger.clone())).await?;
    let requester = Requester {
        user: settings.user.clone(),
        role: settings.role,
    };
    let why = format!("Automatic fallback: the stored token could not be opened ({err})");
    let result = breakglass
        .request_access(&connection.connection_id, &requester, &why)
        .await;
    super::alert_on(settings, &logger, outlet).await;
    match result {
        Ok(grant) => {
            eprintln!(
                "shiplog: BREAKGLASS: the stored token could not be opened ({err}); using the emergency copy (audited, {} uses left). Log in again soon.",
                grant.uses_left
            );
            Ok(grant.access_token)
        }
        Err(denial) => Err(CommandError::config(format!(
            "the stored token cannot be opened ({err}), and breakglass was denied: {denial}"
        ))
        .hint(
            "log in again with `shiplog login`, or set the TOKEN_ENCRYPTION_KEY it was sealed with",
        )),
    }
}

/// The stored login's team, unless one was given.
fn adopt_team(settings: &mut Settings, connection: &Connection) {
    if settings.team_id.is_none() {
        settings.team_id = connection.team_id.clone();
    }
}

/// https, or plain http to this machine (a local authorization server in tests).
fn is_safe_endpoint(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(url) if url.scheme() == "https" => true,
        Ok(url) if url.scheme() == "http" => {
            matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        }
        _ => false,
    }
}
