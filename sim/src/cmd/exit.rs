//! Exit codes of every command (DESIGN §7).

/// Every expectation and invariant held.
pub const EXIT_OK: u8 = 0;
/// An expectation or invariant was violated, or a run failed.
pub const EXIT_VIOLATED: u8 = 1;
/// Bad input: a scenario or an argument that cannot be used.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;
