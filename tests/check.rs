//! `jobctl check` on jobs.yaml files: the repository's own passes; each kind
//! of mistake exits 2 naming the job and the field.

mod support;

use support::run;

fn check(text: &str) -> support::Finished {
    let path = std::env::temp_dir().join(format!(
        "cj-jobs-{}-{}.yaml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args(["check", "--file"]).arg(&path);
    let done = run(c);
    std::fs::remove_file(&path).ok();
    done
}

#[test]
fn the_repository_jobs_yaml_is_valid() {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args([
        "check",
        "--file",
        concat!(env!("CARGO_MANIFEST_DIR"), "/jobs.yaml"),
    ]);
    let done = run(c);
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert!(done.stdout.contains("job(s) OK"));
}

const GOOD: &str = "jobs:\n  canary:\n    binary: jobctl\n    schedule: \"*/30 * * * *\"\n    timeout: 2m\n    task_timeout: 10s\n    grace: 10s\n";

#[test]
fn an_unknown_key_exits_2_naming_job_and_key() {
    let done = check(&format!("{GOOD}    retires: 3\n"));
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(
        done.stderr
            .contains("job `canary`, field `retires`: unknown key"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_bad_cron_expression_exits_2_naming_job_and_schedule() {
    let done = check(&GOOD.replace("*/30 * * * *", "*/30 * * * * *"));
    assert_eq!(done.code, 2);
    assert!(
        done.stderr.contains("job `canary`, field `schedule`"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_task_timeout_longer_than_the_timeout_exits_2() {
    let done = check(&GOOD.replace("task_timeout: 10s", "task_timeout: 5m"));
    assert_eq!(done.code, 2);
    assert!(
        done.stderr.contains("job `canary`, field `task_timeout`"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args(["check", "--file", "/nonexistent/jobs.yaml"]);
    let done = run(c);
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("/nonexistent/jobs.yaml"));
}
