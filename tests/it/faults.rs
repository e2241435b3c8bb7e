//! The fault suite: the real binaries against a real PostgreSQL, attacked
//! with real faults — a black-holed connection (a freezable TCP proxy), a
//! task blocking its thread, a held table lock, connections used up, a
//! server restart, SIGTERM/SIGKILL at random moments, a stalled process,
//! hostile flags, payloads and input paths. Each case asserts the exit code
//! the contract promises and what the database holds afterwards; no input
//! may end in a panic (101) or a hang.

use crate::support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::proxy::FreezableProxy;
use support::{
    Finished, HeldSessions, PgCluster, PrivateCluster, TestDb, jobctl, run, run_bounded, signal,
    spawn, wait, wait_until,
};

const HAZARD: &str = env!("CARGO_BIN_EXE_hazard-timeseries-batch");
const PROBABILITY: &str = env!("CARGO_BIN_EXE_probability-batch");
const DLQ: &str = env!("CARGO_BIN_EXE_dlq-reprocess");

fn canary(url: &str, args: &[&str]) -> Command {
    let mut c = jobctl(url);
    c.arg("canary").args(args);
    c
}

/// 12 points, 2021–2050, one scenario: small, but enough chunks to cut a
/// run in the middle.
fn demo() -> PathBuf {
    support::demo_data("faults-demo", 12, "2021..2050", "ssp245").join("ssp245.nc")
}

fn hazard(url: &str, args: &[&str]) -> Command {
    let input = demo();
    let mut c = support::job(url, HAZARD, &["--input", input.to_str().unwrap()]);
    c.args(args);
    c
}

fn probability(url: &str, args: &[&str]) -> Command {
    support::job(url, PROBABILITY, args)
}

/// A migrated database with the hazard batch's rows for the demo file.
fn with_hazard_rows(name: &str) -> TestDb {
    let db = TestDb::migrated(name);
    let done = run(hazard(&db.url, &[]));
    assert_eq!(done.code, 0, "{}", done.all_output());
    db
}

fn hazard_checksum(db: &TestDb) -> String {
    hazard_checksum_at(&db.url)
}

/// The hazard table's content: grid points by coordinates (their ids are
/// a sequence's, and a cut run may have used some up), run ids left out.
fn hazard_checksum_at(url: &str) -> String {
    support::sql_on(
        url,
        "SELECT count(*) || ':' || md5(string_agg(h.lat || ',' || h.lon || ':' || h.scenario || ':' || h.risk_type || ':' || h.year || ':' || h.value || ':' || h.score, ';'
                               ORDER BY h.lat, h.lon, h.scenario, h.risk_type, h.year))
           FROM hazard_values h",
    )[0][0]
        .clone()
        .unwrap_or_default()
}

/// Whether `input_files` holds one row for the input and its
/// `rows_written` equals the yearly values `hazard_values` holds.
fn rows_recorded_and_present(url: &str) -> (bool, bool) {
    let rows = support::sql_on(
        url,
        "SELECT count(*) = 1, coalesce(bool_and(rows_written = (SELECT count(*) FROM hazard_values)), false)
           FROM input_files WHERE job = 'hazard-timeseries-batch'",
    );
    let flag = |i: usize| rows[0][i].as_deref() == Some("t");
    (flag(0), flag(1))
}

/// The hazard table of a clean, undisturbed run of `args`.
fn clean_hazard_checksum(args: &[&str]) -> String {
    static CLEAN: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let key = args.join(" ");
    let mut known = CLEAN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, sum)) = known.iter().find(|(k, _)| *k == key) {
        return sum.clone();
    }
    let db = TestDb::migrated(&format!("faults_clean_{}", known.len()));
    let done = run(hazard(&db.url, args));
    assert_eq!(done.code, 0, "{}", done.all_output());
    let sum = hazard_checksum(&db);
    known.push((key, sum.clone()));
    sum
}

/// Sessions of any run of `job` still on the server.
fn sessions_of(db: &TestDb, job: &str) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '{job}/%' AND datname = current_database()"
    ))
}

fn assert_no_panic(done: &Finished) {
    assert_ne!(done.code, 101, "panicked:\n{}", done.all_output());
    assert!(
        !done.stderr.contains("panicked at"),
        "panicked:\n{}",
        done.all_output()
    );
}

/// A random-enough number in [0, n) per call (the moments of the signal
/// trials; printed, so a failing trial can be replayed by hand).
fn pick(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) % n.max(1)
}

