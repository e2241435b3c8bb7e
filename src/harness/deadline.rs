//! The run deadline and the watchdog that enforces it from outside the
//! async runtime.
//!
//! The async side stops the run at the deadline and records it. The
//! watchdog is a plain OS thread: if the async side cannot act (a task
//! blocks every worker thread, a driver call never returns), it ends the
//! process at deadline + grace anyway. That is the "always exits" promise.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::outcome::ExitCode;

/// When the run must be over.
#[derive(Debug, Clone, Copy)]
pub struct RunDeadline {
    pub started: Instant,
    pub at: Instant,
    pub grace: Duration,
}

impl RunDeadline {
    pub fn new(started: Instant, timeout: Duration, grace: Duration) -> Self {
        Self {
            started,
            at: started + timeout,
            grace,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

struct Alarm {
    at: Instant,
    code: ExitCode,
    reason: &'static str,
    disarmed: bool,
}

/// Ends the process at a set instant unless disarmed first.
#[derive(Clone)]
pub struct Watchdog {
    state: Arc<(Mutex<Alarm>, Condvar)>,
}

impl Watchdog {
    /// Starts the watchdog thread. `summary` is printed as the last stdout
    /// line if it fires, so CI still gets one JSON line.
    pub fn arm(
        at: Instant,
        code: ExitCode,
        reason: &'static str,
        summary: serde_json::Value,
    ) -> Self {
        let state = Arc::new((
            Mutex::new(Alarm {
                at,
                code,
                reason,
                disarmed: false,
            }),
            Condvar::new(),
        ));
        let thread_state = state.clone();
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || watch(&thread_state, summary));
        if let Err(e) = spawned {
            // Without the watchdog the async deadline still works; say so.
            tracing::error!(error = %e, "cannot start the watchdog thread");
        }
        Self { state }
    }

    /// Brings the alarm forward (never back), e.g. to signal time + grace.
    pub fn tighten(&self, at: Instant, code: ExitCode, reason: &'static str) {
        let (lock, cv) = &*self.state;
        if let Ok(mut alarm) = lock.lock()
            && at < alarm.at
        {
            alarm.at = at;
            alarm.code = code;
            alarm.reason = reason;
            cv.notify_all();
        }
    }

    pub fn disarm(&self) {
        let (lock, cv) = &*self.state;
        if let Ok(mut alarm) = lock.lock() {
            alarm.disarmed = true;
            cv.notify_all();
        }
    }
}

fn watch(state: &(Mutex<Alarm>, Condvar), mut summary: serde_json::Value) {
    let (lock, cv) = state;
    let Ok(mut alarm) = lock.lock() else { return };
    loop {
        if alarm.disarmed {
            return;
        }
        let now = Instant::now();
        if now >= alarm.at {
            break;
        }
        let wait = alarm.at - now;
        alarm = match cv.wait_timeout(alarm, wait) {
            Ok((a, _)) => a,
            Err(_) => return,
        };
    }
    let (code, reason) = (alarm.code, alarm.reason);
    tracing::error!(
        exit_code = code.code(),
        "watchdog: {reason}; the run did not stop in time (a task is blocking its thread); ending the process"
    );
    if let Some(obj) = summary.as_object_mut() {
        obj.insert("status".into(), code.status().as_str().into());
        obj.insert("exit_code".into(), code.code().into());
        obj.insert("error".into(), format!("watchdog: {reason}").into());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{summary}");
    let _ = out.flush();
    std::process::exit(code.code());
}
