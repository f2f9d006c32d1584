//! Alerting: rules, fingerprints, suppression windows, the alert book (firing,
//! acknowledged, resolved), the delivery queue and the channels.
//!
//! Who does what: the [`RuleEvaluator`] decides which entries fire an alert; the alerting task
//! ([`runner::Runner`]) keeps the book and queues a notification per channel; the queue's worker
//! sends each through [`delivery`] to its channel (one module per channel in [`channels`]).

pub mod book;
pub mod book_store;
pub mod burst;
pub mod channels;
pub mod delivery;
pub mod evaluator;
pub mod fingerprint;
pub mod grouping;
pub mod incident;
pub mod inhibit;
mod keeper;
pub mod labels;
pub mod matcher;
pub mod queue;
pub mod routing;
pub mod rule;
pub mod runner;
pub mod silence;
pub mod suppression;
pub mod sync;

pub use channels::Channel;
pub use evaluator::{Alert, AlertEvent, RuleEvaluator};
pub use fingerprint::Fingerprint;
pub use rule::{AlertSeverity, Rule, RuleSet};
pub use suppression::{Decision, Suppressor};
