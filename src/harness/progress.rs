//! Progress on long work: a bar on a terminal, otherwise a log line at
//! least every 10 s (a scheduler's log viewer shows that a run is alive).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::ledger::RunMetrics;

pub const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    pub fn new(total: u64, on_terminal: bool) -> Self {
        let bar = on_terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tasks {msg} (eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            started: Instant::now(),
        }
    }

    pub fn update(&self, m: &RunMetrics) {
        if let Some(bar) = &self.bar {
            bar.set_position(m.finished());
            if m.tasks_failed + m.tasks_timed_out > 0 {
                bar.set_message(format!("{} failed", m.tasks_failed + m.tasks_timed_out));
            }
        }
    }

    /// The periodic line for non-terminal output.
    pub fn log(&self, m: &RunMetrics) {
        if self.bar.is_some() {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let finished = m.finished();
        let rate = if elapsed > 0.0 {
            (finished - m.tasks_skipped) as f64 / elapsed
        } else {
            0.0
        };
        let left = m.tasks_total.saturating_sub(finished);
        let eta_s = if rate > 0.0 {
            (left as f64 / rate).round() as u64
        } else {
            0
        };
        tracing::info!(
            done = m.tasks_done,
            failed = m.tasks_failed,
            timed_out = m.tasks_timed_out,
            skipped = m.tasks_skipped,
            total = m.tasks_total,
            rows = m.rows_written,
            tasks_per_s = format!("{rate:.1}"),
            eta_s,
            "progress {finished}/{}",
            m.tasks_total
        );
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
