//! Jobs tell people: a failing run then a succeeding one send one trigger
//! and one resolve to each receiver (Slack, Teams, PagerDuty, Alertmanager
//! webhook) in its documented shape, also across retries and three
//! replicas; check-in pings carry the right path and rid; a receiver that
//! never answers delays the exit by at most 5 s. Receivers are real HTTP
//! servers (tests/it/support/receiver.rs); the jobs are the real `jobctl
//! canary` processes.

use crate::support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::receiver::{Receiver, Request};
use support::{Finished, TestDb, jobctl, run, spawn, wait};

const RECEIVERS: [&str; 4] = ["/slack", "/teams", "/pd", "/webhook"];

/// CLIMATE_JOBS_NOTIFY for every receiver at `alerts` and check-ins at `hc`.
fn settings(alerts: &Receiver, replicas: u16) -> String {
    json!({
        "replicas": replicas,
        "notify": {
            "environment": "test",
            "remind_every": "1h",
            "slack": {"url_from": "SLACK_URL"},
            "teams": {"url_from": "TEAMS_URL"},
            "pagerduty": {"routing_key_from": "PD_KEY", "url": alerts.url("/pd")},
            "webhook": {"url_from": "AM_URL"},
        },
        "heartbeat": {"url_from": "HC_URL"},
    })
    .to_string()
}

fn canary(db: &TestDb, alerts: &Receiver, hc: &Receiver, replicas: u16, args: &[&str]) -> Command {
    let mut c = jobctl(&db.url);
    c.env("CLIMATE_JOBS_NOTIFY", settings(alerts, replicas))
        .env("SLACK_URL", alerts.url("/slack/T0/B0/secret"))
        .env("TEAMS_URL", alerts.url("/teams/workflow"))
        .env("PD_KEY", "routing-key-0123")
        .env("AM_URL", alerts.url("/webhook"))
        .env("HC_URL", hc.url("/hc/5a0d7c1e-check/"))
        .env("HOSTNAME", "test-host")
        .arg("canary")
        .args(args);
    if !args.contains(&"--task-duration") {
        c.args(["--task-duration", "1ms"]);
    }
    c
}

fn failing(mut c: Command) -> Command {
    c.env("CLIMATE_JOBS_FAULT", "fail-task=1");
    c
}

fn ok(done: &Finished, code: i32) {
    assert_eq!(done.code, code, "{}", done.all_output());
}

