//! `jobctl regions import FILE.csv`: replace the regions, all or nothing.

use std::path::Path;

use anyhow::Result;

use crate::cache::parse_regions_csv;
use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::{BadInput, ExitCode};
use crate::store::regions::replace_all;

pub async fn import(args: &DatabaseArgs, file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", file.display())))?;
    let regions = match parse_regions_csv(&text) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            return Err(BadInput(format!(
                "{}: {} bad row(s); nothing was imported",
                file.display(),
                errors.len()
            ))
            .into());
        }
    };
    let db = Database::from_args(args)?;
    let mut client = db.connect("jobctl/regions-import").await?;
    let n = replace_all(&mut client, &regions).await?;
    println!(
        "regions import: {n} region(s) from {} (replacing the previous set)",
        file.display()
    );
    Ok(ExitCode::Success)
}
