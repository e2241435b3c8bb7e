//! The run contract, pinned by driving the real `jobctl`
//! binary against a real, throw-away PostgreSQL: exit codes, ledger rows,
//! dead letters, deadlines, signals, the singleton lock.

use crate::support;

use std::time::Duration;

use support::{TestDb, jobctl, run, signal, spawn, wait, wait_until};

fn canary(db: &TestDb) -> std::process::Command {
    let mut c = jobctl(&db.url);
    c.arg("canary");
    c
}

/// Every migration the binaries carry.

#[test]
fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let db = TestDb::empty("migrate_twice");
    let first = run({
        let mut c = jobctl(&db.url);
        c.arg("migrate");
        c
    });
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert!(
        first.stdout.contains(&format!(
            "{} applied, 0 already present",
            climate_jobs::store::schema::MIGRATIONS.len()
        )),
        "{}",
        first.stdout
    );
    let tables = "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'";
    let before = db.scalar(tables);
    assert_eq!(
        before,
        "data_versions,dataset_files,datasets,dead_letters,grid_points,hazard_results,hazard_values,input_files,job_executions,job_runs,notify_alerts,notify_executions,probability_results,probability_series,probability_values,region_hazard_cache,region_hazard_cache_series,region_hazard_cache_state,regions,run_chunks,schema_migrations,site_aal_cache,site_hazard_series,site_results,site_risk_curves,site_risk_values,sites"
    );
    let applied_at = db.scalar("SELECT applied_at::text FROM schema_migrations WHERE version = 1");

    let second = run({
        let mut c = jobctl(&db.url);
        c.arg("migrate");
        c
    });
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert!(
        second.stdout.contains(&format!(
            "0 applied, {} already present",
            climate_jobs::store::schema::MIGRATIONS.len()
        )),
        "{}",
        second.stdout
    );
    assert_eq!(db.scalar(tables), before);
    assert_eq!(
        db.scalar("SELECT applied_at::text FROM schema_migrations WHERE version = 1"),
        applied_at
    );

    let fresh = TestDb::empty("migrate_concurrently");
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut c = jobctl(&fresh.url);
            c.arg("migrate");
            spawn(c)
        })
        .collect();
    for (child, started) in children {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "{}", done.all_output());
    }
    assert_eq!(
        fresh.count("SELECT count(*) FROM schema_migrations"),
        climate_jobs::store::schema::MIGRATIONS.len() as i64
    );
    assert_eq!(fresh.scalar(tables), before);
}

#[test]
fn canary_succeeds_and_records_its_metrics() {
    let db = TestDb::migrated("canary_ok");
    let mut c = canary(&db);
    c.args(["--tasks", "20", "--task-duration", "10ms"]);
    let done = run(c);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let summary = done.summary();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["tasks_done"], 20);
    assert_eq!(summary["job"], "canary");
    let run_id = summary["run_id"].as_str().unwrap().to_string();

    let row = &db.rows(&format!(
        "SELECT status, tasks_total, tasks_done, tasks_failed, exit_code, duration_ms > 0, peak_rss_kb > 0, finished_at IS NOT NULL
           FROM job_runs WHERE run_id = '{run_id}'"
    ))[0];
    let row: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
    assert_eq!(row, ["succeeded", "20", "20", "0", "0", "t", "t", "t"]);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM run_chunks WHERE run_id = '{run_id}' AND state = 'done'"
        )),
        20
    );
    // Every stderr line is JSON carrying the job and the run id.
    for line in done.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let spans = v["spans"]
            .as_array()
            .unwrap_or_else(|| panic!("no spans: {line}"));
        assert_eq!(spans[0]["job"], "canary", "{line}");
        assert_eq!(spans[0]["run_id"], run_id.as_str(), "{line}");
    }
}

#[test]
fn a_hung_task_times_out_into_the_dead_letter_queue_and_the_batch_goes_on() {
    let db = TestDb::migrated("canary_hang");
    let mut c = canary(&db);
    c.env("CLIMATE_JOBS_FAULT", "hang-task=3").args([
        "--tasks",
        "10",
        "--task-timeout",
        "1s",
        "--task-duration",
        "10ms",
    ]);
    let done = run(c);
    assert_eq!(done.code, 3, "{}", done.all_output());
    assert!(
        done.elapsed < Duration::from_secs(10),
        "took {:?}",
        done.elapsed
    );
    let summary = done.summary();
    assert_eq!(summary["status"], "partial");
    assert_eq!(summary["tasks_done"], 9);
    assert_eq!(summary["tasks_timed_out"], 1);
    let letters =
        db.rows("SELECT task_key, status, error_kind, payload->>'index' FROM dead_letters");
    assert_eq!(
        letters,
        vec![vec![
            Some("canary-00003".into()),
            Some("pending".into()),
            Some("timeout".into()),
            Some("3".into())
        ]]
    );
    assert_eq!(db.scalar("SELECT status FROM job_runs"), "partial");
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done'"),
        9
    );
}