#[test]
fn a_frozen_connection_ends_the_run_69_within_three_task_timeouts_naming_the_stalled_call() {
    let db = TestDb::migrated("faults_frozen");
    let proxy = FreezableProxy::start(PgCluster::shared().port);
    let (child, started) = spawn(canary(
        &proxy.url(&db.name),
        &[
            "--tasks",
            "5000",
            "--task-duration",
            "20ms",
            "--concurrency",
            "2",
            "--task-timeout",
            "5s",
            "--timeout",
            "40s",
            "--grace",
            "5s",
        ],
    ));
    support::await_chunks_done(&db.url, 20, Duration::from_secs(20));
    proxy.freeze();
    let frozen_at = Instant::now();
    let done = wait(child, started);
    let after_freeze = frozen_at.elapsed();
    eprintln!(
        "frozen proxy (--task-timeout 5s): exit {} {after_freeze:?} after the freeze",
        done.code
    );
    assert_no_panic(&done);
    assert_eq!(done.code, 69, "{}", done.all_output());
    assert!(
        after_freeze < Duration::from_secs(15),
        "exit came {after_freeze:?} after the freeze (3 × --task-timeout is 15 s)"
    );
    assert!(
        done.stderr.contains("the database stalled:")
            && done.stderr.contains("got no answer within"),
        "the log must name the stalled call:\n{}",
        done.stderr
    );
    assert_eq!(done.summary()["exit_code"], 69);
    // No task was blamed for the outage.
    assert_eq!(db.count("SELECT count(*) FROM dead_letters"), 0);
}

#[test]
fn a_frozen_connection_ends_a_run_with_default_timeouts_within_45_s() {
    let db = TestDb::migrated("faults_frozen_defaults");
    let proxy = FreezableProxy::start(PgCluster::shared().port);
    let (child, started) = spawn(canary(
        &proxy.url(&db.name),
        &["--tasks", "5000", "--task-duration", "20ms"],
    ));
    support::await_chunks_done(&db.url, 20, Duration::from_secs(20));
    proxy.freeze();
    let frozen_at = Instant::now();
    let done = wait(child, started);
    assert_no_panic(&done);
    assert_eq!(done.code, 69, "{}", done.all_output());
    let after_freeze = frozen_at.elapsed();
    eprintln!(
        "frozen proxy (defaults): exit {} {after_freeze:?} after the freeze",
        done.code
    );
    assert!(
        after_freeze < Duration::from_secs(45),
        "with --timeout 1h the exit came {after_freeze:?} after the freeze"
    );
}

#[test]
fn a_task_blocking_its_thread_is_dead_lettered_as_timeout_and_every_other_chunk_is_done() {
    let db = TestDb::migrated("faults_block");
    let done = run_bounded(
        {
            let mut c = canary(
                &db.url,
                &[
                    "--tasks",
                    "12",
                    "--task-duration",
                    "100ms",
                    "--concurrency",
                    "2",
                    "--task-timeout",
                    "3s",
                    "--timeout",
                    "60s",
                ],
            );
            // Both slots blocked at some point: the run must replace its workers.
            c.env("CLIMATE_JOBS_FAULT", "block-task=0,block-task=5");
            c
        },
        Duration::from_secs(20),
    )
    .expect("the run did not end within 20 s");
    eprintln!(
        "block-task=0,5 --task-timeout 3s: exit {} after {:?}",
        done.code, done.elapsed
    );
    assert_no_panic(&done);
    assert_eq!(done.code, 3, "{}", done.all_output());
    let summary = done.summary();
    assert_eq!(summary["status"], "partial");
    assert_eq!(summary["tasks_timed_out"], 2);
    assert_eq!(summary["tasks_done"], 10);
    assert_eq!(
        db.rows("SELECT task_key, error_kind FROM dead_letters ORDER BY task_key"),
        vec![
            vec![Some("canary-00000".into()), Some("timeout".into())],
            vec![Some("canary-00005".into()), Some("timeout".into())],
        ]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done'"),
        10
    );
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'failed'"),
        2
    );
    assert!(done.stderr.contains("blocks its thread"), "{}", done.stderr);
    assert_eq!(db.scalar("SELECT status FROM job_runs"), "partial");
    assert!(
        wait_until(Duration::from_secs(2), || sessions_of(&db, "canary") == 0),
        "sessions of the run outlived it by 2 s"
    );
    // Given up on at its timeout (3 s) plus the controller's slack, not at
    // the run deadline.
    let held_for: f64 = db
        .scalar(
            "SELECT extract(epoch FROM finished_at - started_at) FROM run_chunks WHERE chunk_key = 'canary-00000'",
        )
        .parse()
        .unwrap();
    eprintln!("block-task=0: chunk held for {held_for:.2} s before it was dead-lettered");
    assert!(
        (3.0..10.0).contains(&held_for),
        "chunk 0 held for {held_for} s"
    );
}

