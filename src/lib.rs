//! shiplog: follow Vercel deployments and their build logs from a terminal.
//!
//! The binary (`src/main.rs`) is a thin shell over this library; the integration tests use the
//! library directly.

pub mod alert;
pub mod breakglass;
pub mod config;
pub mod demo;
pub mod exit;
pub mod log;
pub mod login;
pub mod metrics;
pub mod secret;
pub mod store;
pub mod stream;
pub mod tui;
pub mod vercel;
