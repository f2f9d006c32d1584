//! Configuration: flags > environment > config file > defaults, validated with clear errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::alert::channels::AlertChannels;
use crate::secret::Secret;
use crate::stream::runtime::regression::RegressionOptions;
use crate::stream::DEFAULT_SETTLE;
use crate::vercel::client::DEFAULT_API_URL;

/// The default number of log lines the dashboard keeps per deployment.
pub const DEFAULT_BUFFER_LINES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Value(String),
    #[error("{0}")]
    Rule(#[from] crate::alert::rule::RuleError),
}

/// What `config.toml` may hold. Secrets (tokens) do not belong here.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub team_id: Option<String>,
    pub api_url: Option<String>,
    pub project: Option<String>,
    pub env: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub namespace: Option<String>,
    pub idle_timeout_secs: Option<u64>,
    /// Seconds to keep asking for late log lines once a build is over.
    pub settle_secs: Option<u64>,
    pub poll_interval_secs: Option<u64>,
    pub cli_fallback: Option<String>,
    /// A built-in theme name or a path to a theme file.
    pub theme: Option<String>,
    /// Lines kept per deployment in the dashboard.
    pub buffer_lines: Option<usize>,
    /// Mouse wheel scrolling (then text selection needs Shift).
    pub mouse: Option<bool>,
    /// How often the metrics are reported (ms).
    pub metrics_interval_ms: Option<u64>,
    /// Who acts from this machine (acknowledgements, breakglass).
    pub user: Option<String>,
    /// viewer, super_admin or breakglass_admin.
    pub role: Option<String>,
    /// How breakglass keeps its emergency copy: sealed (default) or plaintext.
    pub breakglass_storage: Option<String>,
    /// `serve` follows every project's production runtime logs.
    pub runtime_logs: Option<bool>,
    /// Where `serve`'s HTTP listener binds (`127.0.0.1:8787`, or a port alone).
    pub listen: Option<String>,
    /// When a new production deployment counts as a regression (`[regression]`).
    #[serde(default)]
    pub regression: RegressionConfig,
    /// Where alerts go; the environment variables of the same meaning win.
    #[serde(default)]
    pub alert_channels: AlertChannels,
    /// Grouping of notifications and inhibition (`[alert_routing]`).
    #[serde(default)]
    pub alert_routing: crate::alert::routing::RoutingConfig,
    /// `[[alert_rules]]` tables; read with their line numbers into `rules`.
    #[serde(default, rename = "alert_rules")]
    _alert_rules: Option<toml::Value>,
    /// The file's alert rules, located for error messages.
    #[serde(skip)]
    pub rules: Vec<crate::alert::rule::LocatedRule>,
}

impl FileConfig {
    /// Reads `path`, or the default location when `None` (a missing default file is fine).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match default_config_path() {
                Some(p) => (p, false),
                None => return Ok(FileConfig::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileConfig::default())
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let mut config: FileConfig = toml::from_str(&text).map_err(|err| {
            let (line, problem) = crate::alert::rule::toml_problem(&text, &err);
            ConfigError::Invalid {
                path: path.clone(),
                message: format!("line {line}: {problem}"),
            }
        })?;
        let origin = format!("config file {}", path.display());
        config.rules = crate::alert::rule::rules_in(&text, &origin)?;
        Ok(config)
    }
}

