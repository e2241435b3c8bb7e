//! Many replicas, one run: processes started with the same `--execution`
//! share the plan's chunks (each done exactly once), another execution is
//! skipped while they live, and a dead replica's chunk is claimed again
//! once its lease has passed.

use crate::support;

use std::time::Duration;

use support::{TestDb, jobctl, spawn, wait};

fn replica(db: &TestDb, execution: &str, args: &[&str]) -> std::process::Command {
    let mut c = jobctl(&db.url);
    c.args(["canary", "--execution", execution]).args(args);
    c
}

#[test]
fn replicas_of_one_execution_share_the_chunks_and_do_each_once() {
    let db = TestDb::migrated("replicas_share");
    let args = [
        "--tasks",
        "30",
        "--task-duration",
        "50ms",
        "--concurrency",
        "2",
    ];
    let children: Vec<_> = (0..3)
        .map(|_| spawn(replica(&db, "exec-1", &args)))
        .collect();
    let done: Vec<_> = children.into_iter().map(|(c, t)| wait(c, t)).collect();
    for d in &done {
        assert_eq!(d.code, 0, "{}", d.all_output());
        assert_eq!(d.summary()["status"], "succeeded");
    }
    // Each chunk exactly once: the replicas' done counts add up to the plan.
    let total: u64 = done
        .iter()
        .map(|d| d.summary()["tasks_done"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 30);
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done' AND execution = 'exec-1'"),
        30
    );
    assert_eq!(
        db.count("SELECT sum(attempts) FROM run_chunks"),
        30,
        "no chunk ran twice"
    );
    let workers = db.count("SELECT count(DISTINCT run_id) FROM run_chunks");
    assert!(workers >= 2, "the work was shared by {workers} replica(s)");
    assert_eq!(
        db.count("SELECT count(*) FROM job_runs WHERE status = 'succeeded'"),
        3
    );
}

#[test]
fn another_execution_is_skipped_while_replicas_of_the_current_one_run() {
    let db = TestDb::migrated("replicas_exclusive");
    let args = [
        "--tasks",
        "40",
        "--task-duration",
        "50ms",
        "--concurrency",
        "1",
    ];
    let first = spawn(replica(&db, "exec-a", &args));
    assert!(support::wait_until(Duration::from_secs(10), || {
        db.count("SELECT count(*) FROM job_runs WHERE status = 'running'") == 1
    }));
    let other = support::run(replica(&db, "exec-b", &args));
    assert_eq!(other.code, 0, "{}", other.all_output());
    assert_eq!(other.summary()["status"], "skipped");
    let lone = support::run({
        let mut c = jobctl(&db.url);
        c.args(["canary", "--tasks", "1"]);
        c
    });
    assert_eq!(
        lone.summary()["status"],
        "skipped",
        "a lone run does not overlap replicas either"
    );
    let first = wait(first.0, first.1);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(first.summary()["tasks_done"], 40);
}

#[test]
fn a_dead_replicas_chunk_is_claimed_again_after_its_lease() {
    let db = TestDb::migrated("replicas_lease");
    // Lease = task timeout 1s + grace 1s + 10s margin.
    let args = [
        "--tasks",
        "6",
        "--task-duration",
        "300ms",
        "--concurrency",
        "1",
        "--task-timeout",
        "1s",
        "--grace",
        "1s",
    ];
    let (victim, victim_started) = spawn(replica(&db, "exec-l", &args));
    assert!(support::wait_until(Duration::from_secs(10), || {
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'running'") == 1
    }));
    support::signal(&victim, libc::SIGKILL);
    let _ = wait(victim, victim_started);
    let orphan = db.scalar("SELECT chunk_key FROM run_chunks WHERE state = 'running'");

    let mut with_beat = args.to_vec();
    with_beat.extend(["--heartbeat", "1s"]);
    let (survivor, survivor_started) = spawn(replica(&db, "exec-l", &with_beat));
    // While it waits for the lease it still beats: its row stays fresh.
    // Wait for a beat at least 3 s after its start (the lease is ~12 s).
    assert!(support::wait_until(Duration::from_secs(10), || {
        db.rows(
            "SELECT 1 FROM job_runs WHERE status = 'running'
                AND heartbeat_at - started_at >= interval '3 seconds'",
        )
        .len()
            == 1
    }));
    let beat_age = db.scalar(
        "SELECT extract(epoch FROM now() - heartbeat_at)::int || ',' || extract(epoch FROM heartbeat_at - started_at)::int
           FROM job_runs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1",
    );
    let (age, since_start): (i64, i64) = match beat_age.split_once(',') {
        Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
        None => panic!("{beat_age}"),
    };
    assert!(
        age <= 2 && since_start >= 3,
        "heartbeat age {age} s, {since_start} s after start"
    );
    let survivor = wait(survivor, survivor_started);
    assert_eq!(survivor.code, 0, "{}", survivor.all_output());
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done'"),
        6,
        "the run ends when its last chunk does"
    );
    assert_eq!(
        db.count(&format!(
            "SELECT attempts FROM run_chunks WHERE chunk_key = '{orphan}'"
        )),
        1
    );
    assert!(
        survivor.elapsed >= Duration::from_secs(10),
        "waited for the lease: {:?}",
        survivor.elapsed
    );
}

