//! Vercel's REST API: typed client (versions, retries, circuit breaker) and the events stream.

pub mod actions;
pub mod breaker;
pub mod client;
pub mod error;
pub mod event;
pub mod hooks;
pub mod lines;
pub mod runtime;
pub mod signature;
pub mod types;

pub use client::{ClientConfig, EventsQuery, VercelClient};
pub use error::VercelError;
pub use event::{parse_event, ParsedLine, VercelEvent};
pub use lines::{Line, LineSplitter};
pub use runtime::{parse_runtime_row, RuntimeRow};
pub use types::{Deployment, DeploymentList, DeploymentSummary, GitMeta, Project, ReadyState};