/// `PAGERDUTY_API_TOKEN` and `PAGERDUTY_API_URL` (https, or http to this machine only: the
/// token travels in every request).
fn pagerduty_api() -> Result<Option<crate::ingest::pagerduty_desk::PagerDutyApi>, ConfigError> {
    let Some(token) = std::env::var("PAGERDUTY_API_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty())
    else {
        return Ok(None);
    };
    let url = std::env::var("PAGERDUTY_API_URL")
        .unwrap_or_else(|_| "https://api.pagerduty.com".to_owned());
    let parsed = reqwest::Url::parse(&url)
        .map_err(|_| ConfigError::Value(format!("PAGERDUTY_API_URL {url:?} is not a URL")))?;
    let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() != "https" && !local {
        return Err(ConfigError::Value(format!(
            "PAGERDUTY_API_URL {url:?} must be https: the API token travels in every request"
        )));
    }
    Ok(Some(crate::ingest::pagerduty_desk::PagerDutyApi {
        url,
        token: Secret::new(token.trim()),
    }))
}

/// `[alert_routing]`, with `SHIPLOG_GROUP_WAIT_SECS` over every `group_wait_secs`.
fn alert_routing(
    file: &crate::alert::routing::RoutingConfig,
) -> Result<crate::alert::routing::Routing, ConfigError> {
    let mut routing = file.clone();
    if let Some(wait) = std::env::var("SHIPLOG_GROUP_WAIT_SECS")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let secs = wait.trim().parse().map_err(|_| {
            ConfigError::Value(format!(
                "SHIPLOG_GROUP_WAIT_SECS={wait:?} is not a number of seconds"
            ))
        })?;
        routing.grouping.group_wait_secs = Some(secs);
        for channel in routing.channels.values_mut() {
            channel.group_wait_secs = Some(secs);
        }
    }
    crate::alert::routing::Routing::from_config(&routing)
        .map_err(|err| ConfigError::Value(err.to_string()))
}

/// `VERCEL_API_URL`: an https URL; plain http only to this machine (the simulator, tests), since
/// the token travels in every request.
fn api_url(url: String) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(&url).ok();
    let host = parsed.as_ref().and_then(reqwest::Url::host_str);
    let loopback = host.is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match parsed.as_ref().map(reqwest::Url::scheme) {
        Some("https") if host.is_some() => Ok(url),
        Some("http") if loopback => Ok(url),
        Some("http") => Err(ConfigError::Value(format!(
            "VERCEL_API_URL must use https:// (plain http:// only to this machine, as the simulator does), not {}",
            parsed.as_ref().map_or(String::new(), |u| u.origin().ascii_serialization())
        ))),
        _ => Err(ConfigError::Value(
            "VERCEL_API_URL must be an https:// URL".to_owned(),
        )),
    }
}

/// `REDIS_URL`: unset when empty, else a redis:// or rediss:// URL.
fn redis_url(url: Option<String>) -> Result<Option<String>, ConfigError> {
    let url = url.filter(|u| !u.is_empty());
    match &url {
        Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => Err(
            ConfigError::Value("REDIS_URL must start with redis:// or rediss://".to_owned()),
        ),
        _ => Ok(url),
    }
}

/// `LOG_ALERTS_ENABLED`: on by default everywhere but in development.
fn alerts_enabled(text: Option<&str>, env: Environment) -> Result<bool, ConfigError> {
    Ok(switch("LOG_ALERTS_ENABLED", text)?.unwrap_or(env != Environment::Development))
}

/// A `true`/`false` variable (`1`/`0` too); `None` when unset or empty.
fn switch(name: &str, text: Option<&str>) -> Result<Option<bool>, ConfigError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
        Some(other) => Err(ConfigError::Value(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

/// The comma-separated signing secrets in the environment variable `name`.
fn secrets_of(name: &str) -> crate::vercel::signature::SigningSecrets {
    crate::vercel::signature::SigningSecrets::from_list(&std::env::var(name).unwrap_or_default())
}

/// Where to listen: `host:port`, `[v6]:port`, or a port alone (this machine only: TLS and the
/// outside world are a reverse proxy's job); none when not given or blank.
fn listen_addr(text: Option<String>) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
    let Some(text) = text.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(port) = text.parse::<u16>() {
        return Ok(Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
    }
    match text
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
    {
        Some(addr) => Ok(Some(addr)),
        None => Err(ConfigError::Value(format!(
            "cannot listen on {text:?}: give host:port (127.0.0.1:8787, 0.0.0.0:8787) or a port"
        ))),
    }
}

/// `SHIPLOG_ROLE`: viewer unless said otherwise.
fn role(text: Option<String>) -> Result<crate::role::Role, ConfigError> {
    let text = text.unwrap_or_else(|| "viewer".to_owned());
    crate::role::Role::parse(&text).ok_or_else(|| {
        ConfigError::Value(format!(
            "SHIPLOG_ROLE must be viewer, operator, super_admin or breakglass_admin, not {text:?}"
        ))
    })
}

/// `BREAKGLASS_STORAGE`: sealed unless plaintext is asked for.
fn breakglass_storage(
    text: Option<String>,
) -> Result<crate::breakglass::entry::Storage, ConfigError> {
    use crate::breakglass::entry::Storage;
    match text.as_deref().map(str::trim) {
        None | Some("") | Some("sealed") => Ok(Storage::Sealed),
        Some("plaintext") => Ok(Storage::Plaintext),
        Some(other) => Err(ConfigError::Value(format!(
            "BREAKGLASS_STORAGE must be sealed or plaintext, not {other:?}"
        ))),
    }
}

/// `$XDG_CONFIG_HOME/shiplog/config.toml` (or `~/.config/shiplog/config.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.toml"))
}

/// `$XDG_CONFIG_HOME/shiplog` (or `~/.config/shiplog`); user themes live in `themes/` there.
pub fn config_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("shiplog"))
}

