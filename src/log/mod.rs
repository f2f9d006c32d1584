//! The unified log: one entry shape for every source, redaction, and a fan-out to sinks.

pub mod entry;
pub mod fanout;
mod json_line;
mod outlet;
pub mod receiver;
pub mod redact;
pub mod runtime;
pub mod sinks;

pub use entry::{LogEntry, Severity, Tier};
pub use fanout::{Delivery, Logger, LoggerBuilder};
pub use receiver::EntryReceiver;
