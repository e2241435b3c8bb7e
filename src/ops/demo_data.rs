//! `jobctl demo-data`: write synthetic sample inputs for demos, smoke runs
//! and benchmarks.

use std::path::Path;

use crate::demo::{DemoOptions, write_demo_data};
use crate::harness::ExitCode;

pub fn run(out: &Path, opts: &DemoOptions) -> ExitCode {
    let started = std::time::Instant::now();
    match write_demo_data(out, opts) {
        Ok(files) => {
            for f in &files.netcdf {
                println!("{}", f.display());
            }
            println!("{}", files.regions_csv.display());
            println!("{}", files.sites_csv.display());
            eprintln!(
                "demo-data: {} file(s), {} points ({:?} layout), {} days, {} regions, {} sites in {:.1}s",
                files.netcdf.len(),
                files.points,
                files.layout,
                files.time_len,
                files.regions,
                files.sites,
                started.elapsed().as_secs_f64()
            );
            ExitCode::Success
        }
        Err(e) => {
            eprintln!("demo-data: {e:#}");
            ExitCode::Usage
        }
    }
}