#[test]
fn a_failing_task_is_dead_lettered_with_its_error() {
    let db = TestDb::migrated("canary_fail");
    let mut c = canary(&db);
    c.env("CLIMATE_JOBS_FAULT", "fail-task=1,fail-task=4")
        .args(["--tasks", "6", "--task-duration", "1ms"]);
    let done = run(c);
    assert_eq!(done.code, 3, "{}", done.all_output());
    let letters = db.rows("SELECT task_key, error_kind, error FROM dead_letters ORDER BY task_key");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0][0].as_deref(), Some("canary-00001"));
    assert_eq!(letters[0][1].as_deref(), Some("error"));
    assert!(letters[0][2].as_deref().unwrap().contains("fail-task=1"));
    assert_eq!(letters[1][0].as_deref(), Some("canary-00004"));
}

#[test]
fn a_task_blocking_its_thread_cannot_outlive_the_run_deadline() {
    let db = TestDb::migrated("canary_block");
    let mut c = canary(&db);
    c.env("CLIMATE_JOBS_FAULT", "block-task=0").args([
        "--tasks",
        "4",
        "--timeout",
        "3s",
        "--task-timeout",
        "60s",
        "--grace",
        "2s",
    ]);
    let done = run(c);
    assert_eq!(done.code, 124, "{}", done.all_output());
    assert!(
        done.elapsed < Duration::from_secs(6),
        "took {:?}",
        done.elapsed
    );
    assert_eq!(done.summary()["status"], "timed_out");
    assert_eq!(db.scalar("SELECT status FROM job_runs"), "timed_out");
    assert_eq!(db.scalar("SELECT exit_code FROM job_runs"), "124");
}

#[test]
fn sigterm_stops_gracefully_keeps_finished_work_and_exits_143() {
    let db = TestDb::migrated("canary_sigterm");
    let mut c = canary(&db);
    c.args([
        "--tasks",
        "1000",
        "--task-duration",
        "50ms",
        "--concurrency",
        "2",
        "--grace",
        "5s",
    ]);
    let (child, started) = spawn(c);
    // Signal once the run is under way: some chunks are done.
    support::await_chunks_done(&db.url, 4, Duration::from_secs(20));
    signal(&child, libc::SIGTERM);
    let signalled = std::time::Instant::now();
    let done = wait(child, started);
    assert_eq!(done.code, 143, "{}", done.all_output());
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exit took {:?} after SIGTERM",
        signalled.elapsed()
    );
    let summary = done.summary();
    assert_eq!(summary["status"], "cancelled");
    let finished = summary["tasks_done"].as_u64().unwrap();
    assert!(finished > 0 && finished < 1000, "tasks_done = {finished}");
    assert_eq!(db.scalar("SELECT status FROM job_runs"), "cancelled");
    assert_eq!(
        db.scalar("SELECT tasks_done FROM job_runs"),
        finished.to_string()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done'"),
        finished as i64,
        "every finished task stays recorded"
    );
}

#[test]
fn a_second_copy_started_together_is_skipped_at_once() {
    let db = TestDb::migrated("canary_singleton");
    let start = || {
        let mut c = canary(&db);
        c.args([
            "--tasks",
            "20",
            "--task-duration",
            "100ms",
            "--concurrency",
            "1",
        ]);
        spawn(c)
    };
    // Each is waited on in its own thread, so each elapsed time is its own.
    let a = std::thread::spawn({
        let (child, started) = start();
        move || wait(child, started)
    });
    let b = std::thread::spawn({
        let (child, started) = start();
        move || wait(child, started)
    });
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(
        (a.code, b.code),
        (0, 0),
        "{}\n{}",
        a.all_output(),
        b.all_output()
    );
    let mut statuses = [
        a.summary()["status"].as_str().unwrap().to_string(),
        b.summary()["status"].as_str().unwrap().to_string(),
    ];
    statuses.sort();
    assert_eq!(statuses, ["skipped", "succeeded"]);
    let skipped = if a.summary()["status"] == "skipped" {
        &a
    } else {
        &b
    };
    assert!(
        skipped.elapsed < Duration::from_secs(2),
        "skipped run took {:?}",
        skipped.elapsed
    );
    assert!(
        skipped.summary()["reason"]
            .as_str()
            .unwrap()
            .contains("holds the lock")
    );
    assert_eq!(
        db.rows("SELECT status FROM job_runs ORDER BY status"),
        vec![
            vec![Some("skipped".to_string())],
            vec![Some("succeeded".to_string())]
        ]
    );
}

