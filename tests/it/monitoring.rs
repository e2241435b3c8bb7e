//! Metrics end to end: real job runs push to a real Pushgateway, a real
//! Prometheus scrapes it, and the values are read back through Prometheus'
//! HTTP API; the dashboard's every expression runs against it; a SIGKILLed
//! run shows up as abandoned after `jobctl metrics push`.

use crate::prometheus_support;
use crate::support;

use std::time::Duration;

use crate::deploy_support::scratch;
use prometheus_support::Monitoring;
use support::{TestDb, jobctl, run, signal, spawn, wait_until};

/// `metric{job="climate_jobs",cronjob="canary",extra}`.
fn canary(metric: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!("{metric}{{job=\"climate_jobs\",cronjob=\"canary\"{sep}{extra}}}")
}

fn epoch(db: &TestDb, query: &str) -> f64 {
    db.scalar(query).parse().expect("an epoch")
}

fn canary_run(db: &TestDb, gateway: &str, textfile: &std::path::Path) -> std::process::Command {
    let mut c = jobctl(&db.url);
    c.args(["canary", "--tasks", "4", "--task-duration", "10ms"])
        .env("PUSHGATEWAY_URL", gateway)
        .env("CLIMATE_JOBS_METRICS_TEXTFILE", textfile)
        .env("CLIMATE_JOBS_SCHEDULE", "*/30 * * * *");
    c
}

#[test]
fn a_succeeding_and_a_failing_run_reach_prometheus_with_their_values() {
    let mon = Monitoring::start();
    let db = TestDb::migrated("monitoring_runs");
    let textfile = scratch("monitoring-textfile");

    // 1. A succeeding run.
    let ok = run(canary_run(&db, &mon.pushgateway, &textfile));
    assert_eq!(ok.code, 0, "{}", ok.all_output());
    let summary = ok.summary();
    mon.wait_value(
        &canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"succeeded\"",
        ),
        |v| v > 0.0,
    );
    let success_at = epoch(
        &db,
        "SELECT extract(epoch FROM finished_at)::float8 FROM job_runs WHERE job = 'canary' AND status = 'succeeded'",
    );
    let got = mon.wait_value(
        &canary("climate_job_last_success_timestamp_seconds", ""),
        |_| true,
    );
    assert!(
        (got - success_at).abs() < 0.001,
        "last success {got} vs ledger {success_at}"
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_last_exit_code", ""), |_| true),
        0.0
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_last_tasks", "state=\"done\""), |_| {
            true
        }),
        4.0
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_last_tasks", "state=\"total\""), |_| {
            true
        }),
        4.0
    );
    assert_eq!(
        mon.wait_value(
            &canary("climate_job_last_tasks", "state=\"failed\""),
            |_| true
        ),
        0.0
    );
    let duration = mon.wait_value(&canary("climate_job_last_duration_seconds", ""), |_| true);
    assert_eq!(duration, summary["duration_ms"].as_f64().unwrap() / 1000.0);
    let rss = mon.wait_value(&canary("climate_job_last_peak_rss_bytes", ""), |_| true);
    assert_eq!(rss, summary["peak_rss_kb"].as_f64().unwrap() * 1024.0);
    assert_eq!(
        mon.wait_value(
            &canary("climate_job_dead_letters", "status=\"pending\""),
            |_| true
        ),
        0.0
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_db_connection_errors", ""), |_| true),
        0.0
    );
    let info = mon.query(&canary("climate_job_info", ""));
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0]["metric"]["schedule"], "*/30 * * * *");
    assert_eq!(info[0]["metric"]["timeout_seconds"], "3600");
    assert_eq!(info[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    // The grouping key carries no instance: every pod of a CronJob is one series.
    assert!(info[0]["metric"].get("instance").is_none(), "{info:?}");

    // The textfile: same metrics, a cronjob label, valid exposition.
    let text =
        std::fs::read_to_string(textfile.join("climate_jobs_canary.prom")).expect("textfile");
    assert!(
        text.contains(
            "climate_job_last_run_timestamp_seconds{cronjob=\"canary\",status=\"succeeded\"}"
        ),
        "{text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&textfile)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the renamed file is left: {leftovers:?}"
    );
    let lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(textfile.join("climate_jobs_canary.prom")).unwrap())
        .output()
        .expect("promtool check metrics");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    // 2. A failing run (one chunk fails: partial, exit 3).
    let mut failing = canary_run(&db, &mon.pushgateway, &textfile);
    failing.env("CLIMATE_JOBS_FAULT", "fail-task=1");
    let bad = run(failing);
    assert_eq!(bad.code, 3, "{}", bad.all_output());
    mon.wait_value(
        &canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"partial\"",
        ),
        |v| v > 0.0,
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_last_exit_code", ""), |v| v == 3.0),
        3.0
    );
    assert_eq!(
        mon.wait_value(
            &canary("climate_job_last_tasks", "state=\"failed\""),
            |_| true
        ),
        1.0
    );
    assert_eq!(
        mon.wait_value(
            &canary("climate_job_dead_letters", "status=\"pending\""),
            |_| true
        ),
        1.0
    );
    // The success is still the first run's: only successes move it.
    let still = mon.wait_value(
        &canary("climate_job_last_success_timestamp_seconds", ""),
        |_| true,
    );
    assert!(
        (still - success_at).abs() < 0.001,
        "{still} vs {success_at}"
    );
    // The group was replaced: no succeeded series left beside the partial one.
    assert!(wait_until(Duration::from_secs(10), || mon
        .query(&canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"succeeded\""
        ))
        .is_empty()));

    // 3. A run that cannot reach the database (exit 69): it cannot read the
    // ledger, so it replaces only the metrics it carries; the last success stays.
    let mut down = canary_run(&db, &mon.pushgateway, &textfile);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    down.env(
        "DATABASE_URL",
        format!("postgres://postgres@127.0.0.1:{closed}/nothing"),
    )
    .env("CLIMATE_JOBS_CONNECT_TIMEOUT", "1s");
    let unavailable = run(down);
    assert_eq!(unavailable.code, 69, "{}", unavailable.all_output());
    mon.wait_value(
        &canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"failed\"",
        ),
        |v| v > 0.0,
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_last_exit_code", ""), |v| v == 69.0),
        69.0
    );
    assert_eq!(
        mon.wait_value(&canary("climate_job_db_connection_errors", ""), |_| true),
        1.0
    );
    let kept = mon.wait_value(
        &canary("climate_job_last_success_timestamp_seconds", ""),
        |_| true,
    );
    assert!((kept - success_at).abs() < 0.001, "{kept} vs {success_at}");
    // The textfile likewise keeps what this run could not read.
    let text =
        std::fs::read_to_string(textfile.join("climate_jobs_canary.prom")).expect("textfile");
    assert!(
        text.contains("climate_job_last_exit_code{cronjob=\"canary\"} 69\n"),
        "{text}"
    );
    assert!(
        text.contains("climate_job_last_success_timestamp_seconds{cronjob=\"canary\"}"),
        "{text}"
    );
}

