//! Exit codes of every command (DESIGN §7).

/// Every expectation and invariant held.
pub const EXIT_OK: u8 = 0;
/// An expectation or invariant was violated, or a run failed.
pub const EXIT_VIOLATED: u8 = 1;
/// Bad input: a scenario or an argument that cannot be used.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Stdout was closed under us (`repsim run … | head -3`): the status of a process that SIGPIPE
/// ended, without a message.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Writes to stdout; when stdout is gone (a closed pipe), exits quietly with
/// `EXIT_BROKEN_PIPE` instead of panicking as `print!` does.
pub fn write_stdout(args: std::fmt::Arguments, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) });
    if written.and_then(|()| out.flush()).is_err() {
        std::process::exit(i32::from(EXIT_BROKEN_PIPE));
    }
}

/// `println!` for the commands: see [`write_stdout`].
macro_rules! say {
    () => {
        $crate::cmd::exit::write_stdout(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cmd::exit::write_stdout(format_args!($($arg)*), true)
    };
}

/// `print!` for the commands: see [`write_stdout`].
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::cmd::exit::write_stdout(format_args!($($arg)*), false)
    };
}

pub(crate) use {say, say_raw};