#[test]
fn a_killed_run_is_marked_abandoned_and_does_not_block_the_next() {
    let db = TestDb::migrated("canary_sigkill");
    let mut c = canary(&db);
    c.args([
        "--tasks",
        "1000",
        "--task-duration",
        "50ms",
        "--concurrency",
        "2",
    ]);
    let (child, started) = spawn(c);
    assert!(
        wait_until(Duration::from_secs(10), || db
            .count("SELECT count(*) FROM job_runs WHERE status = 'running'")
            == 1),
        "the first run never started"
    );
    signal(&child, libc::SIGKILL);
    let killed = wait(child, started);
    assert_eq!(killed.code, 128 + libc::SIGKILL);

    let mut c = canary(&db);
    c.args(["--tasks", "5", "--task-duration", "1ms"]);
    let next = run(c);
    assert_eq!(next.code, 0, "{}", next.all_output());
    assert_eq!(next.summary()["status"], "succeeded");
    assert_eq!(
        db.rows("SELECT status FROM job_runs ORDER BY started_at"),
        vec![
            vec![Some("abandoned".to_string())],
            vec![Some("succeeded".to_string())]
        ]
    );
}

#[test]
fn an_unreachable_database_exits_69_naming_the_host_not_the_password() {
    let mut c = jobctl("postgres://u:s3cr3t@127.0.0.1:1/x");
    c.args(["canary", "--connect-timeout", "2s"]);
    let done = run(c);
    assert_eq!(done.code, 69, "{}", done.all_output());
    assert!(
        done.elapsed < Duration::from_secs(5),
        "took {:?}",
        done.elapsed
    );
    assert!(
        done.all_output().contains("127.0.0.1:1/x"),
        "{}",
        done.all_output()
    );
    assert!(
        !done.all_output().contains("s3cr3t"),
        "{}",
        done.all_output()
    );
    assert_eq!(done.summary()["exit_code"], 69);
}

#[test]
fn the_database_url_can_come_from_a_mounted_secret_file() {
    let db = TestDb::migrated("canary_url_file");
    let secret = std::env::temp_dir().join(format!("cj-url-{}", std::process::id()));
    std::fs::write(&secret, format!("{}\n", db.url)).unwrap();
    let mut c = jobctl("");
    c.env_remove("DATABASE_URL")
        .env("DATABASE_URL_FILE", &secret)
        .args(["canary", "--tasks", "2", "--task-duration", "1ms"]);
    let done = run(c);
    std::fs::remove_file(&secret).ok();
    assert_eq!(done.code, 0, "{}", done.all_output());
}

#[test]
fn dry_run_plans_and_writes_nothing() {
    let db = TestDb::migrated("canary_dry_run");
    let mut c = canary(&db);
    c.args(["--tasks", "7", "--dry-run"]);
    let done = run(c);
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert!(
        done.stdout.contains("would run 7 task(s)"),
        "{}",
        done.stdout
    );
    assert_eq!(done.summary()["dry_run"], true);
    assert_eq!(db.count("SELECT count(*) FROM job_runs"), 0);
    assert_eq!(db.count("SELECT count(*) FROM run_chunks"), 0);
}

#[test]
fn bad_flags_and_missing_configuration_are_usage_errors() {
    let done = run({
        let mut c = jobctl("postgres://127.0.0.1:1/x");
        c.args(["canary", "--tasks", "many"]);
        c
    });
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.stderr.contains("--tasks"), "{}", done.stderr);

    let done = run({
        let mut c = jobctl("postgres://127.0.0.1:1/x");
        c.args(["canary", "--timeout", "soon"]);
        c
    });
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("--timeout"), "{}", done.stderr);

    let done = run({
        let mut c = jobctl("");
        c.env_remove("DATABASE_URL").arg("canary");
        c
    });
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(
        done.all_output().contains("DATABASE_URL"),
        "{}",
        done.all_output()
    );

    let done = run({
        let mut c = jobctl("postgres://127.0.0.1:1/x");
        c.env("CLIMATE_JOBS_FAULT", "explode=1").arg("canary");
        c
    });
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.all_output().contains("CLIMATE_JOBS_FAULT"));
}

#[test]
fn a_job_on_an_unmigrated_database_says_to_run_migrate() {
    let db = TestDb::empty("canary_unmigrated");
    let done = run({
        let mut c = canary(&db);
        c.args(["--tasks", "1"]);
        c
    });
    assert_eq!(done.code, 1, "{}", done.all_output());
    assert!(
        done.all_output().contains("run `jobctl migrate` first"),
        "{}",
        done.all_output()
    );
}

#[test]
fn runs_lists_the_history_as_a_table_and_as_json() {
    let db = TestDb::migrated("runs_listing");
    for tasks in ["3", "4"] {
        let mut c = canary(&db);
        c.args(["--tasks", tasks, "--task-duration", "1ms"]);
        assert_eq!(run(c).code, 0);
    }
    let table = run({
        let mut c = jobctl(&db.url);
        c.args(["runs", "--job", "canary"]);
        c
    });
    assert_eq!(table.code, 0, "{}", table.all_output());
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[0].starts_with("STARTED (UTC)"));
    assert!(
        lines[1].contains("canary") && lines[1].contains("succeeded") && lines[1].contains("4/4"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("3/3"), "{}", lines[2]);

    let json = run({
        let mut c = jobctl(&db.url);
        c.args(["runs", "--json", "--limit", "1"]);
        c
    });
    let runs: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["tasks_done"], 4);
}
