//! `jobctl check`: validate jobs.yaml and show what it schedules.

use std::path::Path;

use crate::harness::ExitCode;
use crate::harness::args::format_duration;
use crate::manifest;

pub fn run(path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return ExitCode::Usage;
        }
    };
    match manifest::parse(&text) {
        Ok(file) => {
            let now = chrono::Utc::now();
            for job in &file.jobs {
                let next = manifest::next_run(&job.schedule, now)
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<28} {:<16} next {next}  timeout {} (task {}, grace {}), concurrency {}",
                    job.name,
                    job.schedule,
                    format_duration(job.timeout),
                    format_duration(job.task_timeout),
                    format_duration(job.grace),
                    job.concurrency
                );
            }
            println!("{}: {} job(s) OK", path.display(), file.jobs.len());
            ExitCode::Success
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", path.display());
            }
            eprintln!(
                "{}: {} problem(s); nothing was deployed",
                path.display(),
                errors.len()
            );
            ExitCode::Usage
        }
    }
}
