//! Exit statuses of the `shiplog` binary (also listed in `--help` and the README).

/// The build ended READY (`follow`), or the command succeeded.
pub const OK: i32 = 0;
/// The followed build ended ERROR or CANCELED.
pub const BUILD_FAILED: i32 = 1;
/// Following failed: the API could not be reached, the token was refused, the deployment does
/// not exist, or the stream stayed broken after every retry.
pub const FOLLOW_FAILED: i32 = 2;
/// An input file could not be read.
pub const DATA: i32 = 65;
/// The command line was wrong.
pub const USAGE: i32 = 64;
/// A guard said no: breakglass access denied, or an action refused; nothing was sent (the
/// reason is on stderr).
pub const DENIED: i32 = 77;
/// The configuration (file, environment, flags) was wrong.
pub const CONFIG: i32 = 78;
/// Stopped by Ctrl-C or SIGTERM before the build finished (state saved).
pub const INTERRUPTED: i32 = 130;

/// The text for `--help`.
pub const HELP: &str = "Exit status: 0 the build ended READY (or the command succeeded); \
1 the build ended ERROR or CANCELED; 2 following failed (API unreachable, token refused, \
deployment not found, stream lost after all retries); 64 bad command line; 65 unreadable input \
file; 77 refused by a guard (breakglass access, an action): nothing sent; 78 bad configuration; \
130 stopped by Ctrl-C or SIGTERM (resume state saved).";
