//! Where metrics go: a Prometheus Pushgateway (HTTP, bounded) and/or a
//! node_exporter textfile (written beside, renamed into place).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::exposition::JobMetrics;

/// The Pushgateway grouping key's `job` label; `cronjob` names the job.
pub const GROUP_JOB: &str = "climate_jobs";

/// The most a push may take, whatever the grace (the grace bounds it too).
pub const PUSH_BUDGET: Duration = Duration::from_secs(5);

/// Where a job's metrics are published at the end of every run (and by
/// `jobctl metrics push`). The field docs are `--help` text, written for a
/// terminal rather than rustdoc.
#[derive(Debug, Clone, Default, Args)]
#[allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]
pub struct MetricsArgs {
    /// Prometheus Pushgateway to push the run's metrics to, e.g.
    /// http://pushgateway.monitoring:9091. Grouping key job="climate_jobs",
    /// cronjob=<job>. A push takes at most 5 s and a quarter of --grace,
    /// never changes the exit code, and a failed push is logged. Default: no push.
    #[arg(long, env = "PUSHGATEWAY_URL", value_name = "URL")]
    pub pushgateway_url: Option<String>,

    /// Directory of a node_exporter textfile collector: the run's metrics go
    /// to DIR/climate_jobs_<job>.prom, written beside it and renamed into
    /// place. Default: none.
    #[arg(long, env = "CLIMATE_JOBS_METRICS_TEXTFILE", value_name = "DIR")]
    pub metrics_textfile: Option<PathBuf>,
}

/// A job binary's metrics flags: where to publish, and what the process
/// cannot know by itself.
#[derive(Debug, Clone, Default, Args)]
pub struct RunMetricsArgs {
    #[command(flatten)]
    pub publish: MetricsArgs,

    /// The job's cron schedule, only for the schedule label of
    /// climate_job_info (a process does not know its scheduler's settings).
    /// Default: empty.
    #[arg(long, env = "CLIMATE_JOBS_SCHEDULE", value_name = "CRON")]
    pub job_schedule: Option<String>,
}

impl MetricsArgs {
    pub fn enabled(&self) -> bool {
        self.pushgateway_url.is_some() || self.metrics_textfile.is_some()
    }
}

/// How a push treats metrics of the group it does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// PUT: the push is everything known about the job; the rest goes.
    Group,
    /// POST: only the metric names pushed are replaced (a partial push:
    /// a run starting, or one that could not read the ledger).
    Names,
}

/// The group's URL: `<base>/metrics/job/climate_jobs/cronjob/<job>`.
pub fn group_url(base: &str, job: &str) -> Result<String> {
    if job.is_empty()
        || !job
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("job name {job:?} cannot be a Pushgateway grouping label in a URL path");
    }
    let base = base.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--pushgateway-url {base:?}: expected an http:// or https:// URL");
    }
    Ok(format!("{base}/metrics/job/{GROUP_JOB}/cronjob/{job}"))
}

/// Pushes one job's metrics; gives up after `timeout` (the whole request).
pub fn push(base: &str, m: &JobMetrics, replace: Replace, timeout: Duration) -> Result<()> {
    let url = group_url(base, &m.job)?;
    let body = m.to_text(&[]);
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build();
    let agent: ureq::Agent = config.into();
    let request = match replace {
        Replace::Group => agent.put(&url),
        Replace::Names => agent.post(&url),
    };
    let mut response = request
        .header("Content-Type", "text/plain; version=0.0.4")
        .send(body.as_bytes())
        .with_context(|| format!("pushing metrics to {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        bail!("pushing metrics to {url}: HTTP {status}: {}", text.trim());
    }
    Ok(())
}

/// `DIR/climate_jobs_<job>.prom`.
pub fn textfile_path(dir: &Path, job: &str) -> PathBuf {
    dir.join(format!("climate_jobs_{job}.prom"))
}

/// The metric name a line of an exposition belongs to.
fn family_of(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .unwrap_or(line);
    rest.split(['{', ' '])
        .next()
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
}

/// Writes the job's metrics (with a `cronjob` label on every sample) to
/// its textfile atomically: a reader sees the old file or the new one. The
/// temporary name does not end in `.prom`, so the collector never reads it.
/// With [`Replace::Names`] the old file's other metrics are kept, as the
/// Pushgateway keeps them.
pub fn write_textfile(dir: &Path, m: &JobMetrics, replace: Replace) -> Result<PathBuf> {
    let path = textfile_path(dir, &m.job);
    let tmp = dir.join(format!(
        ".climate_jobs_{}.prom.{}.tmp",
        m.job,
        std::process::id()
    ));
    let mut text = m.to_text(&[("cronjob", &m.job)]);
    if replace == Replace::Names
        && let Ok(old) = std::fs::read_to_string(&path)
    {
        let pushed: Vec<String> = text
            .lines()
            .filter_map(family_of)
            .map(String::from)
            .collect();
        for line in old.lines() {
            if family_of(line).is_some_and(|f| !pushed.iter().any(|p| p == f)) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("renaming {} into place", path.display()));
    }
    Ok(path)
}

/// Publishes to every configured destination; the errors of each, joined.
pub fn publish(
    args: &MetricsArgs,
    m: &JobMetrics,
    replace: Replace,
    timeout: Duration,
) -> Result<()> {
    let mut problems = Vec::new();
    if let Some(dir) = &args.metrics_textfile
        && let Err(e) = write_textfile(dir, m, replace)
    {
        problems.push(format!("{e:#}"));
    }
    if let Some(url) = &args.pushgateway_url
        && let Err(e) = push(url, m, replace, timeout)
    {
        problems.push(format!("{e:#}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

/// The memory limit of this process's cgroup (v2 `memory.max`, else v1),
/// if it has one.
pub fn cgroup_memory_limit() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let v2 = read("/sys/fs/cgroup/memory.max").and_then(|s| s.trim().parse::<u64>().ok());
    let v1 = || {
        read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
            .and_then(|s| s.trim().parse::<u64>().ok())
            // v1 says "no limit" with a huge number.
            .filter(|b| *b < (1u64 << 62))
    };
    v2.or_else(v1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::LastRun;

    #[test]
    fn a_partial_textfile_write_keeps_the_other_metrics() {
        let dir =
            std::env::temp_dir().join(format!("climate-jobs-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |status: &str| LastRun {
            status: status.into(),
            at: 100.0,
            exit_code: Some(0),
            ..LastRun::default()
        };
        let full = JobMetrics {
            job: "canary".into(),
            last_run: Some(run("succeeded")),
            last_success: Some(100.0),
            ..JobMetrics::default()
        };
        write_textfile(&dir, &full, Replace::Group).unwrap();
        let partial = JobMetrics {
            job: "canary".into(),
            last_run: Some(run("running")),
            ..JobMetrics::default()
        };
        let path = write_textfile(&dir, &partial, Replace::Names).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("status=\"running\""), "{text}");
        assert!(!text.contains("status=\"succeeded\""), "{text}");
        assert!(
            text.contains("climate_job_last_success_timestamp_seconds{cronjob=\"canary\"} 100\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE climate_job_last_exit_code").count(),
            1,
            "{text}"
        );
        write_textfile(&dir, &partial, Replace::Group).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("last_success"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
