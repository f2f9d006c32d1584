//! The alerting engine: rules, fingerprints, suppression windows, the alert book (firing,
//! acknowledged, resolved), the delivery queue and the channels.

pub mod book;
pub mod book_store;
pub mod channels;
pub mod delivery;
pub mod engine;
pub mod fingerprint;
pub mod queue;
pub mod rule;
pub mod runner;
pub mod suppression;
pub mod sync;

pub use engine::{Alert, AlertEngine, AlertEvent};
pub use fingerprint::Fingerprint;
pub use rule::{AlertSeverity, Channel, Rule, RuleSet};
pub use suppression::{Decision, Suppressor};