#[test]
fn behind_a_held_lock_timed_out_tasks_are_cancelled_and_no_session_outlives_the_run() {
    let db = with_hazard_rows("faults_lock");
    let mut held = HeldSessions::new();
    held.open(
        &db.url,
        "BEGIN; LOCK TABLE hazard_results IN ACCESS EXCLUSIVE MODE",
    );
    let done = run_bounded(
        probability(
            &db.url,
            &[
                "--chunk-points",
                "6",
                "--concurrency",
                "2",
                "--task-timeout",
                "2s",
                "--timeout",
                "60s",
            ],
        ),
        Duration::from_secs(30),
    )
    .expect("the run did not end within 30 s");
    let exited = Instant::now();
    eprintln!("held lock: exit {} after {:?}", done.code, done.elapsed);
    assert_no_panic(&done);
    assert_eq!(done.code, 3, "{}", done.all_output());
    assert_eq!(
        db.count("SELECT count(*) FROM dead_letters WHERE error_kind = 'timeout'"),
        2
    );
    // Each timed-out task's queued statement got a cancel request at once,
    // not only at the end of the run.
    assert_eq!(
        done.stderr
            .matches("cancelled the task's server-side work")
            .count(),
        2,
        "{}",
        done.stderr
    );
    // The lock is still held: a backend of the run left behind would still
    // be queued on it.
    let gone = wait_until(Duration::from_secs(2), || {
        sessions_of(&db, "probability-batch") == 0
    });
    assert!(
        gone,
        "{} session(s) of the run still on the server {:?} after its exit: {:?}",
        sessions_of(&db, "probability-batch"),
        exited.elapsed(),
        db.rows("SELECT application_name, state, wait_event_type FROM pg_stat_activity WHERE application_name LIKE 'probability-batch/%'")
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND NOT l.granted"),
        0,
        "nothing may still wait on the lock"
    );
    drop(held);
}

#[test]
fn with_connections_used_up_a_run_waits_its_turn_or_exits_69_never_3() {
    let db = with_hazard_rows("faults_exhausted");
    let role = "faults_limited";
    db.rows(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};
         ALTER DATABASE {} CONNECTION LIMIT 8",
        db.name
    ));
    let url = format!(
        "postgres://{role}@127.0.0.1:{}/{}",
        PgCluster::shared().port,
        db.name
    );
    // 5 of the database's 8 connections taken: 3 free for a run wanting
    // 1 (control) + 4 (pool).
    let mut held = HeldSessions::new();
    for _ in 0..5 {
        held.open(&url, "");
    }
    let done = run_bounded(
        probability(&url, &["--chunk-points", "2", "--concurrency", "4"]),
        Duration::from_secs(60),
    )
    .expect("the run did not end within 60 s");
    eprintln!(
        "3 of 8 connections free, --concurrency 4: exit {} after {:?}; {} connection failure(s) retried",
        done.code,
        done.elapsed,
        done.stderr.matches("the chunk is tried again").count()
    );
    assert_no_panic(&done);
    assert!(
        done.code == 0 || done.code == 69,
        "exit {} (3 would make a transient outage final):\n{}",
        done.code,
        done.all_output()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM dead_letters"),
        0,
        "a connection failure is no dead letter"
    );
    if done.code == 0 {
        assert_eq!(done.summary()["tasks_done"], 6);
        assert!(
            done.stderr.contains("too many connections"),
            "the run never met the limit:\n{}",
            done.stderr
        );
    }
    drop(held);
}

