//! `jobctl sites import FILE.csv`: replace the sites, all or nothing.

use std::path::Path;

use anyhow::Result;

use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::{BadInput, ExitCode};
use crate::risk::parse_sites_csv;
use crate::store::sites::replace_all;

pub async fn import(args: &DatabaseArgs, file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", file.display())))?;
    let sites = match parse_sites_csv(&text) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            return Err(BadInput(format!(
                "{}: {} problem(s); nothing was imported",
                file.display(),
                errors.len()
            ))
            .into());
        }
    };
    let db = Database::from_args(args)?;
    let mut client = db.connect("jobctl/sites-import").await?;
    let name = file.display().to_string();
    let (upserted, deleted) = replace_all(&mut client, &sites, &name).await?;
    println!(
        "sites import: {} site(s) in {name}: {upserted} new or changed, {deleted} removed (not in the file)",
        sites.len()
    );
    Ok(ExitCode::Success)
}