fn assert_trigger_shapes(alerts: &Receiver, status: &str, exit: i64) {
    let slack = &alerts.to("/slack")[0];
    assert_eq!(slack.method, "POST");
    assert_eq!(slack.content_type.as_deref(), Some("application/json"));
    let s = slack.json();
    let text = s["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "climate-jobs/test/canary failed: {status} (exit {exit})"
        )),
        "{s}"
    );
    assert_eq!(s["blocks"][0]["type"], "section");
    assert_eq!(s["blocks"][0]["text"]["type"], "mrkdwn");

    let t = alerts.to("/teams")[0].json();
    assert_eq!(t["type"], "message");
    let att = &t["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(
        att["content"]["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(att["content"]["body"][0]["type"], "TextBlock");
    assert!(
        att["content"]["body"][0]["text"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{t}"
    );

    let p = alerts.to("/pd")[0].json();
    assert_eq!(p["routing_key"], "routing-key-0123");
    assert_eq!(p["event_action"], "trigger");
    assert_eq!(p["dedup_key"], "climate-jobs/test/canary");
    assert_eq!(
        p["payload"]["severity"],
        if exit == 3 { "warning" } else { "error" }
    );
    assert_eq!(p["payload"]["source"], "test-host");
    assert_eq!(p["payload"]["component"], "canary");
    assert!(
        p["payload"]["summary"].as_str().unwrap().contains(status),
        "{p}"
    );
    assert!(
        p["payload"]["timestamp"].as_str().unwrap().ends_with('Z'),
        "{p}"
    );

    let w = alerts.to("/webhook")[0].json();
    assert_eq!(w["version"], "4");
    assert_eq!(w["status"], "firing");
    assert_eq!(w["truncatedAlerts"], 0);
    assert!(w["groupKey"].as_str().unwrap().contains("canary"), "{w}");
    let a = &w["alerts"][0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["alertname"], "ClimateJobFailed");
    assert_eq!(a["labels"]["job"], "canary");
    assert_eq!(a["labels"]["environment"], "test");
    assert!(a["annotations"]["summary"].is_string(), "{w}");
    assert!(a["startsAt"].as_str().unwrap().ends_with('Z'), "{w}");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
}

fn assert_resolve_shapes(alerts: &Receiver) {
    let s = alerts.to("/slack")[1].json();
    assert!(
        s["text"]
            .as_str()
            .unwrap()
            .contains("climate-jobs/test/canary recovered: succeeded"),
        "{s}"
    );
    let t = alerts.to("/teams")[1].json();
    assert!(
        t["attachments"][0]["content"]["body"][0]["text"]
            .as_str()
            .unwrap()
            .contains("recovered"),
        "{t}"
    );
    let p = alerts.to("/pd")[1].json();
    assert_eq!(
        p,
        json!({"routing_key": "routing-key-0123", "event_action": "resolve", "dedup_key": "climate-jobs/test/canary"})
    );
    let fired = alerts.to("/webhook")[0].json();
    let w = alerts.to("/webhook")[1].json();
    assert_eq!(w["status"], "resolved");
    let (a, f) = (&w["alerts"][0], &fired["alerts"][0]);
    assert_eq!(a["status"], "resolved");
    assert_ne!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        a["startsAt"], f["startsAt"],
        "resolved alert keeps its start"
    );
    assert_eq!(a["fingerprint"], f["fingerprint"]);
}

/// Exactly `n` messages to each receiver.
fn assert_counts(alerts: &Receiver, n: usize) {
    for r in RECEIVERS {
        let got: Vec<String> = alerts
            .to(r)
            .iter()
            .map(|q| String::from_utf8_lossy(&q.body).into_owned())
            .collect();
        assert_eq!(got.len(), n, "{r}: {got:#?}");
    }
}

#[test]
fn a_failure_then_a_recovery_send_one_trigger_and_one_resolve_across_retries() {
    let db = TestDb::migrated("notify_lone");
    let (alerts, hc) = (Receiver::answering(), Receiver::answering());
    let args = ["--tasks", "4"];
    // The first attempt fails, the scheduler retries it, it fails again.
    let first = run(failing(canary(&db, &alerts, &hc, 1, &args)));
    ok(&first, 3);
    assert_counts(&alerts, 1);
    assert_trigger_shapes(&alerts, "partial", 3);
    let retry = run(failing(canary(&db, &alerts, &hc, 1, &args)));
    ok(&retry, 3);
    assert_counts(&alerts, 1);
    // Recovery, then another good run: one resolve, nothing more.
    let recovered = run(canary(&db, &alerts, &hc, 1, &args));
    ok(&recovered, 0);
    for done in [&first, &retry, &recovered] {
        let warned = done
            .stderr
            .lines()
            .any(|l| l.contains("\"WARN\"") && l.contains("notify:"));
        assert!(!warned, "{}", done.stderr);
    }
    assert_counts(&alerts, 2);
    assert_resolve_shapes(&alerts);
    ok(&run(canary(&db, &alerts, &hc, 1, &args)), 0);
    assert_counts(&alerts, 2);
    assert_eq!(
        db.count("SELECT count(*) FROM notify_alerts WHERE state = 'ok' AND sends = 2 AND last_error IS NULL"),
        4
    );
}

#[test]
fn a_job_still_failing_is_reminded_once_remind_every_has_passed() {
    let db = TestDb::migrated("notify_remind");
    let (alerts, hc) = (Receiver::answering(), Receiver::answering());
    let args = ["--tasks", "2"];
    ok(&run(failing(canary(&db, &alerts, &hc, 1, &args))), 3);
    ok(&run(failing(canary(&db, &alerts, &hc, 1, &args))), 3);
    assert_counts(&alerts, 1);
    // remind_every is 1h: pretend the trigger went out two hours ago.
    db.rows("UPDATE notify_alerts SET last_sent_at = now() - interval '2 hours', firing_since = firing_since - interval '2 hours'");
    ok(&run(failing(canary(&db, &alerts, &hc, 1, &args))), 3);
    assert_counts(&alerts, 2);
    let s = alerts.to("/slack")[1].json();
    assert!(
        s["text"]
            .as_str()
            .unwrap()
            .contains("climate-jobs/test/canary still failing since"),
        "{s}"
    );
    let p = alerts.to("/pd")[1].json();
    assert_eq!(p["event_action"], "trigger");
    assert_eq!(
        p["dedup_key"], "climate-jobs/test/canary",
        "the same incident"
    );
    let (first, again) = (
        alerts.to("/webhook")[0].json(),
        alerts.to("/webhook")[1].json(),
    );
    assert_eq!(again["status"], "firing");
    assert!(
        again["alerts"][0]["startsAt"].as_str() < first["alerts"][0]["startsAt"].as_str(),
        "a reminder keeps when the failure began (moved back two hours here): {again}"
    );
    ok(&run(failing(canary(&db, &alerts, &hc, 1, &args))), 3);
    assert_counts(&alerts, 2);
}

#[test]
fn a_run_found_abandoned_triggers_and_the_run_that_found_it_resolves() {
    let db = TestDb::migrated("notify_abandoned");
    let (alerts, hc) = (Receiver::answering(), Receiver::answering());
    let (victim, started) = spawn(canary(
        &db,
        &alerts,
        &hc,
        1,
        &[
            "--tasks",
            "1000",
            "--task-duration",
            "50ms",
            "--concurrency",
            "2",
        ],
    ));
    assert!(support::wait_until(Duration::from_secs(10), || {
        db.count("SELECT count(*) FROM job_runs WHERE status = 'running'") == 1
    }));
    support::signal(&victim, libc::SIGKILL);
    let _ = wait(victim, started);
    let dead = db.scalar("SELECT run_id::text FROM job_runs");
    assert_counts(&alerts, 0);

    let next = run(canary(&db, &alerts, &hc, 1, &["--tasks", "2"]));
    ok(&next, 0);
    assert_eq!(
        db.scalar(&format!(
            "SELECT status FROM job_runs WHERE run_id = '{dead}'"
        )),
        "abandoned"
    );
    assert_counts(&alerts, 2);
    let p = alerts.to("/pd")[0].json();
    assert_eq!(p["event_action"], "trigger");
    assert_eq!(p["payload"]["class"], "abandoned");
    assert_eq!(
        p["payload"]["custom_details"]["run_id"],
        dead.as_str(),
        "names the dead run"
    );
    assert_eq!(alerts.to("/pd")[1].json()["event_action"], "resolve");
    let w = alerts.to("/webhook")[0].json();
    assert_eq!(w["alerts"][0]["annotations"]["status"], "abandoned");
}

#[test]
fn three_replicas_send_one_trigger_one_resolve_and_one_check_in_per_run() {
    let db = TestDb::migrated("notify_replicas");
    let (alerts, hc) = (Receiver::answering(), Receiver::answering());
    let replicas = |execution: &str, fail: bool| -> Vec<Finished> {
        let args = [
            "--tasks",
            "12",
            "--task-duration",
            "30ms",
            "--concurrency",
            "2",
            "--execution",
            execution,
        ];
        let children: Vec<_> = (0..3)
            .map(|_| {
                let c = canary(&db, &alerts, &hc, 3, &args);
                spawn(if fail { failing(c) } else { c })
            })
            .collect();
        children.into_iter().map(|(c, t)| wait(c, t)).collect()
    };
    let failed = replicas("exec-fail", true);
    let codes: Vec<i32> = failed.iter().map(|d| d.code).collect();
    assert!(
        codes.contains(&3),
        "the replica that ran chunk 1 is partial: {codes:?}"
    );
    assert_counts(&alerts, 1);
    assert_trigger_shapes(&alerts, "partial", 3);
    let pings = hc.requests();
    assert_eq!(pings.len(), 2, "one start and one end: {pings:#?}");
    let rid = pings[0].query("rid").expect("rid");
    assert_eq!(pings[0].path(), "/hc/5a0d7c1e-check/start");
    assert_eq!(
        pings[1].path(),
        "/hc/5a0d7c1e-check/3",
        "the run's worst exit code"
    );
    assert_eq!(pings[1].query("rid").as_deref(), Some(rid.as_str()));
    let run_ids: Vec<String> = failed
        .iter()
        .map(|d| d.summary()["run_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        run_ids.contains(&rid),
        "rid {rid} is one replica's run id: {run_ids:?}"
    );

    for d in replicas("exec-ok", false) {
        ok(&d, 0);
    }
    assert_counts(&alerts, 2);
    assert_resolve_shapes(&alerts);
    let pings = hc.requests();
    assert_eq!(pings.len(), 4, "{pings:#?}");
    assert_eq!(pings[2].path(), "/hc/5a0d7c1e-check/start");
    assert_eq!(
        pings[3].path(),
        "/hc/5a0d7c1e-check",
        "exit 0: the bare URL"
    );
    assert_eq!(pings[3].query("rid"), pings[2].query("rid"));
}

/// A ping's body: the run's summary line (written just before the process
/// prints it, so its duration and memory may be a few ms behind).
fn summary_of(req: &Request) -> Value {
    let mut v = req.json();
    for k in ["duration_ms", "peak_rss_kb"] {
        v.as_object_mut().map(|o| o.remove(k));
    }
    v
}

fn without_timings(mut v: Value) -> Value {
    for k in ["duration_ms", "peak_rss_kb"] {
        v.as_object_mut().map(|o| o.remove(k));
    }
    v
}

#[test]
fn check_ins_carry_path_and_rid_for_success_failure_deadline_and_skip() {
    let db = TestDb::migrated("notify_checkins");
    let (alerts, hc) = (Receiver::answering(), Receiver::answering());
    let base = "/hc/5a0d7c1e-check";

    let success = run(canary(&db, &alerts, &hc, 1, &["--tasks", "2"]));
    ok(&success, 0);
    let rid = success.summary()["run_id"].as_str().unwrap().to_string();
    let pings = hc.requests();
    assert_eq!(pings.len(), 2, "{pings:#?}");
    assert_eq!(
        (pings[0].method.as_str(), pings[0].path()),
        ("POST", format!("{base}/start").as_str())
    );
    assert_eq!(pings[0].query("rid").as_deref(), Some(rid.as_str()));
    assert_eq!(pings[1].path(), base);
    assert_eq!(pings[1].query("rid").as_deref(), Some(rid.as_str()));
    assert_eq!(
        summary_of(&pings[1]),
        without_timings(success.summary()),
        "the body is the summary line"
    );

    let failure = run(failing(canary(&db, &alerts, &hc, 1, &["--tasks", "3"])));
    ok(&failure, 3);
    let rid = failure.summary()["run_id"].as_str().unwrap().to_string();
    let pings = hc.requests();
    assert_eq!(pings.len(), 4);
    assert_eq!(pings[2].path(), format!("{base}/start"));
    assert_eq!(pings[3].path(), format!("{base}/3"));
    assert_eq!(pings[3].query("rid").as_deref(), Some(rid.as_str()));
    assert_eq!(summary_of(&pings[3])["status"], "partial");

    let mut late = canary(
        &db,
        &alerts,
        &hc,
        1,
        &[
            "--tasks",
            "1",
            "--timeout",
            "2s",
            "--task-timeout",
            "1m",
            "--grace",
            "6s",
        ],
    );
    late.env("CLIMATE_JOBS_FAULT", "hang-task=0");
    let deadline = run(late);
    ok(&deadline, 124);
    let rid = deadline.summary()["run_id"].as_str().unwrap().to_string();
    let pings = hc.requests();
    assert_eq!(pings.len(), 6);
    assert_eq!(pings[5].path(), format!("{base}/124"));
    assert_eq!(pings[5].query("rid").as_deref(), Some(rid.as_str()));
    assert_eq!(summary_of(&pings[5])["status"], "timed_out");

    // Skipped: another run holds the lock.
    let (holder, holder_started) = spawn(canary(
        &db,
        &alerts,
        &hc,
        1,
        &[
            "--tasks",
            "40",
            "--task-duration",
            "100ms",
            "--concurrency",
            "1",
        ],
    ));
    assert!(support::wait_until(Duration::from_secs(10), || {
        db.count("SELECT count(*) FROM job_runs WHERE status = 'running'") == 1
    }));
    let skipped = run(canary(&db, &alerts, &hc, 1, &["--tasks", "1"]));
    ok(&skipped, 0);
    assert_eq!(skipped.summary()["status"], "skipped");
    let rid = skipped.summary()["run_id"].as_str().unwrap().to_string();
    let log: Vec<Request> = hc.to(&format!("{base}/log"));
    assert_eq!(log.len(), 1, "{:#?}", hc.requests());
    assert_eq!(log[0].query("rid").as_deref(), Some(rid.as_str()));
    assert_eq!(summary_of(&log[0])["status"], "skipped");
    ok(&wait(holder, holder_started), 0);
    // The holder's start and end, nothing else from the skipped run.
    assert_eq!(hc.requests().len(), 6 + 1 + 2);
}

#[test]
fn a_receiver_that_never_answers_delays_the_exit_at_most_5s_and_the_next_run_retries() {
    let db = TestDb::migrated("notify_silent");
    let (alerts, hc, silent) = (
        Receiver::answering(),
        Receiver::answering(),
        Receiver::silent(),
    );
    let args = ["--tasks", "2"];
    // Baseline: the same failing run of another job name's state, answered.
    let baseline = run(failing(canary(&db, &alerts, &hc, 1, &args)));
    ok(&baseline, 3);
    db.rows("DELETE FROM notify_alerts");

    let stuck = run(failing(canary(&db, &silent, &silent, 1, &args)));
    ok(&stuck, 3);
    assert!(
        silent.wait_for(5, Duration::from_secs(1)),
        "start ping and four alerts reached the silent receiver: {:#?}",
        silent.requests()
    );
    let delay = stuck.elapsed.saturating_sub(baseline.elapsed);
    eprintln!(
        "silent receiver: run {:?}, answered baseline {:?}, delay {delay:?}",
        stuck.elapsed, baseline.elapsed
    );
    assert!(
        delay <= Duration::from_millis(5500),
        "exit delayed {delay:?} by a receiver that never answers (run {:?}, baseline {:?})",
        stuck.elapsed,
        baseline.elapsed
    );
    assert!(
        stuck.stderr.contains("ran out of time") || stuck.stderr.contains("not sent"),
        "{}",
        stuck.stderr
    );
    assert_eq!(
        db.count("SELECT count(*) FROM notify_alerts WHERE state = 'ok' AND claimed_by IS NULL"),
        4,
        "nothing counted as sent"
    );

    // The next (still failing) run delivers what the last one could not.
    let before = alerts.requests().len();
    ok(&run(failing(canary(&db, &alerts, &hc, 1, &args))), 3);
    let sent = alerts.requests().len() - before;
    assert_eq!(sent, 4, "{:#?}", alerts.requests());
    assert_eq!(
        db.count("SELECT count(*) FROM notify_alerts WHERE state = 'firing'"),
        4
    );
}

#[test]
fn a_missing_secret_variable_is_a_configuration_error() {
    let db = TestDb::migrated("notify_config");
    let (alerts, hc) = (Receiver::answering(), Receiver::answering());
    let mut c = canary(&db, &alerts, &hc, 1, &["--tasks", "1"]);
    c.env_remove("PD_KEY");
    let done = run(c);
    ok(&done, 2);
    assert!(done.stderr.contains("PD_KEY"), "{}", done.stderr);
    assert!(alerts.requests().is_empty() && hc.requests().is_empty());
}

const JOBS: &str = "jobs:
  canary:
    binary: jobctl
    schedule: \"*/30 * * * *\"
    timeout: 2m
    task_timeout: 10s
    grace: 10s
    replicas: 2
    secrets:
      DATABASE_URL: {secret: climate-jobs, key: database-url}
      SLACK_WEBHOOK_URL: {secret: climate-jobs, key: slack-webhook}
      PAGERDUTY_ROUTING_KEY: {secret: climate-jobs, key: pagerduty-key}
      HEALTHCHECKS_URL: {secret: climate-jobs, key: healthchecks-url}
    notify:
      environment: staging
      remind_every: 6h
      slack: {url_from: SLACK_WEBHOOK_URL}
      pagerduty: {routing_key_from: PAGERDUTY_ROUTING_KEY}
    heartbeat: {url_from: HEALTHCHECKS_URL}
";

fn jobs_file(text: &str, tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("cj-notify-{tag}-{}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_notify_and_heartbeat_and_render_passes_them_to_the_container() {
    let path = jobs_file(JOBS, "good");
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args(["check", "--file"]).arg(&path);
    ok(&run(c), 0);
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args(["render", "k8s", "--image", "x/y:1", "--file"])
        .arg(&path);
    let done = run(c);
    ok(&done, 0);
    let line = done
        .stdout
        .lines()
        .skip_while(|l| !l.contains("name: CLIMATE_JOBS_NOTIFY"))
        .nth(1)
        .unwrap_or_else(|| panic!("no CLIMATE_JOBS_NOTIFY in\n{}", done.stdout));
    let value = line.trim().trim_start_matches("value:").trim();
    let value: String = serde_json::from_str(value)
        .or_else(|_| Ok::<_, ()>(value.trim_matches('\'').to_string()))
        .unwrap();
    let settings: Value = serde_json::from_str(&value).unwrap_or_else(|e| panic!("{e}: {value}"));
    assert_eq!(settings["replicas"], 2);
    assert_eq!(settings["notify"]["slack"]["url_from"], "SLACK_WEBHOOK_URL");
    assert_eq!(settings["notify"]["remind_every"], "6h");
    assert_eq!(settings["heartbeat"]["url_from"], "HEALTHCHECKS_URL");
    assert!(
        done.stdout.contains("key: slack-webhook"),
        "the URL itself comes from the Secret"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn check_rejects_a_receiver_whose_variable_is_not_a_secret() {
    let text = JOBS
        .replace(
            "      SLACK_WEBHOOK_URL: {secret: climate-jobs, key: slack-webhook}\n",
            "",
        )
        .replace(
            "heartbeat: {url_from: HEALTHCHECKS_URL}",
            "heartbeat: {url: https://hc-ping.com/x}",
        );
    let path = jobs_file(&text, "bad");
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.args(["check", "--file"]).arg(&path);
    let done = run(c);
    ok(&done, 2);
    assert!(
        done.stderr.contains("job `canary`, field `notify.slack.url_from`: \"SLACK_WEBHOOK_URL\" is not in this job's `secrets:`"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("field `heartbeat`: unknown field `url`"),
        "{}",
        done.stderr
    );
    std::fs::remove_file(&path).ok();
}
