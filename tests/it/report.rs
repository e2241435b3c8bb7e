//! `jobctl report` on a ledger of 250 runs over 5 jobs (rows inserted
//! directly): the page is self-contained, draws every run, and headless
//! Chromium (Debian's `chromium`) renders it into a DOM with the SVG
//! charts in it.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{TestDb, jobctl, run};

/// 50 runs per job over the last 6 days, in bench/report/seed.sql (the
/// benchmark loads the same rows).
pub fn seed_ledger(db: &TestDb) {
    db.rows(include_str!("../../bench/report/seed.sql"));
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", std::process::id()))
}

fn report(db: &TestDb, out: &Path, extra: &[&str]) -> support::Finished {
    let mut c = jobctl(&db.url);
    c.arg("report")
        .arg("--out")
        .arg(out)
        .args([
            "--jobs-file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/jobs.yaml"),
        ])
        .args(extra);
    run(c)
}

/// Headless Chromium as the brief runs it: no sandbox (root), no GPU, no
/// network side traffic, a fresh profile.
pub fn chromium(profile: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn report_draws_every_run_of_250_and_chromium_renders_it() {
    let db = TestDb::migrated("report_page");
    seed_ledger(&db);
    assert_eq!(db.count("SELECT count(*) FROM job_runs"), 250);
    let out = tmp("report.html");
    let done = report(&db, &out, &["--days", "7"]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert!(
        done.stdout.contains("250 run(s) of 5 job(s)"),
        "{}",
        done.stdout
    );

    let page = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        page.matches("<rect class=\"run ").count(),
        250,
        "one bar per run"
    );
    for status in [
        "succeeded",
        "partial",
        "failed",
        "timed_out",
        "skipped",
        "abandoned",
    ] {
        assert!(
            page.contains(&format!("<rect class=\"run {status}\"")),
            "{status}"
        );
    }
    // Duration panels: one per job, a timeout line for each (jobs.yaml has all five).
    assert_eq!(page.matches("<svg class=\"durations\"").count(), 5);
    assert_eq!(page.matches("class=\"timeout\"").count(), 5);
    // Dead letters: 2 per partial run, all within the window.
    let partial = db.count("SELECT count(*) FROM job_runs WHERE status = 'partial'");
    let bars: i64 = page
        .split("<rect class=\"dead-letters\"")
        .skip(1)
        .filter_map(|s| {
            s.split("<title>")
                .nth(1)?
                .split(':')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<i64>()
                .ok()
        })
        .sum();
    assert_eq!(bars, 2 * partial, "dead letters per day add up");
    // Self-contained: nothing fetched from anywhere.
    for needle in ["src=", "href=", "<script", "@import", "url("] {
        assert!(
            !page.contains(needle),
            "page refers to something external: {needle}"
        );
    }

    // Chromium renders it: the DOM it built holds the charts.
    let profile = tmp("chromium-profile");
    let rendered = chromium(&profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", out.display()))
        .output()
        .expect("running chromium (scripts/ensure-deps.sh installs it)");
    let dom = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert_eq!(
        dom.matches("<rect class=\"run ").count(),
        250,
        "chromium's DOM has every run"
    );
    assert_eq!(dom.matches("<svg class=\"durations\"").count(), 5);
    assert!(dom.contains("<svg class=\"timeline\""));
    assert!(dom.contains("<svg class=\"failures\""));
    assert!(dom.contains("<title>climate-jobs: runs of the last 7 day(s)</title>"));

    let png = tmp("report.png");
    let shot = chromium(&profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1400")
        .arg(format!("file://{}", out.display()))
        .output()
        .expect("running chromium");
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 20_000,
        "a drawn page, not a blank one: {} bytes",
        bytes.len()
    );
    std::fs::remove_dir_all(&profile).ok();
}

#[test]
fn a_window_without_runs_and_a_bad_days_flag_exit_2() {
    let db = TestDb::migrated("report_empty");
    let out = tmp("empty.html");
    let done = report(&db, &out, &["--days", "3"]);
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(
        done.stderr.contains("no runs in the last 3 day(s)"),
        "{}",
        done.stderr
    );
    assert!(!out.exists(), "nothing written");
    let done = report(&db, &out, &["--days", "0"]);
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(done.stderr.contains("--days 0"), "{}", done.stderr);
    let mut c = jobctl(&db.url);
    c.args(["report", "--out"])
        .arg(&out)
        .args(["--jobs-file", "/nonexistent/jobs.yaml"]);
    let done = run(c);
    assert_eq!(done.code, 2, "{}", done.all_output());
    assert!(
        done.stderr.contains("/nonexistent/jobs.yaml"),
        "{}",
        done.stderr
    );
}
