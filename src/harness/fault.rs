//! Fault injection for tests and drills: `CLIMATE_JOBS_FAULT`.
//!
//! `hang-task=K` — task K never finishes (but is cancellable);
//! `block-task=K` — task K blocks its OS thread forever (the controller
//! gives up on it at its timeout and moves on to a fresh task runtime); `fail-task=K` — task K returns an error. K is the task's
//! 0-based ordinal in plan order; entries are comma-separated. Read by every
//! job binary, so a drill works on the real job, not a toy.

use std::collections::BTreeMap;

use super::errors::UsageError;

pub const FAULT_ENV: &str = "CLIMATE_JOBS_FAULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Hang,
    Block,
    Fail,
}

/// Which task ordinals misbehave, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    by_ordinal: BTreeMap<u64, Fault>,
}

impl FaultPlan {
    pub fn from_env() -> Result<Self, UsageError> {
        match std::env::var(FAULT_ENV) {
            Ok(spec) => Self::parse(&spec),
            Err(_) => Ok(Self::default()),
        }
    }

    pub fn parse(spec: &str) -> Result<Self, UsageError> {
        let mut plan = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                UsageError(format!(
                    "{FAULT_ENV}: bad entry {entry:?}: expected hang-task=K, block-task=K or fail-task=K with K a task ordinal"
                ))
            };
            let (kind, ordinal) = entry.split_once('=').ok_or_else(bad)?;
            let fault = match kind.trim() {
                "hang-task" => Fault::Hang,
                "block-task" => Fault::Block,
                "fail-task" => Fault::Fail,
                _ => return Err(bad()),
            };
            let ordinal: u64 = ordinal.trim().parse().map_err(|_| bad())?;
            plan.by_ordinal.insert(ordinal, fault);
        }
        Ok(plan)
    }

    pub fn for_task(&self, ordinal: u64) -> Option<Fault> {
        self.by_ordinal.get(&ordinal).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ordinal.is_empty()
    }
}

/// Acts out a fault inside a task. Returns only for `Fail`.
pub async fn act_out(fault: Fault, ordinal: u64) -> anyhow::Error {
    match fault {
        Fault::Hang => std::future::pending().await,
        Fault::Block => loop {
            // Deliberately blocks the runtime worker thread, like a sync
            // driver call stuck on a dead socket would.
            std::thread::park();
        },
        Fault::Fail => anyhow::anyhow!("injected fault: fail-task={ordinal} ({FAULT_ENV})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_comma_separated_faults() {
        let plan = FaultPlan::parse("hang-task=3, fail-task=0,block-task=7").unwrap();
        assert_eq!(plan.for_task(3), Some(Fault::Hang));
        assert_eq!(plan.for_task(0), Some(Fault::Fail));
        assert_eq!(plan.for_task(7), Some(Fault::Block));
        assert_eq!(plan.for_task(1), None);
    }

    #[test]
    fn rejects_unknown_fault_naming_the_entry() {
        let err = FaultPlan::parse("explode-task=1").unwrap_err();
        assert!(err.0.contains("explode-task=1"), "{}", err.0);
        assert!(FaultPlan::parse("fail-task=x").is_err());
    }
}