/// `$XDG_STATE_HOME/shiplog` (or `~/.local/state/shiplog`).
pub fn default_state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state")
        .map(|d| d.join("shiplog"))
        .unwrap_or_else(|| std::env::temp_dir().join("shiplog-state"))
}

fn xdg_dir(var: &str, home_relative: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(home_relative)),
    }
}

/// The deployment environment (`SHIPLOG_ENV`), part of every Redis key's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Environment::Development),
            "staging" => Ok(Environment::Staging),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(ConfigError::Value(format!(
                "SHIPLOG_ENV must be development, staging or production, not {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

/// `[regression]`: when the 5xx rate of a new production deployment counts as markedly worse
/// than the one it replaced (see `RegressionOptions` for the defaults).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionConfig {
    /// The old deployment's rate is taken over this many minutes before the move.
    pub baseline_minutes: Option<u64>,
    /// The new deployment is watched this many minutes after the move.
    pub window_minutes: Option<u64>,
    /// Its rate must be at least this many times the old one's...
    pub ratio: Option<f64>,
    /// ...and at least this many percent...
    pub min_rate_percent: Option<f64>,
    /// ...over at least this many responses, this many of them 5xx.
    pub min_responses: Option<u64>,
    pub min_errors: Option<u64>,
}

impl RegressionConfig {
    fn options(&self) -> Result<RegressionOptions, ConfigError> {
        let defaults = RegressionOptions::default();
        let bad = |what: &str| ConfigError::Value(format!("[regression] {what}"));
        let minutes = |value: Option<u64>, default: Duration, name: &str| match value {
            None => Ok(default),
            Some(m @ 1..=60) => Ok(Duration::from_secs(m * 60)),
            Some(_) => Err(bad(&format!("{name} must be 1 to 60 minutes"))),
        };
        let ratio = self.ratio.unwrap_or(defaults.ratio);
        if !(1.0..=1000.0).contains(&ratio) {
            return Err(bad("ratio must be at least 1 (and at most 1000)"));
        }
        let min_rate = self
            .min_rate_percent
            .map_or(defaults.min_rate, |p| p / 100.0);
        if !(0.0..=1.0).contains(&min_rate) {
            return Err(bad("min_rate_percent must be 0 to 100"));
        }
        Ok(RegressionOptions {
            baseline: minutes(self.baseline_minutes, defaults.baseline, "baseline_minutes")?,
            window: minutes(self.window_minutes, defaults.window, "window_minutes")?,
            ratio,
            min_rate,
            min_responses: self.min_responses.unwrap_or(defaults.min_responses).max(1),
            min_errors: self.min_errors.unwrap_or(defaults.min_errors).max(1),
        })
    }
}

/// Values given on the command line or in the environment (clap merges those two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub token: Option<String>,
    pub team_id: Option<String>,
    pub api_url: Option<String>,
    pub project: Option<String>,
    pub env: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub redis_url: Option<String>,
    pub idle_timeout_secs: Option<u64>,
    pub settle_secs: Option<u64>,
    pub cli_fallback: Option<String>,
    pub theme: Option<String>,
    pub buffer_lines: Option<usize>,
    pub mouse: bool,
    /// `LOG_ALERTS_ENABLED`: `true` or `false`.
    pub alerts_enabled: Option<String>,
    /// `LOG_METRICS_INTERVAL_MS`
    pub metrics_interval_ms: Option<u64>,
    /// `SHIPLOG_USER`: who acts (acknowledgements, breakglass).
    pub user: Option<String>,
    /// `SHIPLOG_ROLE`: viewer, super_admin or breakglass_admin.
    pub role: Option<String>,
    /// `VERCEL_BREAKGLASS_ENABLED`: `true` switches breakglass on.
    pub breakglass_enabled: Option<String>,
    /// `BREAKGLASS_STORAGE`: sealed (default) or plaintext.
    pub breakglass_storage: Option<String>,
    /// `SHIPLOG_RUNTIME_LOGS`: `true` or `false`.
    pub runtime_logs: Option<String>,
    /// `serve --listen` / `SHIPLOG_LISTEN`: where the HTTP listener binds.
    pub listen: Option<String>,
}

/// The resolved settings every command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub token: Option<Secret>,
    pub team_id: Option<String>,
    pub api_url: String,
    pub project: Option<String>,
    pub env: Environment,
    pub state_dir: PathBuf,
    pub namespace: String,
    pub redis_url: Option<Secret>,
    pub idle_timeout: Duration,
    /// Once a build is over, how long its log must stay quiet before it counts as complete.
    pub settle: Duration,
    pub poll_interval: Duration,
    pub cli_fallback: Option<String>,
    pub theme: Option<String>,
    pub buffer_lines: usize,
    pub mouse: bool,
    /// The alert rules in force: the built-ins with the config file's laid over them.
    pub alert_rules: crate::alert::RuleSet,
    /// Grouping (`SHIPLOG_GROUP_WAIT_SECS` over the file's `group_wait_secs`) and inhibition.
    pub alert_routing: std::sync::Arc<crate::alert::routing::Routing>,
    /// Run the alerting engine: on in production and staging, off in development unless
    /// `LOG_ALERTS_ENABLED=true` (the demo turns it on).
    pub alerts_enabled: bool,
    /// `[alert_channels]` from the config file (the environment overrides it).
    pub alert_channels: AlertChannels,
    /// How often the metrics are reported (`LOG_METRICS_INTERVAL_MS`; the plan's 5 minutes).
    pub metrics_interval: Duration,
    /// Who acts from this machine: `SHIPLOG_USER`, `user` in the file, else the login name.
    pub user: String,
    pub role: crate::role::Role,
    /// The breakglass kill switch (`VERCEL_BREAKGLASS_ENABLED=true`); off by default.
    pub breakglass_enabled: bool,
    pub breakglass_storage: crate::breakglass::entry::Storage,
    /// `serve` follows every project's production runtime logs (`SHIPLOG_RUNTIME_LOGS=true`).
    pub runtime_logs: bool,
    /// Where `serve` listens for webhooks and serves `/metrics`; none: no listener.
    pub listen: Option<std::net::SocketAddr>,
    /// `VERCEL_WEBHOOK_SECRET`: the secrets webhook deliveries may be signed with (several,
    /// separated by commas, while one is rotated).
    pub webhook_secrets: crate::vercel::signature::SigningSecrets,
    /// `VERCEL_DRAIN_SECRET`: the secrets drained batches may be signed with.
    pub drain_secrets: crate::vercel::signature::SigningSecrets,
    /// `VERCEL_DRAIN_VERIFY`: the code Vercel's ownership check of a drain expects back.
    pub drain_verify: Option<Secret>,
    /// `PAGERDUTY_WEBHOOK_SECRET`: what PagerDuty signs its webhooks with (several, separated
    /// by commas, while one is replaced).
    pub pagerduty_webhook_secrets: Vec<Secret>,
    /// `PAGERDUTY_API_TOKEN` (and `PAGERDUTY_API_URL`): PagerDuty's REST API, asked which
    /// alert an incident is when its webhook carries no key.
    pub pagerduty_api: Option<crate::ingest::pagerduty_desk::PagerDutyApi>,
    pub regression: RegressionOptions,
}

