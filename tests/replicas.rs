//! Many replicas, one run: processes started with the same `--execution`
//! share the plan's chunks (each done exactly once), another execution is
//! skipped while they live, and a dead replica's chunk is claimed again
//! once its lease has passed.

mod support;

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

    let survivor = support::run(replica(&db, "exec-l", &args));
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
