//! `jobctl check --curves FILE`: validate a vulnerability curve file — every
//! line (monotone, units matching the hazard's index, proxies labelled) and
//! coverage (a curve for every hazard × asset class). Exit 2 with each
//! problem named by file and line.

use std::path::Path;

use crate::harness::ExitCode;
use crate::risk::{DEFAULT_CURVES, DEFAULT_CURVES_PATH, parse_curves_csv};

/// `path` None checks the curves built into the binaries.
pub fn check(path: Option<&Path>) -> ExitCode {
    let (name, text) = match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                eprintln!("{}: cannot read: {e}", p.display());
                return ExitCode::Usage;
            }
        },
        None => (
            format!("{DEFAULT_CURVES_PATH} (built in)"),
            DEFAULT_CURVES.to_string(),
        ),
    };
    let errors = match parse_curves_csv(&text) {
        Ok(set) => match set.check_coverage() {
            Ok(()) => {
                let proxies = set.curves.values().filter(|c| c.proxy).count();
                println!(
                    "{name}: {} curve(s) OK ({proxies} labelled proxy), every hazard × asset class covered",
                    set.curves.len()
                );
                return ExitCode::Success;
            }
            Err(e) => e,
        },
        Err(e) => e,
    };
    for e in &errors {
        eprintln!("{name}: {e}");
    }
    eprintln!("{name}: {} problem(s)", errors.len());
    ExitCode::Usage
}