#[test]
fn a_server_restart_mid_run_exits_69_and_the_rerun_equals_a_clean_run() {
    let args = ["--chunk-points", "1", "--concurrency", "1"];
    let clean = clean_hazard_checksum(&args);
    let cluster = PrivateCluster::start();
    let admin = cluster.url("postgres");
    support::sql_on(&admin, "CREATE DATABASE restarted");
    let url = cluster.url("restarted");
    let migrated = run({
        let mut c = jobctl(&url);
        c.arg("migrate");
        c
    });
    assert_eq!(migrated.code, 0, "{}", migrated.all_output());
    let (child, started) = spawn(hazard(&url, &args));
    support::await_chunks_done(&url, 0, Duration::from_secs(20));
    cluster.restart();
    let cut = wait(child, started);
    eprintln!("restart mid-run: exit {}", cut.code);
    assert_no_panic(&cut);
    // Cut by the restart (69), or it had just finished (0).
    assert!(
        cut.code == 69 || cut.code == 0,
        "exit {}:\n{}",
        cut.code,
        cut.all_output()
    );
    let rerun = run(hazard(&url, &args));
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    let sum = hazard_checksum_at(&url);
    assert_eq!(
        rows_recorded_and_present(&url),
        (true, true),
        "input_files.rows_written must count the rows of the cut run and of the rerun"
    );
    assert_eq!(sum, clean, "after the restart and a rerun");
}

#[test]
fn sigterm_and_sigkill_at_random_moments_leave_a_table_a_rerun_makes_equal_to_a_clean_run() {
    let args = ["--chunk-points", "1", "--concurrency", "2"];
    let clean = clean_hazard_checksum(&args);
    let db = TestDb::migrated("faults_signals_timing");
    let timed = run(hazard(&db.url, &args));
    assert_eq!(timed.code, 0, "{}", timed.all_output());
    let span = timed.elapsed.as_millis() as u64;
    for (trial, sig) in [
        libc::SIGTERM,
        libc::SIGKILL,
        libc::SIGTERM,
        libc::SIGKILL,
        libc::SIGTERM,
        libc::SIGKILL,
    ]
    .into_iter()
    .enumerate()
    {
        let db = TestDb::migrated(&format!("faults_signals_{trial}"));
        let at = Duration::from_millis(pick(span));
        let (child, started) = spawn(hazard(&db.url, &args));
        std::thread::sleep(at);
        signal(&child, sig);
        let cut = wait(child, started);
        eprintln!("trial {trial}: signal {sig} at {at:?}: exit {}", cut.code);
        assert_no_panic(&cut);
        let expected: &[i32] = if sig == libc::SIGKILL {
            &[137, 0]
        } else {
            &[143, 0]
        };
        assert!(
            expected.contains(&cut.code),
            "trial {trial}: signal {sig} at {at:?}: exit {}\n{}",
            cut.code,
            cut.all_output()
        );
        let rerun = run(hazard(&db.url, &args));
        assert!(
            rerun.code == 0,
            "trial {trial}: signal {sig} at {at:?}: rerun exit {}\n{}",
            rerun.code,
            rerun.all_output()
        );
        assert_eq!(
            hazard_checksum(&db),
            clean,
            "trial {trial}: signal {sig} at {at:?}"
        );
        assert_eq!(
            rows_recorded_and_present(&db.url),
            (true, true),
            "trial {trial}: input_files.rows_written is the total across the cut run and the rerun"
        );
    }
}

#[test]
fn a_stalled_live_run_is_not_declared_abandoned_by_another_job() {
    let db = TestDb::migrated("faults_stalled");
    let (child, started) = spawn(canary(
        &db.url,
        &[
            "--tasks",
            "60",
            "--task-duration",
            "100ms",
            "--concurrency",
            "1",
            "--heartbeat",
            "200ms",
        ],
    ));
    support::await_chunks_done(&db.url, 2, Duration::from_secs(10));
    signal(&child, libc::SIGSTOP);
    // Six heartbeats are 1.2 s: wait until the row is well past that.
    assert!(
        wait_until(Duration::from_secs(10), || {
            db.count(
            "SELECT count(*) FROM job_runs WHERE job = 'canary' AND heartbeat_at < now() - interval '3 seconds'"
        ) == 1
        }),
        "the stopped run kept beating"
    );
    // Another job's run looks for dead runs when it starts.
    let other = run(probability(&db.url, &["--heartbeat", "200ms"]));
    signal(&child, libc::SIGCONT);
    assert_no_panic(&other);
    let done = wait(child, started);
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert_eq!(
        db.scalar("SELECT status FROM job_runs WHERE job = 'canary'"),
        "succeeded",
        "a live (stalled) run must not be marked abandoned; the other run said:\n{}",
        other.all_output()
    );
}