impl Settings {
    /// No token: the built-in simulator stands in for Vercel. Only sure once a stored login has
    /// been looked up (`Team::open` fills the token in); before, the demo is only possible.
    pub fn is_demo(&self) -> bool {
        self.token.is_none()
    }

    pub fn resolve(overrides: Overrides, file: FileConfig) -> Result<Self, ConfigError> {
        let env = Environment::parse(
            overrides
                .env
                .or(file.env)
                .as_deref()
                .unwrap_or("development"),
        )?;
        let api_url = api_url(
            overrides
                .api_url
                .or(file.api_url)
                .unwrap_or_else(|| DEFAULT_API_URL.to_owned()),
        )?;
        let idle_secs = overrides
            .idle_timeout_secs
            .or(file.idle_timeout_secs)
            .unwrap_or(30);
        if idle_secs == 0 {
            return Err(ConfigError::Value(
                "the idle timeout must be at least 1 second".to_owned(),
            ));
        }
        let redis_url = redis_url(overrides.redis_url)?;
        let alerts_enabled = alerts_enabled(overrides.alerts_enabled.as_deref(), env)?;
        let runtime_logs = switch("SHIPLOG_RUNTIME_LOGS", overrides.runtime_logs.as_deref())?
            .or(file.runtime_logs)
            .unwrap_or(false);
        let regression = file.regression.options()?;
        let listen = listen_addr(overrides.listen.or(file.listen))?;
        let role = role(overrides.role.or(file.role))?;
        let breakglass_storage =
            breakglass_storage(overrides.breakglass_storage.or(file.breakglass_storage))?;
        let user = overrides
            .user
            .or(file.user)
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        // A bad alert rule stops every command, naming the file, line and rule.
        let alert_rules = crate::alert::RuleSet::with_overrides(file.rules)?;
        let alert_routing = alert_routing(&file.alert_routing)?;
        let namespace = file
            .namespace
            .unwrap_or_else(|| format!("shiplog:{}:", env.as_str()));
        Ok(Settings {
            token: overrides.token.filter(|t| !t.is_empty()).map(Secret::new),
            team_id: overrides.team_id.or(file.team_id).filter(|t| !t.is_empty()),
            api_url,
            project: overrides.project.or(file.project),
            env,
            state_dir: overrides
                .state_dir
                .or(file.state_dir)
                .unwrap_or_else(default_state_dir),
            namespace,
            redis_url: redis_url.map(Secret::new),
            idle_timeout: Duration::from_secs(idle_secs),
            settle: overrides
                .settle_secs
                .or(file.settle_secs)
                .map_or(DEFAULT_SETTLE, Duration::from_secs),
            poll_interval: Duration::from_secs(file.poll_interval_secs.unwrap_or(5).max(1)),
            cli_fallback: overrides.cli_fallback.or(file.cli_fallback),
            theme: overrides.theme.or(file.theme),
            buffer_lines: overrides
                .buffer_lines
                .or(file.buffer_lines)
                .unwrap_or(DEFAULT_BUFFER_LINES)
                .max(100),
            mouse: overrides.mouse || file.mouse.unwrap_or(false),
            alert_rules,
            alert_routing: std::sync::Arc::new(alert_routing),
            alerts_enabled,
            alert_channels: file.alert_channels,
            metrics_interval: Duration::from_millis(
                overrides
                    .metrics_interval_ms
                    .or(file.metrics_interval_ms)
                    .unwrap_or(300_000)
                    .max(1_000),
            ),
            user,
            role,
            breakglass_enabled: overrides
                .breakglass_enabled
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            breakglass_storage,
            runtime_logs,
            listen,
            webhook_secrets: secrets_of("VERCEL_WEBHOOK_SECRET"),
            drain_secrets: secrets_of("VERCEL_DRAIN_SECRET"),
            drain_verify: std::env::var("VERCEL_DRAIN_VERIFY")
                .ok()
                .filter(|code| !code.trim().is_empty())
                .map(Secret::new),
            pagerduty_webhook_secrets: std::env::var("PAGERDUTY_WEBHOOK_SECRET")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|secret| !secret.is_empty())
                .map(Secret::new)
                .collect(),
            pagerduty_api: pagerduty_api()?,
            regression,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_api_is_https_or_this_machine() {
        for ok in [
            "https://api.vercel.com",
            "http://127.0.0.1:3000",
            "http://localhost:8080/",
            "http://[::1]:9",
        ] {
            assert_eq!(
                super::api_url(ok.to_owned()).ok().as_deref(),
                Some(ok),
                "{ok}"
            );
        }
        for refused in [
            "http://api.vercel.com",
            "http://collector.example:80",
            "http://127.0.0.1.example",
            "ftp://x",
            "api.vercel.com",
        ] {
            let err = super::api_url(refused.to_owned())
                .expect_err(refused)
                .to_string();
            assert!(err.contains("https://"), "{err}");
        }
    }

    use super::*;

    #[test]
    fn flags_and_env_beat_the_file_which_beats_defaults() {
        let file = FileConfig {
            team_id: Some("team_file".into()),
            api_url: Some("https://file.example".into()),
            ..FileConfig::default()
        };
        let overrides = Overrides {
            team_id: Some("team_flag".into()),
            ..Overrides::default()
        };
        let s = Settings::resolve(overrides, file).expect("valid");
        assert_eq!(s.team_id.as_deref(), Some("team_flag"));
        assert_eq!(s.api_url, "https://file.example");
        assert_eq!(s.namespace, "shiplog:development:");
        assert_eq!(s.idle_timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_bad_file_names_the_file_line_and_key() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "team_id = \"t\"\nteam_idd = \"typo\"\n").expect("write");
        let err = FileConfig::load(Some(&path)).expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("config.toml"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("team_idd"), "{text}");
    }

    #[test]
    fn a_bad_config_line_is_named_never_quoted() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        for text in [
            // A value of the wrong type: serde quotes it.
            "[alert_channels]\nsms_enabled = \"https://hooks.slack.com/services/T/B/s3cr3t\"\n",
            // A syntax error: toml shows the line.
            "[alert_channels]\nslack_webhook_url = \"https://hooks.slack.com/services/T/B/s3cr3t\n",
            "team_id = 5\ntwilio_auth_token = s3cr3t\n",
        ] {
            std::fs::write(&path, text).expect("write");
            let err = FileConfig::load(Some(&path))
                .expect_err("invalid")
                .to_string();
            assert!(!err.contains("s3cr3t"), "{err}");
            assert!(err.contains("line "), "{err}");
        }
    }

    #[test]
    fn channel_secrets_from_the_file_never_print() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[alert_channels]\nslack_webhook_url = \"https://hooks.slack.com/services/T/B/s3cr3t\"\nsms_enabled = true\n",
        )
        .expect("write");
        let file = FileConfig::load(Some(&path)).expect("valid");
        assert!(!format!("{file:?}").contains("s3cr3t"));
        assert_eq!(
            file.alert_channels
                .value_for("SLACK_WEBHOOK_URL")
                .as_deref(),
            Some("https://hooks.slack.com/services/T/B/s3cr3t")
        );
        assert_eq!(
            file.alert_channels
                .value_for("SMS_ALERTS_ENABLED")
                .as_deref(),
            Some("true")
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let bad_env = Overrides {
            env: Some("prodd".into()),
            ..Overrides::default()
        };
        let err = Settings::resolve(bad_env, FileConfig::default()).expect_err("bad env");
        assert!(err.to_string().contains("SHIPLOG_ENV"));
        let bad_redis = Overrides {
            redis_url: Some("localhost:6379".into()),
            ..Overrides::default()
        };
        let err = Settings::resolve(bad_redis, FileConfig::default()).expect_err("bad url");
        assert!(err.to_string().contains("REDIS_URL"));
    }
}
