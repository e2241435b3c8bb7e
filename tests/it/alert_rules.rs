//! `jobctl render prometheus-rules`: the shipped rule file is what jobs.yaml
//! renders, `promtool check rules` accepts it, the `promtool test rules`
//! unit tests in deploy/prometheus/rules.test.yaml pass (and fail when the
//! thresholds move), and every alert links to a README section that exists.

use std::path::Path;

use crate::deploy_support::{repo, scratch};
use std::process::{Command, Output};

const BASE: &str = "https://git.example/climate-jobs/blob/main/README.md";

fn render(jobs_yaml: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobctl"))
        .args([
            "render",
            "prometheus-rules",
            "--runbook-base",
            BASE,
            "--file",
        ])
        .arg(jobs_yaml)
        .output()
        .expect("running jobctl render prometheus-rules")
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running promtool (Debian's `prometheus`; scripts/ensure-deps.sh installs it)")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn shipped_rules_are_rendered_from_jobs_yaml_and_pass_promtool() {
    let out = render(&repo().join("jobs.yaml"));
    assert!(out.status.success(), "{}", text(&out));
    let shipped = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yaml")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        shipped,
        "deploy/prometheus/rules.yaml is stale: run `jobctl render prometheus-rules --runbook-base {BASE} \
         > deploy/prometheus/rules.yaml` and update rules.test.yaml's thresholds"
    );
    let dir = repo().join("deploy/prometheus");
    let check = promtool(&["check", "rules", "rules.yaml"], &dir);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains(&format!(
            "SUCCESS: {} rules found",
            shipped.matches("  - alert:").count()
        )),
        "{}",
        text(&check)
    );
    let unit = promtool(&["test", "rules", "rules.test.yaml"], &dir);
    assert!(unit.status.success(), "{}", text(&unit));
}

#[test]
fn the_unit_tests_fail_when_a_threshold_moves() {
    // canary every 10 minutes instead of 30: late after 1690 s, not 2890 s.
    let dir = scratch("rules-moved");
    let jobs = std::fs::read_to_string(repo().join("jobs.yaml"))
        .unwrap()
        .replace("schedule: \"*/30 * * * *\"", "schedule: \"*/10 * * * *\"");
    std::fs::write(dir.join("jobs.yaml"), jobs).unwrap();
    let out = render(&dir.join("jobs.yaml"));
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.join("rules.yaml"), &out.stdout).unwrap();
    std::fs::copy(
        repo().join("deploy/prometheus/rules.test.yaml"),
        dir.join("rules.test.yaml"),
    )
    .unwrap();
    assert!(
        promtool(&["check", "rules", "rules.yaml"], &dir)
            .status
            .success()
    );
    let unit = promtool(&["test", "rules", "rules.test.yaml"], &dir);
    assert!(
        !unit.status.success(),
        "the unit tests must notice: {}",
        text(&unit)
    );
    assert!(
        text(&unit).contains("missed schedule turns late"),
        "{}",
        text(&unit)
    );
}

/// GitHub's heading anchor: lower case, spaces to '-', punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_links_to_a_readme_section() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect();
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yaml")).unwrap();
    let mut links = 0;
    for line in rules.lines() {
        if let Some(url) = line.trim().strip_prefix("runbook_url: ") {
            let anchor = url.rsplit_once('#').map(|(_, a)| a).expect("an anchor");
            assert!(
                anchors.iter().any(|a| a == anchor),
                "README has no section #{anchor}"
            );
            links += 1;
        }
    }
    // One link per rule.
    assert_eq!(links, rules.matches("  - alert:").count());
    // Every metric name the README promises is one the code pushes.
    for (name, _) in climate_jobs::metrics::exposition::METRICS {
        assert!(
            readme.contains(&format!("`{name}")),
            "README does not list {name}"
        );
    }
}

#[test]
fn a_bad_runbook_base_or_jobs_file_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_jobctl"))
        .args([
            "render",
            "prometheus-rules",
            "--runbook-base",
            "README.md#x",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--runbook-base"), "{}", text(&out));
    let dir = scratch("rules-bad-freshness");
    let jobs = std::fs::read_to_string(repo().join("jobs.yaml"))
        .unwrap()
        .replace(
            "{table: probability_results, max_age: 35d}",
            "{table: probability_results, max_age: 1h}",
        );
    std::fs::write(dir.join("jobs.yaml"), jobs).unwrap();
    let out = render(&dir.join("jobs.yaml"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("job `probability-batch`, field `freshness.max_age`"),
        "{}",
        text(&out)
    );
}
