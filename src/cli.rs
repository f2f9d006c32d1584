//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use shiplog::config::Overrides;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "shiplog",
    version,
    about = "Follow Vercel deployments and their build logs from a terminal.",
    long_about = "Follow Vercel deployments and their build logs from a terminal.\n\n\
Without a subcommand shiplog opens the dashboard: your team's deployments and their build \
logs, live (when stdout is not a terminal it prints the logs instead, like `shiplog watch`). \
Without a token (VERCEL_TOKEN or --token) it runs a demo against a built-in Vercel simulator.",
    after_help = shiplog::exit::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Vercel access token.
    #[arg(long, env = "VERCEL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Team id (team_...) whose deployments to follow.
    #[arg(long = "team", env = "VERCEL_TEAM_ID", global = true)]
    pub team_id: Option<String>,
    /// Base URL of the Vercel API.
    #[arg(long, env = "VERCEL_API_URL", global = true)]
    pub api_url: Option<String>,
    /// Only this project (id or name).
    #[arg(long, env = "SHIPLOG_PROJECT", global = true)]
    pub project: Option<String>,
    /// development, staging or production.
    #[arg(long = "env", env = "SHIPLOG_ENV", global = true)]
    pub environment: Option<String>,
    /// Config file [default: $XDG_CONFIG_HOME/shiplog/config.toml].
    #[arg(long, env = "SHIPLOG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where state and diagnostics live [default: $XDG_STATE_HOME/shiplog].
    #[arg(long, env = "SHIPLOG_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Keep shared state in this Redis instead of local files.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,
    /// Seconds without data after which a stream counts as broken.
    #[arg(long, env = "SHIPLOG_IDLE_TIMEOUT", global = true)]
    pub idle_timeout: Option<u64>,
    /// Seconds a finished build's log must stay quiet before it counts as complete [default: 10].
    #[arg(long, env = "SHIPLOG_SETTLE_SECS", global = true, value_name = "SECS")]
    pub settle: Option<u64>,
    /// Command run as `<cmd> inspect <id> --logs` when the events API stays unreachable.
    #[arg(long, env = "SHIPLOG_CLI_FALLBACK", global = true)]
    pub cli_fallback: Option<String>,
    /// Dashboard theme: dark, light, high-contrast, mono, or a path to a theme file.
    #[arg(long, env = "SHIPLOG_THEME", global = true)]
    pub theme: Option<String>,
    /// Lines kept per deployment in the dashboard [default: 10000].
    #[arg(long, env = "SHIPLOG_BUFFER_LINES", global = true)]
    pub buffer_lines: Option<usize>,
    /// Scroll with the mouse wheel (text selection then needs Shift).
    #[arg(long, global = true)]
    pub mouse: bool,
    /// Run the alert rules on every entry [default: on in production and staging].
    #[arg(
        long = "alerts",
        env = "LOG_ALERTS_ENABLED",
        global = true,
        value_name = "true|false"
    )]
    pub alerts_enabled: Option<String>,
    /// Who acts from here (acknowledgements, breakglass) [default: the login name].
    #[arg(long, env = "SHIPLOG_USER", global = true)]
    pub user: Option<String>,
    /// viewer, operator (acts on deployments), super_admin or breakglass_admin [default: viewer].
    #[arg(long, env = "SHIPLOG_ROLE", global = true)]
    pub role: Option<String>,
    /// The breakglass kill switch: true lets admins recover tokens [default: off].
    #[arg(
        long,
        env = "VERCEL_BREAKGLASS_ENABLED",
        global = true,
        value_name = "true|false"
    )]
    pub breakglass_enabled: Option<String>,
    /// How the emergency copy is kept: sealed (with BREAKGLASS_KEY) or plaintext [default: sealed].
    #[arg(long, env = "BREAKGLASS_STORAGE", global = true)]
    pub breakglass_storage: Option<String>,
    /// `serve`: also follow every project's production runtime logs [default: false].
    #[arg(
        long,
        env = "SHIPLOG_RUNTIME_LOGS",
        global = true,
        value_name = "true|false"
    )]
    pub runtime_logs: Option<String>,
    /// How often the metrics are written to $STATE/metrics.prom (ms) [default: 300000].
    #[arg(
        long,
        env = "LOG_METRICS_INTERVAL_MS",
        global = true,
        value_name = "MS"
    )]
    pub metrics_interval_ms: Option<u64>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            token: self.token.clone(),
            team_id: self.team_id.clone(),
            api_url: self.api_url.clone(),
            project: self.project.clone(),
            env: self.environment.clone(),
            state_dir: self.state_dir.clone(),
            redis_url: self.redis_url.clone(),
            idle_timeout_secs: self.idle_timeout,
            settle_secs: self.settle,
            cli_fallback: self.cli_fallback.clone(),
            theme: self.theme.clone(),
            buffer_lines: self.buffer_lines,
            mouse: self.mouse,
            alerts_enabled: self.alerts_enabled.clone(),
            metrics_interval_ms: self.metrics_interval_ms,
            user: self.user.clone(),
            role: self.role.clone(),
            breakglass_enabled: self.breakglass_enabled.clone(),
            breakglass_storage: self.breakglass_storage.clone(),
            runtime_logs: self.runtime_logs.clone(),
            listen: None,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print one deployment's build log as it happens, until the build ends.
    #[command(after_help = shiplog::exit::HELP)]
    Follow(FollowArgs),
    /// Print runtime logs (requests, function output) as they happen, until stopped. A project's
    /// name follows its production deployment, and switches when production moves.
    #[command(
        after_help = "Exit status: 0 stopped (Ctrl-C, SIGTERM, or the reader went away); \
2 following failed (API unreachable, token refused, deployment or project not found, no \
production deployment); 64 bad command line (a filter); 78 bad configuration."
    )]
    Logs(LogsArgs),
    /// Print every deployment's build log to stdout as it happens (headless).
    Watch,
    /// The always-on worker: follows every building deployment and runs the alert rules,
    /// without a UI. Prints deployments' outcomes, shiplog's own warnings and fired alerts.
    Serve {
        /// One unified JSON entry per line instead of text.
        #[arg(long)]
        json: bool,
        /// Also listen for HTTP on this address (host:port, or a port on 127.0.0.1): Vercel's
        /// webhooks on POST /vercel/webhook (signed with VERCEL_WEBHOOK_SECRET), Prometheus on
        /// GET /metrics, health checks on GET /healthz and /readyz.
        #[arg(long, env = "SHIPLOG_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Alert rules: try them on recorded entries.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Run the built-in Vercel simulator.
    Demo(DemoArgs),
    /// Log in to Vercel and keep the token sealed with TOKEN_ENCRYPTION_KEY (its emergency copy
    /// sealed with BREAKGLASS_KEY). With --token (or VERCEL_TOKEN) stores that token (`-` reads
    /// it from stdin); without, signs in with Vercel in the browser (OAuth with PKCE).
    Login(LoginArgs),
    /// The token vault.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Emergency access to stored tokens: guarded, justified, limited, audited.
    #[command(subcommand)]
    Breakglass(BreakglassCommand),
    /// The team's deployments, and acting on one: cancel, redeploy, promote, roll back. Actions
    /// need the operator (or super_admin) role, are confirmed, audited before they are sent,
    /// and sent once.
    #[command(subcommand)]
    Deployments(DeploymentsCommand),
    /// Vercel webhooks for `serve --listen`: register (operator role; prints the secret once),
    /// list, delete.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Vercel log drains for `serve --listen`: register (operator role; prints the secret once),
    /// list, delete.
    #[command(subcommand)]
    Drains(DrainsCommand),
    /// Mute the notifications of alerts that match, for a while, saying why: add, list,
    /// expire. Muted alerts are still recorded and shown. Shared by every instance on one
    /// store.
    #[command(subcommand)]
    Silences(SilencesCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum SilencesCommand {
    /// Add a silence: matchers in Alertmanager's syntax over an alert's labels (rule,
    /// severity, project, target, branch, deployment, tier), e.g.
    /// `rule=build_failed project=~"shop|web"`. Regular expressions match whole values.
    Add {
        /// One or more `name OP value` (OP: =, !=, =~, !~); all must match.
        #[arg(required = true, value_name = "MATCHER")]
        matchers: Vec<String>,
        /// How long it lasts: 90m, 2h, 1h30m, 1d.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
        duration: String,
        /// Why (required): shown with every alert it mutes.
        #[arg(long)]
        comment: String,
        /// When it starts (RFC 3339); now by default.
        #[arg(long, value_name = "TIME")]
        starts: Option<String>,
        /// Who made it; the user name by default.
        #[arg(long)]
        author: Option<String>,
    },
    /// The silences, newest first: pending and active (and, with --expired, expired ones).
    List {
        #[arg(long)]
        json: bool,
        /// Also the expired silences still kept (5 days).
        #[arg(long)]
        expired: bool,
    },
    /// End a silence now (it stays listed as expired). The id, or enough of its start to be
    /// unique.
    Expire { id: String },
}

#[derive(Debug, Clone, Subcommand)]
pub enum WebhooksCommand {
    /// Create a webhook for the deployment events, posting to URL (your listener's
    /// /vercel/webhook, behind TLS).
    Register {
        #[arg(long)]
        url: String,
        /// Only these projects (ids, comma-separated) [default: every project of the team].
        #[arg(long, value_delimiter = ',', value_name = "PRJ_IDS")]
        projects: Vec<String>,
    },
    #[command(flatten)]
    Kept(HooksCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum DrainsCommand {
    /// Create a log drain posting to URL (your listener's /vercel/drain, behind TLS), signed
    /// with a secret made here and printed once.
    Register {
        #[arg(long)]
        url: String,
        /// Only these projects (ids, comma-separated) [default: every project of the team].
        #[arg(long, value_delimiter = ',', value_name = "PRJ_IDS")]
        projects: Vec<String>,
        /// Which logs.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "build,lambda,edge,static"
        )]
        sources: Vec<String>,
        /// Of which deployments.
        #[arg(long, value_delimiter = ',', default_value = "production,preview")]
        environments: Vec<String>,
        /// ndjson or json.
        #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "json"])]
        encoding: String,
        /// Ask Vercel to gzip the batches.
        #[arg(long)]
        gzip: bool,
    },
    #[command(flatten)]
    Kept(HooksCommand),
}

/// What `webhooks` and `drains` do with those Vercel keeps.
#[derive(Debug, Clone, Subcommand)]
pub enum HooksCommand {
    /// The team's, one a line (or all as JSON).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete one (operator role).
    Delete {
        id: String,
        /// Delete without being asked (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum DeploymentsCommand {
    /// Recent deployments, newest first; `*` marks what each project's production serves.
    List {
        #[arg(long)]
        json: bool,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Cancel a queued or building deployment.
    #[command(after_help = ACTION_EXIT)]
    Cancel {
        /// Deployment id (dpl_...) or URL.
        deployment: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Build a deployment again, as a new deployment of the same target.
    #[command(after_help = ACTION_EXIT)]
    Redeploy {
        deployment: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Point production at a ready production deployment (no new build); also undoes a
    /// rollback.
    #[command(after_help = ACTION_EXIT)]
    Promote {
        deployment: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Point production back at an earlier production deployment (no new build). Until a
    /// promote, Vercel then keeps new deployments off production.
    #[command(after_help = ACTION_EXIT)]
    Rollback {
        /// Project id or name.
        project: String,
        /// The deployment to go back to [default: the production deployment before the
        /// current one].
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// The action audit trail, newest first.
    Audit {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

const ACTION_EXIT: &str = "Exit status: 0 done (or it had already happened); 2 Vercel refused \
or could not be reached; 77 refused by a guard (role, confirmation, audit trail, the deployment's \
state, or the same action sent from elsewhere within a minute): nothing was sent; 78 bad \
configuration.";

#[derive(Debug, Clone, Args)]
pub struct ConfirmArgs {
    /// Confirm without being asked (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Why: kept in the audit trail, and a rollback's description at Vercel.
    #[arg(long)]
    pub reason: Option<String>,
    /// The result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The OAuth client id of your "Sign in with Vercel" app.
    #[arg(long, env = "VERCEL_OAUTH_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The app's client secret, when it has one (sent to the token endpoint only).
    #[arg(long, env = "VERCEL_OAUTH_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    #[arg(
        long,
        env = "VERCEL_OAUTH_AUTHORIZE_URL",
        default_value = shiplog::login::oauth::VERCEL_AUTHORIZE_URL
    )]
    pub authorize_url: String,
    #[arg(
        long,
        env = "VERCEL_OAUTH_TOKEN_URL",
        default_value = shiplog::login::oauth::VERCEL_TOKEN_URL
    )]
    pub token_url: String,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum VaultCommand {
    /// Seal every stored token again with the newest key (TOKEN_ENCRYPTION_KEY; the keys it
    /// replaces go in TOKEN_ENCRYPTION_OLD_KEYS), and every emergency copy with BREAKGLASS_KEY.
    Rotate,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BreakglassCommand {
    /// The breakglass entries: time and uses left, and whether each is active.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Recover a connection's token. Prints it to stdout; a denial's reason goes to stderr.
    Access {
        /// The connection id (conn_...), as `breakglass list` shows it.
        connection: String,
        /// Why, in words (at least 20 characters); it goes to the audit trail.
        #[arg(long)]
        justification: String,
    },
    /// The audit trail, newest first.
    Audit {
        #[arg(long)]
        json: bool,
        /// How many records.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AlertsCommand {
    /// Replay entries (as `shiplog follow --json` writes them) through the alert rules and print
    /// what would fire and what would be suppressed. Sends nothing.
    Check {
        /// A file of one JSON entry per line.
        file: PathBuf,
    },
    /// The alerts as the state store keeps them (every instance's), newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert (its fingerprint, or enough of its start): every instance on the
    /// same Redis hears it, and PagerDuty is told when the alert paged.
    Ack {
        fingerprint: String,
        /// Why, or what is being done.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve an alert (its fingerprint, or enough of its start), as `ack` does.
    Resolve { fingerprint: String },
    /// Send a test notification to one channel and say how it went.
    Test {
        /// slack, discord, email, sms, webhook or pagerduty (a PagerDuty test incident is
        /// resolved at once).
        channel: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// Deployment id (dpl_...) or URL.
    pub deployment: String,
    /// One unified JSON entry per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Replay from this time: RFC 3339, milliseconds since the epoch, or an age such as 10m.
    #[arg(long)]
    pub since: Option<String>,
    /// Also append every entry as JSON to this file.
    #[arg(long)]
    pub ndjson: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// A deployment id (dpl_...) or URL, or a project's name or id (its production deployment).
    pub target: String,
    /// One unified JSON entry per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only rows at or above this level: debug, info, warning, error, fatal (a 5xx response
    /// counts as an error).
    #[arg(long)]
    pub level: Option<String>,
    /// Only these response statuses: a class (5xx, 4xx) or a code (502); repeat or separate
    /// with commas.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only requests whose path matches this regular expression.
    #[arg(long)]
    pub path: Option<String>,
    /// Only these sources: request, serverless, edge-function, edge-middleware.
    #[arg(long, value_delimiter = ',')]
    pub source: Vec<String>,
    /// Also append every entry (unfiltered) as JSON to this file.
    #[arg(long)]
    pub ndjson: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Only run the simulator, for any Vercel client to talk to.
    #[arg(long)]
    pub serve_only: bool,
    /// Port of the simulator (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Playback speed (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Serve one finished build of this many log lines instead of the sample loop (benchmarks).
    #[arg(long, requires = "serve_only")]
    pub synthetic: Option<usize>,
    /// With --synthetic: this many builds at once.
    #[arg(long, default_value_t = 1, requires = "synthetic")]
    pub builds: usize,
    /// With --synthetic: play each build over this many seconds instead of finishing at once.
    #[arg(long, default_value_t = 0, requires = "synthetic", value_name = "SECS")]
    pub build_secs: u64,
}
