//! `jobctl smoke`: every job end to end on a throw-away database it starts
//! itself; a failing step makes it exit non-zero.

use crate::support;

use support::run;

#[test]
fn smoke_runs_every_job_and_reports_one_line_each() {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.arg("smoke");
    let done = run(c);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let ok: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("ok "))
        .collect();
    assert_eq!(ok.len(), 10, "{}", done.stdout);
    for job in [
        "canary",
        "hazard-timeseries-batch",
        "probability-batch",
        "site-risk-batch",
        "cache-refresh",
        "dlq-reprocess",
    ] {
        assert!(
            ok.iter()
                .any(|l| l.contains(job) && l.contains("succeeded")),
            "{job}: {}",
            done.stdout
        );
    }
    assert!(done.stdout.contains("smoke: 10 of 10 step(s) passed"));
}

#[test]
fn smoke_against_an_unreachable_database_fails_naming_the_steps() {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args(["smoke", "--database-url", "postgres://u@127.0.0.1:1/x"])
        .env("CLIMATE_JOBS_CONNECT_TIMEOUT", "1s");
    let done = run(c);
    assert_eq!(done.code, 1, "{}", done.all_output());
    assert!(
        done.stdout
            .lines()
            .any(|l| l.starts_with("FAIL migrate") && l.contains("exit 69")),
        "{}",
        done.stdout
    );
}
