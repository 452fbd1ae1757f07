//! Shared helpers for commands that run many seeds (`sweep`, `check`, `compare`): a progress
//! bar on stderr that counts failures live, and a Ctrl-C flag.
//!
//! The bar is drawn only when stderr is a terminal and `--quiet` was not given, so logs and
//! pipes never see it; it is safe to update from worker threads.

use crate::cmd::exit::say;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over `total` seeds (or runs) with a live failure count.
pub struct Progress {
    bar: Option<ProgressBar>,
    done: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// A bar labelled `label` (e.g. the scenario name); hidden when `quiet` or when stderr is
    /// not a terminal.
    pub fn new(total: u64, label: &str, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} seeds, {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(label.to_string())
                .with_message("0 failed");
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
            bar
        });
        Progress { bar, done: AtomicU64::new(0), failed: AtomicU64::new(0) }
    }

    /// A progress that draws nothing (for library callers and tests).
    pub fn hidden() -> Progress {
        Progress { bar: None, done: AtomicU64::new(0), failed: AtomicU64::new(0) }
    }

    /// Whether a bar is drawn.
    pub fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    /// One more run finished; `failed` when it violated an expectation or panicked.
    pub fn finish_one(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        let failures =
            if failed { self.failed.fetch_add(1, Ordering::Relaxed) + 1 } else { self.failed.load(Ordering::Relaxed) };
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if failed {
                bar.set_message(format!("{failures} failed"));
            }
        }
    }

    /// Changes the label (e.g. when `check` moves on to the next scenario).
    pub fn set_label(&self, label: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(label.to_string());
        }
    }

    /// Prints a line on stdout without tearing the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| say!("{line}")),
            None => say!("{line}"),
        }
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: OnceLock<bool> = OnceLock::new();

/// The flag a first Ctrl-C sets: "start no new run, let running ones finish, report what
/// finished". A second Ctrl-C exits at once with status 130. The handler is installed on the
/// first call (once per process); if it cannot be installed the flag simply never rises.
pub fn interrupt_flag() -> &'static AtomicBool {
    HANDLER.get_or_init(|| {
        ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing the seeds already running (Ctrl-C again to abort)");
        })
        .is_ok()
    });
    &INTERRUPTED
}