#[test]
fn a_killed_run_of_another_job_with_a_stale_heartbeat_is_declared_abandoned() {
    let db = TestDb::migrated("faults_abandoned");
    let (child, started) = spawn(canary(
        &db.url,
        &[
            "--tasks",
            "1000",
            "--task-duration",
            "100ms",
            "--heartbeat",
            "200ms",
        ],
    ));
    assert!(
        wait_until(Duration::from_secs(10), || db
            .count("SELECT count(*) FROM job_runs WHERE status = 'running'")
            == 1),
        "the canary never started"
    );
    signal(&child, libc::SIGKILL);
    let _ = wait(child, started);
    assert!(
        wait_until(Duration::from_secs(10), || sessions_of(&db, "canary") == 0
            && db.count(
                "SELECT count(*) FROM job_runs WHERE heartbeat_at < now() - interval '2 seconds'"
            ) == 1),
        "the killed run's sessions stayed"
    );
    let other = run(probability(&db.url, &["--heartbeat", "200ms"]));
    assert_no_panic(&other);
    assert_eq!(
        db.scalar("SELECT status FROM job_runs WHERE job = 'canary'"),
        "abandoned",
        "{}",
        other.all_output()
    );
}

#[test]
fn an_administrator_ending_the_runs_sessions_exits_69() {
    let db = TestDb::migrated("faults_admin_shutdown");
    let (child, started) = spawn(canary(
        &db.url,
        &[
            "--tasks",
            "5000",
            "--task-duration",
            "20ms",
            "--concurrency",
            "2",
        ],
    ));
    support::await_chunks_done(&db.url, 5, Duration::from_secs(10));
    db.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'canary/%' AND datname = current_database()");
    let done = wait(child, started);
    assert_no_panic(&done);
    assert_eq!(done.code, 69, "{}", done.all_output());
    assert_eq!(db.count("SELECT count(*) FROM dead_letters"), 0);
}

#[test]
fn configuration_faults_exit_2_and_outages_69() {
    let port = PgCluster::shared().port;
    // No such database.
    let done = run(canary(
        &format!("postgres://postgres@127.0.0.1:{port}/faults_no_such_db"),
        &[],
    ));
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.stderr.contains("3D000"), "{}", done.stderr);
    // No such role (28000).
    let done = run(canary(
        &format!("postgres://faults_nobody@127.0.0.1:{port}/postgres"),
        &[],
    ));
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.stderr.contains("28000"), "{}", done.stderr);
    // migrate without the CREATE privilege (42501).
    let db = TestDb::empty("faults_no_create");
    db.rows(
        "DO $$ BEGIN CREATE ROLE faults_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    );
    let done = run({
        let mut c = jobctl(&format!(
            "postgres://faults_reader@127.0.0.1:{port}/{}",
            db.name
        ));
        c.arg("migrate");
        c
    });
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.stderr.contains("permission denied"), "{}", done.stderr);
    // sslmode=verify-full is understood (the test server has no TLS, so
    // this is a refusal to go without it: not a URL error).
    let done = run(canary(
        &format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full"),
        &["--connect-timeout", "2s"],
    ));
    assert_no_panic(&done);
    assert!(
        !done.stderr.contains("not a valid PostgreSQL URL"),
        "{}",
        done.stderr
    );
    // Nobody listening: an outage.
    let done = run(canary(
        "postgres://postgres@127.0.0.1:1/x",
        &["--connect-timeout", "1s"],
    ));
    assert_eq!(done.code, 69, "{}", done.all_output());
}