#[test]
fn a_push_to_a_dead_gateway_is_logged_and_changes_nothing() {
    let db = TestDb::migrated("monitoring_dead_gateway");
    // A listener that accepts and never answers: the push must give up.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut c = jobctl(&db.url);
    c.args([
        "canary",
        "--tasks",
        "2",
        "--task-duration",
        "10ms",
        "--grace",
        "2s",
    ])
    .env("PUSHGATEWAY_URL", &url);
    let out = run(c);
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        out.stderr.contains("metrics push (run ended) failed"),
        "{}",
        out.stderr
    );
    assert_eq!(out.summary()["status"], "succeeded");
    drop(silent);
}

#[test]
fn a_sigkilled_run_is_published_abandoned_by_jobctl_metrics_push() {
    let mon = Monitoring::start();
    let db = TestDb::migrated("monitoring_abandoned");
    let mut c = jobctl(&db.url);
    c.args([
        "canary",
        "--tasks",
        "500",
        "--task-duration",
        "1s",
        "--concurrency",
        "1",
    ])
    .env("PUSHGATEWAY_URL", &mon.pushgateway)
    .env("CLIMATE_JOBS_HEARTBEAT", "200ms");
    let (child, _) = spawn(c);
    // The run announced itself: what ClimateJobStuck watches.
    mon.wait_value(
        &canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"running\"",
        ),
        |v| v > 0.0,
    );
    signal(&child, libc::SIGKILL);
    let mut child = child;
    let _ = child.wait();
    assert!(
        wait_until(Duration::from_secs(20), || {
            db.count(
            "SELECT count(*) FROM job_runs WHERE status = 'running' AND heartbeat_at < now() - interval '1 second'"
        ) == 1
        }),
        "the killed run's heartbeat should go stale"
    );
    // Still "running" in Prometheus: nobody told it otherwise.
    assert_eq!(
        mon.query(&canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"running\""
        ))
        .len(),
        1
    );

    let mut push = jobctl(&db.url);
    push.args([
        "metrics",
        "push",
        "--job",
        "canary",
        "--stale-after",
        "1s",
        "--pushgateway-url",
        &mon.pushgateway,
    ]);
    let out = run(push);
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        out.stdout
            .contains("canary: published (last run abandoned)"),
        "{}",
        out.stdout
    );
    assert_eq!(db.scalar("SELECT status FROM job_runs"), "abandoned");
    mon.wait_value(
        &canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"abandoned\"",
        ),
        |v| v > 0.0,
    );
    assert!(wait_until(Duration::from_secs(10), || mon
        .query(&canary(
            "climate_job_last_run_timestamp_seconds",
            "status=\"running\""
        ))
        .is_empty()));
    // An abandoned run has no exit code: none is published, not a stale one.
    assert!(
        mon.query(&canary("climate_job_last_exit_code", ""))
            .is_empty()
    );

    // Flags that match nothing are errors.
    let mut unknown = jobctl(&db.url);
    unknown.args([
        "metrics",
        "push",
        "--job",
        "no-such-job",
        "--pushgateway-url",
        &mon.pushgateway,
    ]);
    let out = run(unknown);
    assert_eq!(out.code, 2, "{}", out.all_output());
    assert!(out.stderr.contains("no-such-job"), "{}", out.stderr);
    let mut nowhere = jobctl(&db.url);
    nowhere
        .args(["metrics", "push"])
        .env_remove("PUSHGATEWAY_URL");
    assert_eq!(run(nowhere).code, 2);
}

