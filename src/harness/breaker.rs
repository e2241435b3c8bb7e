//! The circuit breaker: N consecutive infrastructure failures (connection
//! lost, pool timeout) end the run early instead of failing every remaining
//! task the same way for an hour. Task errors (bad data) do not count.

use super::errors::FailureKind;

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    consecutive: u32,
    last_error: Option<String>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            consecutive: 0,
            last_error: None,
        }
    }

    pub fn record_success(&mut self) {
        self.consecutive = 0;
    }

    pub fn record_failure(&mut self, kind: FailureKind, error: &str) {
        match kind {
            FailureKind::Infrastructure => {
                self.consecutive += 1;
                self.last_error = Some(error.to_string());
            }
            FailureKind::Task => self.consecutive = 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.consecutive >= self.threshold
    }

    pub fn describe(&self) -> String {
        format!(
            "circuit open: {} consecutive infrastructure failures; last: {}",
            self.consecutive,
            self.last_error.as_deref().unwrap_or("-")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_consecutive_infrastructure_failures() {
        let mut b = CircuitBreaker::new(3);
        b.record_failure(FailureKind::Infrastructure, "conn reset");
        b.record_failure(FailureKind::Infrastructure, "conn reset");
        assert!(!b.is_open());
        b.record_failure(FailureKind::Infrastructure, "conn refused");
        assert!(b.is_open());
        assert!(b.describe().contains("conn refused"));
    }

    #[test]
    fn a_success_or_a_data_error_resets_the_count() {
        let mut b = CircuitBreaker::new(2);
        b.record_failure(FailureKind::Infrastructure, "x");
        b.record_success();
        b.record_failure(FailureKind::Infrastructure, "x");
        assert!(!b.is_open());
        b.record_failure(FailureKind::Task, "bad row");
        b.record_failure(FailureKind::Infrastructure, "x");
        assert!(!b.is_open());
    }
}
