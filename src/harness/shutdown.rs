//! Why a run stops early: SIGTERM/SIGINT or the deadline.
//!
//! The process is PID 1 in its container, so nobody else turns SIGTERM into
//! an exit: the first signal starts a graceful stop (and tightens the
//! watchdog to now + grace), a second one ends the process at once.

use std::time::Instant;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::deadline::{RunDeadline, Watchdog};
use super::outcome::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    Deadline,
    Interrupted,
    Terminated,
}

impl StopCause {
    pub fn exit_code(self) -> ExitCode {
        match self {
            StopCause::Deadline => ExitCode::DeadlineExceeded,
            StopCause::Interrupted => ExitCode::Interrupted,
            StopCause::Terminated => ExitCode::Terminated,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            StopCause::Deadline => "run deadline exceeded",
            StopCause::Interrupted => "interrupted (SIGINT)",
            StopCause::Terminated => "terminated (SIGTERM)",
        }
    }
}

/// Resolves once the run must stop. Cheap to clone.
#[derive(Clone)]
pub struct StopSignal {
    rx: watch::Receiver<Option<StopCause>>,
}

impl StopSignal {
    /// Installs the signal handlers and the deadline timer on the current
    /// runtime. Must be called inside it.
    pub fn install(deadline: RunDeadline, watchdog: Watchdog) -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let cause = tokio::select! {
                _ = term.recv() => StopCause::Terminated,
                _ = int.recv() => StopCause::Interrupted,
                _ = tokio::time::sleep_until(deadline.at.into()) => StopCause::Deadline,
            };
            // Whatever the async side manages, the process is gone by now + grace.
            watchdog.tighten(
                Instant::now() + deadline.grace,
                cause.exit_code(),
                cause.describe(),
            );
            tracing::warn!(cause = cause.describe(), grace = %super::args::format_duration(deadline.grace), "stopping: no new tasks; in-flight tasks get the grace period");
            let _ = tx.send(Some(cause));
            let second = tokio::select! {
                _ = term.recv() => StopCause::Terminated,
                _ = int.recv() => StopCause::Interrupted,
            };
            tracing::error!(cause = second.describe(), "second signal: exiting now");
            std::process::exit(second.exit_code().code());
        });
        Ok(Self { rx })
    }

    pub fn cause(&self) -> Option<StopCause> {
        *self.rx.borrow()
    }

    pub async fn stopped(&mut self) -> StopCause {
        loop {
            if let Some(cause) = *self.rx.borrow_and_update() {
                return cause;
            }
            if self.rx.changed().await.is_err() {
                // The sender lives as long as the runtime; treat loss as a stop.
                return StopCause::Terminated;
            }
        }
    }
}