/// The hazard table, run ids left out.
fn hazard_checksum(db: &TestDb) -> String {
    db.yearly_scalar(
        "SELECT md5(string_agg(g.lat || ',' || g.lon || ',' || scenario || ',' || risk_type || ',' || year || ',' || value || ',' || score, ';'
                    ORDER BY g.lat, g.lon, scenario, risk_type, year))
           FROM hazard_yearly h JOIN grid_points g ON g.id = h.grid_id",
    )
}

fn hazard_replica(
    db: &TestDb,
    input: &str,
    execution: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut args = vec![
        "--input",
        input,
        "--chunk-points",
        "6",
        "--execution",
        execution,
    ];
    args.extend(extra);
    support::job(
        &db.url,
        env!("CARGO_BIN_EXE_hazard-timeseries-batch"),
        &args,
    )
}

#[test]
fn three_hazard_replicas_write_the_table_one_replica_writes_each_chunk_once() {
    let data = support::demo_data("replica-demo", 60, "2021..2025", "ssp245");
    let input = data.join("ssp245.nc");
    let input = input.to_str().unwrap();
    let single = TestDb::migrated("replicas_hazard_one");
    let one = support::run(hazard_replica(&single, input, "solo", &[]));
    assert_eq!(one.code, 0, "{}", one.all_output());

    let db = TestDb::migrated("replicas_hazard_three");
    let children: Vec<_> = (0..3)
        .map(|_| spawn(hazard_replica(&db, input, "three", &["--concurrency", "1"])))
        .collect();
    for (child, started) in children {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "{}", done.all_output());
    }
    assert_eq!(hazard_checksum(&db), hazard_checksum(&single));
    // The ledger: 10 chunks, each done once, by more than one replica.
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done'"),
        10
    );
    assert_eq!(db.count("SELECT sum(attempts) FROM run_chunks"), 10);
    assert!(db.count("SELECT count(DISTINCT run_id) FROM run_chunks") >= 2);
    assert_eq!(db.count("SELECT sum(tasks_done) FROM job_runs"), 10);
    assert_eq!(
        db.count("SELECT count(*) FROM input_files"),
        1,
        "the plan's last chunk vouches for the input once"
    );
}

#[test]
fn a_hazard_replica_killed_mid_chunk_leaves_it_to_be_redone_after_its_lease() {
    let data = support::demo_data("replica-demo", 60, "2021..2025", "ssp245");
    let input = data.join("ssp245.nc");
    let input = input.to_str().unwrap();
    let single = TestDb::migrated("replicas_kill_one");
    assert_eq!(
        support::run(hazard_replica(&single, input, "solo", &[])).code,
        0
    );

    let db = TestDb::migrated("replicas_kill");
    // Lease = task timeout 3s + grace 1s + 10s. The victim hangs in its first
    // chunk and is killed before its task timeout could record anything.
    let lease_args = [
        "--concurrency",
        "1",
        "--task-timeout",
        "3s",
        "--grace",
        "1s",
    ];
    let mut victim = hazard_replica(&db, input, "killed", &lease_args);
    victim.env("CLIMATE_JOBS_FAULT", "hang-task=0");
    let (victim, started) = spawn(victim);
    assert!(support::wait_until(Duration::from_secs(10), || {
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'running' AND ordinal = 0") == 1
    }));
    support::signal(&victim, libc::SIGKILL);
    let _ = wait(victim, started);

    let survivors: Vec<_> = (0..2)
        .map(|_| spawn(hazard_replica(&db, input, "killed", &lease_args)))
        .collect();
    for (child, started) in survivors {
        let done = wait(child, started);
        assert_eq!(done.code, 0, "{}", done.all_output());
    }
    assert_eq!(hazard_checksum(&db), hazard_checksum(&single));
    assert_eq!(
        db.count("SELECT count(*) FROM run_chunks WHERE state = 'done'"),
        10
    );
    assert_eq!(
        db.count("SELECT sum(attempts) FROM run_chunks"),
        10,
        "every chunk finished once"
    );
}
