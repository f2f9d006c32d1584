//! The streaming engine: follows deployments' build logs and turns every event into an entry.

pub mod engine;
pub mod entries;
pub mod fallback;
pub mod follower;
pub mod identity;
pub mod options;
pub mod resume;
pub mod runtime;

pub use follower::{FollowError, Follower};
pub use options::{FollowOptions, HealthHook, StreamHealth, DEFAULT_SETTLE};
pub use resume::ResumeState;
