//! The alerting engine: rules, fingerprints, suppression windows, the alert book (firing,
//! acknowledged, resolved), the delivery queue and the channels.

pub mod book;
pub mod book_store;
pub mod channels;
pub mod delivery;
pub mod evaluator;
pub mod fingerprint;
pub mod queue;
pub mod rule;
pub mod runner;
pub mod suppression;
pub mod sync;

pub use channels::Channel;
pub use evaluator::{Alert, AlertEvent, RuleEvaluator};
pub use fingerprint::Fingerprint;
pub use rule::{AlertSeverity, Rule, RuleSet};
pub use suppression::{Decision, Suppressor};
