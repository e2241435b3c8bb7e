//! `jobctl report --out FILE.html [--days N]`: the run history as one
//! self-contained page (inline SVG and CSS, no script, no network): a
//! timeline of runs per job coloured by status, each run's duration
//! against the job's timeout, and failed tasks and dead letters per day.
//!
//! `fetch` reads the ledger, `html` draws it (pure). Further sections —
//! the `jobctl status` table when it exists — are passed to
//! [`html::render`] as [`html::Section`]s (see [`run`]).

pub mod fetch;
pub mod html;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::{ExitCode, UsageError};
use crate::manifest;

pub const DEFAULT_DAYS: u32 = 7;
pub const MAX_DAYS: u32 = 366;

pub struct ReportArgs<'a> {
    pub out: &'a Path,
    pub days: u32,
    /// jobs.yaml for each job's timeout; None: ./jobs.yaml if present.
    pub jobs_file: Option<&'a Path>,
}

/// Each job's timeout from jobs.yaml. An explicit file must exist and
/// parse; the default one is optional.
fn timeouts(path: Option<&Path>) -> Result<BTreeMap<String, Duration>> {
    let (path, explicit) = match path {
        Some(p) => (p, true),
        None => (Path::new("jobs.yaml"), false),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) if !explicit => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(anyhow!(UsageError(format!(
                "--jobs-file {}: cannot read: {e}",
                path.display()
            ))));
        }
    };
    let file = manifest::parse(&text).map_err(|errors| {
        let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
        anyhow!(UsageError(format!(
            "{}: {} problem(s), first: {first} (run `jobctl check`)",
            path.display(),
            errors.len()
        )))
    })?;
    Ok(file
        .jobs
        .iter()
        .map(|j| (j.name.clone(), j.timeout))
        .collect())
}

pub async fn run(db: &DatabaseArgs, args: &ReportArgs<'_>) -> Result<ExitCode> {
    if args.days == 0 || args.days > MAX_DAYS {
        return Err(anyhow!(UsageError(format!(
            "--days {}: expected 1 to {MAX_DAYS}",
            args.days
        ))));
    }
    let timeouts = timeouts(args.jobs_file)?;
    let client = Database::from_args(db)?.connect("jobctl/report").await?;
    let started = Instant::now();
    let data = fetch::fetch(&client, args.days, timeouts).await?;
    if data.runs.is_empty() {
        return Err(anyhow!(UsageError(format!(
            "no runs in the last {} day(s): nothing to report (try a larger --days)",
            args.days
        ))));
    }
    // The seam for more sections: `jobctl status` adds its table here.
    let sections: Vec<html::Section> = Vec::new();
    let page = html::render(&data, &sections);
    write_atomically(args.out, page.as_bytes())?;
    println!(
        "{}: {} run(s) of {} job(s) over {} day(s), {} bytes, in {} ms",
        args.out.display(),
        data.runs.len(),
        data.jobs().len(),
        args.days,
        page.len(),
        started.elapsed().as_millis()
    );
    Ok(ExitCode::Success)
}

/// Writes next to the target and renames: a reader never sees half a page.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| {
        anyhow!(UsageError(format!(
            "--out {}: not a file name",
            path.display()
        )))
    })?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
