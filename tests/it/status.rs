//! `jobctl status` on scripted ledgers with an injected clock (`--now`):
//! never-run, ok, late, failing, stuck and running, the exit codes, and
//! the table pinned by an insta snapshot.

use crate::support;

use support::{TestDb, jobctl, run};

const NOW: &str = "2026-11-29T12:00:00Z";

/// The repository's jobs.yaml plus a weekly job that has never run.
fn jobs_file(tag: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs.yaml"))
        .expect("jobs.yaml");
    let extra = r#"
  weekly-canary:
    description: A job nobody has run yet.
    binary: jobctl
    schedule: "0 5 * * 1"
    timeout: 2m
    task_timeout: 10s
    grace: 10s
    args: ["canary"]
    secrets:
      DATABASE_URL: {secret: climate-jobs, key: database-url}
"#;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("status-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jobs.yaml");
    std::fs::write(&path, format!("{}{extra}", text.trim_end())).unwrap();
    path
}

/// One ledger row: job, status, started, finished (or NULL), exit code.
fn run_row(
    job: &str,
    status: &str,
    started: &str,
    finished: Option<&str>,
    exit: Option<i32>,
) -> String {
    let finished_sql = finished.map_or("NULL".to_string(), |f| format!("'{f}'"));
    let heartbeat = finished.unwrap_or(started);
    let exit_sql = exit.map_or("NULL".to_string(), |c| c.to_string());
    let duration = finished.map_or("NULL".to_string(), |f| {
        format!(
            "(extract(epoch FROM '{f}'::timestamptz - '{started}'::timestamptz) * 1000)::bigint"
        )
    });
    format!(
        "INSERT INTO job_runs (run_id, job, status, started_at, heartbeat_at, finished_at, host, pid,
                               duration_ms, exit_code)
         VALUES (gen_random_uuid(), '{job}', '{status}', '{started}', '{heartbeat}',
                 {finished_sql}, 'test', 1, {duration}, {exit_sql});"
    )
}

fn letter(job: &str, key: &str, status: &str) -> String {
    format!(
        "INSERT INTO dead_letters (job, task_key, payload, error_kind, error, status, first_run_id, last_run_id)
         VALUES ('{job}', '{key}', '{{}}', 'error', 'boom', '{status}', gen_random_uuid(), gen_random_uuid());"
    )
}

/// A ledger with one job in every state at NOW (12:00 UTC):
/// canary ok, cache-refresh late, dlq-reprocess failing,
/// hazard-timeseries-batch running, probability-batch stuck, weekly-canary never run.
fn scripted(name: &str) -> TestDb {
    let db = TestDb::migrated(name);
    let script = [
        // canary (*/30): the 11:30 run succeeded.
        run_row(
            "canary",
            "succeeded",
            "2026-11-29T11:30:01Z",
            Some("2026-11-29T11:30:41Z"),
            Some(0),
        ),
        // cache-refresh (hourly at :15): last success 09:16; the 10:15 and
        // 11:15 runs never happened.
        run_row(
            "cache-refresh",
            "succeeded",
            "2026-11-29T09:15:02Z",
            Some("2026-11-29T09:16:10Z"),
            Some(0),
        ),
        // dlq-reprocess (hourly at :45): 10:45 fine, 11:45 could not reach the database.
        run_row(
            "dlq-reprocess",
            "succeeded",
            "2026-11-29T10:45:00Z",
            Some("2026-11-29T10:46:00Z"),
            Some(0),
        ),
        run_row(
            "dlq-reprocess",
            "failed",
            "2026-11-29T11:45:00Z",
            Some("2026-11-29T11:45:11Z"),
            Some(69),
        ),
        letter("dlq-reprocess", "a", "pending"),
        letter("dlq-reprocess", "b", "pending"),
        letter("dlq-reprocess", "c", "dead"),
        letter("dlq-reprocess", "d", "resolved"),
        // hazard batch (02:00, timeout 2h): a backfill started at 11:00 is running.
        run_row(
            "hazard-timeseries-batch",
            "succeeded",
            "2026-11-29T02:00:03Z",
            Some("2026-11-29T03:10:00Z"),
            Some(0),
        ),
        run_row(
            "hazard-timeseries-batch",
            "running",
            "2026-11-29T11:00:00Z",
            None,
            None,
        ),
        // probability batch (06:30, timeout 2h + 20s): running since 06:30.
        run_row(
            "probability-batch",
            "succeeded",
            "2026-11-28T06:30:00Z",
            Some("2026-11-28T07:02:00Z"),
            Some(0),
        ),
        run_row(
            "probability-batch",
            "running",
            "2026-11-29T06:30:00Z",
            None,
            None,
        ),
        "INSERT INTO data_versions (table_name, version, changed_at) VALUES
           ('hazard_results', 3, '2026-11-20T00:00:00Z'),
           ('probability_results', 5, '2026-11-28T07:01:00Z')
         ON CONFLICT (table_name) DO UPDATE
            SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at;"
            .to_string(),
    ];
    db.rows(&script.join("\n"));
    db
}

