//! The alerting engine: rules, fingerprints and suppression windows. Delivery (queue and
//! channels), alert state and acknowledgement come next (issue 4).

pub mod book;
pub mod channels;
pub mod delivery;
pub mod engine;
pub mod fingerprint;
pub mod rule;
pub mod runner;
pub mod suppression;
pub mod sync;

pub use engine::{Alert, AlertEngine, AlertEvent};
pub use fingerprint::Fingerprint;
pub use rule::{AlertSeverity, Channel, Rule, RuleSet};
pub use suppression::{Decision, Suppressor};