#[test]
fn every_bad_duration_exits_2_before_anything_is_written() {
    let db = TestDb::migrated("faults_flags");
    let bad: &[(&str, &str)] = &[
        ("--heartbeat", "0s"),
        ("--timeout", "9223372036854775807s"),
        ("--timeout", "0s"),
        ("--timeout", "soon"),
        ("--task-timeout", "0s"),
        ("--task-timeout", "-1s"),
        ("--grace", "99999999999h"),
        ("--connect-timeout", "0ms"),
        ("--statement-timeout", "100000000h"),
    ];
    for binary in [PROBABILITY, HAZARD, DLQ] {
        for (flag, value) in bad {
            let done = run(support::job(&db.url, binary, &[&format!("{flag}={value}")]));
            assert_eq!(
                done.code,
                2,
                "{binary} {flag} {value}:\n{}",
                done.all_output()
            );
            assert!(
                done.stderr.contains(flag),
                "{binary} {flag} {value}:\n{}",
                done.stderr
            );
        }
    }
    for (flag, value) in bad {
        let done = run(canary(&db.url, &[&format!("{flag}={value}")]));
        assert_eq!(
            done.code,
            2,
            "canary {flag} {value}:\n{}",
            done.all_output()
        );
    }
    // The environment fallbacks are checked the same way.
    let done = run({
        let mut c = canary(&db.url, &[]);
        c.env("CLIMATE_JOBS_TIMEOUT", "9223372036854775807s");
        c
    });
    assert_eq!(done.code, 2, "{}", done.all_output());
    let done = run(support::job(
        &db.url,
        DLQ,
        &["--backoff", "9223372036854775807s"],
    ));
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert_eq!(db.count("SELECT count(*) FROM job_runs"), 0);
}

