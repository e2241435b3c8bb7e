//! `jobctl check` on jobs.yaml files: the repository's own passes; each kind
//! of mistake exits 2 naming the job and the field.

use crate::support;

use support::run;

fn check(text: &str) -> support::Finished {
    // One file per call: tests run in parallel and texts may be the same length.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("cj-jobs-{}-{n}.yaml", std::process::id()));
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

const GOOD: &str = "jobs:\n  canary:\n    binary: jobctl\n    schedule: \"*/30 * * * *\"\n    timeout: 2m\n    task_timeout: 10s\n    grace: 10s\n    secrets:\n      DATABASE_URL: {secret: climate-jobs, key: database-url}\n";

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

/// Each rule of the deploy fields: exit 2, the job and the field named.
fn rejects(text: &str, field: &str) {
    let done = check(text);
    assert_eq!(done.code, 2, "{}", done.all_output());
    let want = format!("job `canary`, field `{field}`");
    assert!(
        done.stderr.contains(&want),
        "wanted {want:?} in:\n{}",
        done.stderr
    );
}

#[test]
fn zero_replicas_exit_2() {
    rejects(&format!("{GOOD}    replicas: 0\n"), "replicas");
}

#[test]
fn a_binary_not_in_the_image_exits_2() {
    rejects(
        &GOOD.replace("binary: jobctl", "binary: hazard-batch"),
        "binary",
    );
}

#[test]
fn a_malformed_memory_quantity_exits_2() {
    rejects(&format!("{GOOD}    memory: 512MB\n"), "memory");
}

#[test]
fn a_cpu_memory_pair_aca_cannot_run_exits_2() {
    rejects(
        &format!("{GOOD}    cpu: 500m\n    memory: 512Mi\n"),
        "memory",
    );
    rejects(&format!("{GOOD}    cpu: 300m\n    memory: 600Mi\n"), "cpu");
}

#[test]
fn a_database_url_not_from_a_secret_exits_2() {
    let no_secret = GOOD.replace(
        "    secrets:\n      DATABASE_URL: {secret: climate-jobs, key: database-url}\n",
        "",
    );
    rejects(&no_secret, "secrets.DATABASE_URL");
    rejects(
        &format!("{no_secret}    env:\n      DATABASE_URL: postgres://h/db\n"),
        "env.DATABASE_URL",
    );
}

#[test]
fn a_secret_without_a_key_exits_2() {
    rejects(
        &GOOD.replace(
            "{secret: climate-jobs, key: database-url}",
            "{secret: climate-jobs}",
        ),
        "secrets.DATABASE_URL.key",
    );
}

#[test]
fn env_may_not_override_the_rendered_deadlines() {
    rejects(
        &format!("{GOOD}    env:\n      CLIMATE_JOBS_TIMEOUT: 1h\n"),
        "env.CLIMATE_JOBS_TIMEOUT",
    );
}

#[test]
fn a_scheduler_limit_over_24h_exits_2() {
    rejects(&GOOD.replace("timeout: 2m", "timeout: 24h"), "timeout");
    rejects(&GOOD.replace("timeout: 2m", "timeout: 10h"), "retries");
}

#[test]
fn a_grace_over_25s_exits_2() {
    rejects(&GOOD.replace("grace: 10s", "grace: 26s"), "grace");
}

#[test]
fn a_name_longer_than_52_characters_exits_2() {
    let long = "a".repeat(53);
    let done = check(&GOOD.replace("  canary:", &format!("  {long}:")));
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(
        done.stderr.contains(&format!("job `{long}`")),
        "{}",
        done.stderr
    );
}
