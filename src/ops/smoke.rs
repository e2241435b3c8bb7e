//! `jobctl smoke`: every job once, end to end, on tiny generated data,
//! against a throw-away database (or a given one) — the step a pipeline
//! runs after building the image. One line per job; non-zero if any fails.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::harness::ExitCode;
use crate::ops::throwaway_pg::ThrowawayPg;

/// One step: a binary next to `jobctl` and its arguments; it passes when
/// it exits 0.
struct Step {
    name: &'static str,
    binary: &'static str,
    args: Vec<String>,
}

/// Runs the smoke steps; `database_url` None starts a throw-away cluster.
pub fn run(database_url: Option<String>) -> Result<ExitCode> {
    let started = Instant::now();
    let bin_dir = std::env::current_exe()
        .context("locating jobctl")?
        .parent()
        .map(Path::to_path_buf)
        .context("locating the binaries' directory")?;
    let (url, _cluster) = match database_url {
        Some(url) => (url, None),
        None => {
            let pg = ThrowawayPg::start()
                .context("starting a throw-away PostgreSQL (or pass --database-url)")?;
            (pg.url("postgres"), Some(pg))
        }
    };
    let work = std::env::temp_dir().join(format!("climate-jobs-smoke-{}", std::process::id()));
    let data = work.join("data");
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let input = data.join("ssp245.nc").display().to_string();
    let regions = data.join("regions.csv").display().to_string();
    let sites = data.join("sites.csv").display().to_string();
    let steps = vec![
        Step {
            name: "migrate",
            binary: "jobctl",
            args: s(&["migrate"]),
        },
        Step {
            name: "canary",
            binary: "jobctl",
            args: s(&["canary", "--tasks", "3", "--task-duration", "1ms"]),
        },
        Step {
            name: "demo-data",
            binary: "jobctl",
            args: vec![
                "demo-data".into(),
                "--out".into(),
                data.display().to_string(),
                "--points".into(),
                "12".into(),
                "--years".into(),
                "2021..2050".into(),
                "--scenarios".into(),
                "ssp245".into(),
            ],
        },
        Step {
            name: "hazard-timeseries-batch",
            binary: "hazard-timeseries-batch",
            args: vec!["--input".into(), input],
        },
        Step {
            name: "probability-batch",
            binary: "probability-batch",
            args: vec![],
        },
        Step {
            name: "regions import",
            binary: "jobctl",
            args: vec!["regions".into(), "import".into(), regions],
        },
        Step {
            name: "sites import",
            binary: "jobctl",
            args: vec!["sites".into(), "import".into(), sites],
        },
        Step {
            name: "site-risk-batch",
            binary: "site-risk-batch",
            args: vec![],
        },
        Step {
            name: "cache-refresh",
            binary: "cache-refresh",
            args: vec![],
        },
        Step {
            name: "dlq-reprocess",
            binary: "dlq-reprocess",
            args: vec![],
        },
    ];
    let mut failed = 0;
    for step in &steps {
        let t = Instant::now();
        let out = Command::new(bin_dir.join(step.binary))
            .args(&step.args)
            .env("DATABASE_URL", &url)
            .env("CLIMATE_JOBS_LOG_FORMAT", "json")
            .env("CLIMATE_JOBS_TIMEOUT", "5m")
            .env_remove("CLIMATE_JOBS_FAULT")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", bin_dir.join(step.binary).display()))?;
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("");
        let status = serde_json::from_str::<serde_json::Value>(last)
            .ok()
            .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(String::from))
            .unwrap_or_else(|| "-".into());
        let ok = code == 0;
        if !ok {
            failed += 1;
        }
        println!(
            "{} {:<26} exit {:<3} {:<10} {:>6.2}s",
            if ok { "ok  " } else { "FAIL" },
            step.name,
            code,
            status,
            t.elapsed().as_secs_f64()
        );
        if !ok {
            let stderr = String::from_utf8_lossy(&out.stderr);
            for line in stderr
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                println!("       {line}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "smoke: {} of {} step(s) passed in {:.1}s",
        steps.len() - failed,
        steps.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failed
    })
}
