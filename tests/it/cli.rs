//! What people read, pinned by insta snapshots (tests/it/snapshots): every
//! binary's `--help`, the JSON summary line, and `jobctl check`'s errors. A
//! change to any of them shows up as a reviewed diff, not as a surprise in
//! someone's runbook.

use std::process::Command;

use crate::support::{self, TestDb};

fn bin(name: &str) -> Command {
    let dir = std::path::Path::new(env!("CARGO_BIN_EXE_jobctl"))
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    let mut c = Command::new(dir.join(name));
    // Fixed width, no colour, and no environment: --help shows the current
    // value of every environment fallback.
    c.env_clear().env("COLUMNS", "100").env("NO_COLOR", "1");
    c
}

fn help(name: &str, sub: &[&str]) -> String {
    let mut c = bin(name);
    c.args(sub).arg("--help");
    let out = support::run(c);
    assert_eq!(out.code, 0, "{name} {sub:?} --help: {}", out.all_output());
    out.stdout
}

#[test]
fn every_binary_explains_itself() {
    for name in climate_jobs::manifest::IMAGE_BINARIES {
        insta::assert_snapshot!(format!("help-{name}"), help(name, &[]));
    }
}

#[test]
fn every_jobctl_command_explains_itself() {
    let top = help("jobctl", &[]);
    // The subcommands as the top-level help lists them.
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Continuation lines of a wrapped description are indented further.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 8, "{commands:?}\n{top}");
    for command in &commands {
        insta::assert_snapshot!(format!("help-jobctl-{command}"), help("jobctl", &[command]));
    }
}

/// The summary line's shape, with what changes from run to run replaced.
#[test]
fn the_summary_line_has_a_stable_shape() {
    let db = TestDb::migrated("cli_summary");
    let mut c = support::jobctl(&db.url);
    c.args(["canary", "--tasks", "3", "--task-duration", "1ms"]);
    let done = support::run(c);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let mut summary = done.summary();
    let obj = summary.as_object_mut().expect("the summary is an object");
    for key in ["run_id", "started_at", "finished_at", "host", "pid"] {
        if let Some(v) = obj.get_mut(key) {
            *v = serde_json::json!(format!("[{key}]"));
        }
    }
    for key in ["duration_ms", "peak_rss_kb", "peak_rss_mb"] {
        if let Some(v) = obj.get_mut(key) {
            assert!(v.is_number(), "{key}: {v}");
            *v = serde_json::json!(format!("[{key}]"));
        }
    }
    insta::assert_snapshot!(
        "summary-canary",
        serde_json::to_string_pretty(&summary).expect("json")
    );
}

/// Every kind of mistake in jobs.yaml and what `jobctl check` says of it.
#[test]
fn check_names_job_and_field_for_each_mistake() {
    const GOOD: &str = "jobs:\n  canary:\n    binary: jobctl\n    schedule: \"*/30 * * * *\"\n    timeout: 2m\n    task_timeout: 10s\n    grace: 10s\n    secrets:\n      DATABASE_URL: {secret: climate-jobs, key: database-url}\n";
    let cases: Vec<(&str, String)> = vec![
        ("unknown key", format!("{GOOD}    retires: 3\n")),
        (
            "six-field cron",
            GOOD.replace("*/30 * * * *", "*/30 * * * * *"),
        ),
        (
            "task timeout ≥ timeout",
            GOOD.replace("task_timeout: 10s", "task_timeout: 5m"),
        ),
        (
            "unknown binary",
            GOOD.replace("binary: jobctl", "binary: jobctll"),
        ),
        ("grace over 25 s", GOOD.replace("grace: 10s", "grace: 40s")),
        (
            "bad duration",
            GOOD.replace("timeout: 2m", "timeout: two minutes"),
        ),
        (
            "database URL in env",
            GOOD.replace(
                "    secrets:\n      DATABASE_URL: {secret: climate-jobs, key: database-url}\n",
                "    env:\n      DATABASE_URL: postgres://x\n",
            ),
        ),
        ("not YAML", "jobs: [\n".to_string()),
    ];
    let dir = std::env::temp_dir().join(format!("cj-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut report = String::new();
    for (n, (what, text)) in cases.iter().enumerate() {
        let path = dir.join(format!("jobs-{n}.yaml"));
        std::fs::write(&path, text).expect("write jobs.yaml");
        let mut c = bin("jobctl");
        c.args(["check", "--file"]).arg(&path);
        let done = support::run(c);
        assert_eq!(done.code, 2, "{what}: {}", done.all_output());
        let stderr = done.stderr.replace(&dir.display().to_string(), "[dir]");
        report.push_str(&format!("## {what}\n{}\n", stderr.trim_end()));
    }
    std::fs::remove_dir_all(&dir).ok();
    insta::assert_snapshot!("check-errors", report);
}
