//! shiplog: follow Vercel deployments and their build logs from a terminal.
//!
//! The binary (`src/main.rs` with `src/commands/`) is a thin shell over this library; the
//! integration tests use the library directly. Layers point one way, each using only those
//! below it:
//!
//! ```text
//! commands/, main.rs, config   wiring: parse, load the configuration, start engines, exit codes
//! tui/                         App (routing, theme, input, help), screens/ (state and keys), ui/ (render)
//! stream/ alert/ breakglass/ actions/ ingest/   the engines, each started once (ingest: serve's listener)
//! vercel/ store/ log/ metrics  services the engines use; demo/ and login/ beside them
//! shutdown clock retry fsutil secret exit redis_io printable role   leaf modules, used by all
//! ```

// Wiring.
pub mod config;
// The dashboard.
pub mod tui;
// The engines.
pub mod actions;
pub mod alert;
pub mod breakglass;
pub mod ingest;
pub mod stream;
// Services.
pub mod demo;
pub mod log;
pub mod login;
pub mod metrics;
pub mod store;
pub mod vercel;
// Leaf modules.
pub mod clock;
pub mod exit;
pub mod fsutil;
pub mod printable;
pub mod redis_io;
pub mod retry;
pub mod role;
pub mod secret;
pub mod shutdown;