/// Grafana's variables and macros as the dashboard test substitutes them.
fn substitute(s: &str) -> String {
    s.replace("${cronjob:regex}", ".*")
        .replace("$cronjob", ".*")
        .replace(
            "$__timeFilter(started_at)",
            "started_at > now() - interval '1 day'",
        )
}

#[test]
fn every_dashboard_expression_returns_data_from_prometheus() {
    let mon = Monitoring::start();
    let db = TestDb::migrated("monitoring_dashboard");
    // Data for the data-age panel: a real import bumps regions' version.
    let dir = scratch("monitoring-dashboard");
    std::fs::write(
        dir.join("regions.csv"),
        "code,name,lat,lon\nKR-11,Seoul,37.57,126.98\n",
    )
    .unwrap();
    let imported = run({
        let mut c = jobctl(&db.url);
        c.args(["regions", "import"]).arg(dir.join("regions.csv"));
        c
    });
    assert_eq!(imported.code, 0, "{}", imported.all_output());
    let ok = run(canary_run(&db, &mon.pushgateway, &dir));
    assert_eq!(ok.code, 0, "{}", ok.all_output());
    let jobs_yaml = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs.yaml");
    let push = run({
        let mut c = jobctl(&db.url);
        c.args([
            "metrics",
            "push",
            "--file",
            jobs_yaml,
            "--pushgateway-url",
            &mon.pushgateway,
        ]);
        c
    });
    assert_eq!(push.code, 0, "{}", push.all_output());
    mon.wait_value(&canary("climate_job_memory_limit_bytes", ""), |v| {
        v == 512.0 * 1024.0 * 1024.0
    });

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/climate-jobs.json"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut promql = 0;
    let mut sql = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().expect("targets") {
            if let Some(expr) = target["expr"].as_str() {
                let expr = substitute(expr);
                let found = wait_until(Duration::from_secs(15), || !mon.query(&expr).is_empty());
                assert!(found, "panel {title:?}: {expr} returned no data");
                promql += 1;
            }
            if let Some(raw) = target["rawSql"].as_str() {
                let rows = db.rows(&substitute(raw));
                assert!(
                    !rows.is_empty(),
                    "panel {title:?}: its SQL returned no rows"
                );
                sql += 1;
            }
        }
    }
    // The variable's query too.
    let var = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "cronjob")
        .expect("cronjob variable");
    assert_eq!(var["definition"], "label_values(climate_job_info, cronjob)");
    let jobs_yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs.yaml"))
        .expect("jobs.yaml");
    let jobs = climate_jobs::manifest::parse(&jobs_yaml).expect("jobs.yaml parses");
    assert_eq!(
        mon.query("group by (cronjob) (climate_job_info)").len(),
        jobs.jobs.len()
    );
    assert!(promql >= 12 && sql == 1, "{promql} PromQL, {sql} SQL");
}