#[test]
fn hand_corrupted_dead_letter_payloads_fail_their_letters_not_the_process() {
    let db = TestDb::migrated("faults_bad_letters");
    let run_id = "00000000-0000-7000-8000-000000000000";
    for (job, key, payload) in [
        ("hazard-timeseries-batch", "x:1", "{}"),
        (
            "hazard-timeseries-batch",
            "x:2",
            r#"{"file": 7, "points": "all"}"#,
        ),
        (
            "hazard-timeseries-batch",
            "x:3",
            r#"{"file": "/nonexistent.nc", "fingerprint": "v1", "scenario": "s", "start": 5, "end": 1, "hazards": [], "years": null}"#,
        ),
        ("probability-batch", "grid:1", r#"{"grid_ids": "many"}"#),
        ("probability-batch", "grid:2", r#"[1, 2, 3]"#),
        (
            "probability-batch",
            "grid:3",
            r#"{"grid_ids": [2147483647, -1], "scenarios": null, "hazards": ["no-such-hazard"], "years": null, "window": 0, "min_years": 0}"#,
        ),
        ("no-such-job", "k", "null"),
    ] {
        db.rows(&format!(
            "INSERT INTO dead_letters (job, task_key, payload, error_kind, error, first_run_id, last_run_id)
             VALUES ('{job}', '{key}', '{}'::jsonb, 'error', 'seeded', '{run_id}', '{run_id}')",
            payload.replace('\'', "''")
        ));
    }
    let done = run_bounded(
        support::job(&db.url, DLQ, &["--task-timeout", "10s"]),
        Duration::from_secs(60),
    )
    .expect("dlq-reprocess did not end within 60 s");
    assert_no_panic(&done);
    assert!(
        [0, 3].contains(&done.code),
        "exit {}:\n{}",
        done.code,
        done.all_output()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM dead_letters WHERE status = 'resolved'"),
        0,
        "a corrupted payload cannot succeed"
    );
}

#[test]
fn fifo_directory_and_symlink_loop_inputs_exit_65_or_2_never_hang_or_panic() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faults-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.nc");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let loop_a = dir.join("loop-a.nc");
    let loop_b = dir.join("loop-b.nc");
    std::os::unix::fs::symlink(&loop_b, &loop_a).unwrap();
    std::os::unix::fs::symlink(&loop_a, &loop_b).unwrap();
    let subdir = dir.join("a-directory.nc");
    std::fs::create_dir_all(&subdir).unwrap();
    let db = TestDb::migrated("faults_inputs");
    for input in [&fifo, &loop_a, &subdir] {
        let done = run_bounded(
            support::job(&db.url, HAZARD, &["--input", input.to_str().unwrap()]),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|| panic!("{} hung the batch", input.display()));
        assert_no_panic(&done);
        assert!(
            [65, 2].contains(&done.code),
            "{}: exit {}\n{}",
            input.display(),
            done.code,
            done.all_output()
        );
        assert!(
            done.stderr
                .contains(input.file_name().unwrap().to_str().unwrap()),
            "the message must name the file:\n{}",
            done.stderr
        );
    }
    assert_eq!(db.count("SELECT count(*) FROM hazard_results"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A private CA and a server certificate for `localhost` only, made with
/// the `openssl` tool (Debian's postgresql depends on it, via ssl-cert).
fn make_certificates(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=faults test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let out = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .output()
            .expect("chown");
        assert!(out.status.success());
    }
}

#[test]
fn tls_verify_full_checks_the_host_name_verify_ca_the_chain_and_a_bad_certificate_exits_2() {
    let cluster = PrivateCluster::start();
    let tls = cluster.pg.dir.join("tls");
    make_certificates(&tls);
    let admin = format!("{}?sslmode=disable", cluster.url("postgres"));
    // One statement each: ALTER SYSTEM refuses a transaction block.
    for setting in [
        format!("ssl_cert_file = '{}/server.pem'", tls.display()),
        format!("ssl_key_file = '{}/server.key'", tls.display()),
        "ssl = on".to_string(),
    ] {
        support::sql_on(&admin, &format!("ALTER SYSTEM SET {setting}"));
    }
    support::sql_on(&admin, "SELECT pg_reload_conf()");
    assert!(
        wait_until(Duration::from_secs(10), || support::sql_on(
            &admin, "SHOW ssl"
        )[0][0]
            .as_deref()
            == Some("on")),
        "the server did not turn TLS on"
    );
    let port = cluster.pg.port;
    let migrated = run({
        let mut c = jobctl(&admin);
        c.arg("migrate");
        c
    });
    assert_eq!(migrated.code, 0, "{}", migrated.all_output());
    let ca = tls.join("ca.pem");
    let attempt = |host: &str, mode: &str, with_ca: bool| {
        let mut c = canary(
            &format!("postgres://postgres@{host}:{port}/postgres?sslmode={mode}"),
            &[
                "--tasks",
                "2",
                "--task-duration",
                "1ms",
                "--connect-timeout",
                "5s",
            ],
        );
        c.env_remove("PGSSLROOTCERT");
        if with_ca {
            c.arg("--ca-file").arg(&ca);
        }
        let done = run(c);
        assert_no_panic(&done);
        done
    };
    // The certificate names localhost, not 127.0.0.1.
    let wrong_name = attempt("127.0.0.1", "verify-full", true);
    assert_eq!(wrong_name.code, 2, "{}", wrong_name.all_output());
    assert!(
        wrong_name.stderr.contains("certificate"),
        "{}",
        wrong_name.stderr
    );
    let right_name = attempt("localhost", "verify-full", true);
    assert_eq!(right_name.code, 0, "{}", right_name.all_output());
    let chain_only = attempt("127.0.0.1", "verify-ca", true);
    assert_eq!(chain_only.code, 0, "{}", chain_only.all_output());
    // Without the private CA, the chain does not verify.
    let unknown_ca = attempt("localhost", "verify-ca", false);
    assert_eq!(unknown_ca.code, 2, "{}", unknown_ca.all_output());
    // The runs that got in did so over TLS.
    assert_eq!(
        support::sql_on(
            &admin,
            "SELECT count(*) FROM job_runs WHERE status = 'succeeded'"
        )[0][0]
            .as_deref(),
        Some("2")
    );
}

#[test]
fn a_role_that_may_not_write_the_results_ends_the_run_2_not_a_queue_of_letters() {
    let db = with_hazard_rows("faults_no_insert");
    let role = "faults_no_writer";
    db.rows(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};
         REVOKE INSERT, UPDATE, DELETE ON probability_results FROM {role}"
    ));
    let url = format!(
        "postgres://{role}@127.0.0.1:{}/{}",
        PgCluster::shared().port,
        db.name
    );
    let done = run(probability(&url, &["--chunk-points", "4"]));
    assert_no_panic(&done);
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.stderr.contains("permission denied"), "{}", done.stderr);
    assert_eq!(db.count("SELECT count(*) FROM dead_letters"), 0);
    assert_eq!(db.count("SELECT count(*) FROM probability_results"), 0);
}

#[test]
fn a_rerun_after_a_run_cut_between_its_last_chunk_and_its_record_counts_every_row() {
    let args = ["--chunk-points", "3"];
    let db = TestDb::migrated("faults_rows_total");
    let first = run(hazard(&db.url, &args));
    assert_eq!(first.code, 0, "{}", first.all_output());
    // As if the first run had been killed after its last chunk, before it
    // recorded the input as processed: the rerun finds every chunk done.
    db.rows("DELETE FROM input_files");
    let rerun = run(hazard(&db.url, &args));
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert_eq!(rerun.summary()["tasks_done"], 0, "{}", rerun.stdout);
    assert_eq!(
        rows_recorded_and_present(&db.url),
        (true, true),
        "rows_written must count the rows the earlier run wrote"
    );
}