fn status(db: &TestDb, file: &std::path::Path, now: &str, json: bool) -> support::Finished {
    let mut c = jobctl(&db.url);
    c.args(["status", "--now", now, "--file"]).arg(file);
    if json {
        c.arg("--json");
    }
    run(c)
}

#[test]
fn every_state_on_a_scripted_ledger() {
    let db = scripted("status_states");
    let file = jobs_file("states");
    let table = status(&db, &file, NOW, false);
    assert_eq!(
        table.code,
        1,
        "late, failing and stuck jobs exit 1:\n{}",
        table.all_output()
    );
    insta::assert_snapshot!("status_table", table.stdout);

    let out = status(&db, &file, NOW, true);
    assert_eq!(out.code, 1, "{}", out.all_output());
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON");
    let state = |job: &str| {
        rows.iter()
            .find(|r| r["job"] == job)
            .unwrap_or_else(|| panic!("{job} missing"))
            .clone()
    };
    assert_eq!(state("canary")["state"], "ok");
    assert_eq!(state("cache-refresh")["state"], "late");
    assert_eq!(state("cache-refresh")["last_due"], "2026-11-29T11:15:00Z");
    assert_eq!(state("dlq-reprocess")["state"], "failing");
    assert_eq!(state("dlq-reprocess")["open_dead_letters"], 3);
    assert_eq!(state("dlq-reprocess")["last_run"]["exit_code"], 69);
    assert_eq!(state("hazard-timeseries-batch")["state"], "running");
    assert_eq!(
        state("hazard-timeseries-batch")["data"]["age_seconds"],
        9 * 86_400 + 12 * 3600
    );
    assert_eq!(state("probability-batch")["state"], "stuck");
    assert_eq!(state("weekly-canary")["state"], "never-run");
    assert_eq!(state("weekly-canary")["next_due"], "2026-11-30T05:00:00Z");
    assert_eq!(state("site-risk-batch")["state"], "never-run");
    assert_eq!(rows.len(), 7);
}

#[test]
fn the_clock_decides_late_and_stuck() {
    let db = scripted("status_clock");
    let file = jobs_file("clock");
    // At 08:00 the probability batch has run 1h30m of its 2h: running, not stuck.
    let out = status(&db, &file, "2026-11-29T08:00:00Z", true);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON");
    let state = |job: &str| rows.iter().find(|r| r["job"] == job).unwrap()["state"].clone();
    assert_eq!(state("probability-batch"), "running");
    // cache-refresh.s 09:15 run succeeded; the next due to finish
    // is 10:15 + starting deadline + one attempt (10:56:15).
    let out = status(&db, &file, "2026-11-29T10:56:00Z", true);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        rows.iter().find(|r| r["job"] == "cache-refresh").unwrap()["state"],
        "ok"
    );
    let out = status(&db, &file, "2026-11-29T10:57:00Z", true);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        rows.iter().find(|r| r["job"] == "cache-refresh").unwrap()["state"],
        "late"
    );
}

#[test]
fn exit_codes_ok_and_usage() {
    let db = scripted("status_exit");
    // Only ok, running and never-run jobs: exit 0.
    let all = std::fs::read_to_string(jobs_file("exit")).unwrap();
    let keep = ["canary", "hazard-timeseries-batch", "weekly-canary"];
    let mut text = String::from("jobs:\n");
    let mut keeping = false;
    for line in all.lines().skip_while(|l| !l.starts_with("jobs:")).skip(1) {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            keeping = keep.contains(&name);
        }
        if keeping {
            text.push_str(line);
            text.push('\n');
        }
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let healthy = dir.join(format!("status-healthy-{}.yaml", std::process::id()));
    std::fs::write(&healthy, &text).unwrap();
    let out = status(&db, &healthy, NOW, false);
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);

    // Usage errors exit 2: a bad --now, a missing jobs file.
    let out = status(&db, &healthy, "yesterday", false);
    assert_eq!(out.code, 2, "{}", out.all_output());
    assert!(out.stderr.contains("--now"), "{}", out.stderr);
    let out = status(&db, &dir.join("no-such-jobs.yaml"), NOW, false);
    assert_eq!(out.code, 2, "{}", out.all_output());
    assert!(out.stderr.contains("no-such-jobs.yaml"), "{}", out.stderr);
}
