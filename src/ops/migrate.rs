//! `jobctl migrate`: apply the schema, idempotently.

use anyhow::Result;

use crate::harness::ExitCode;
use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::migrate::migrate;
use crate::store::schema::MIGRATIONS;

pub async fn run(args: &DatabaseArgs) -> Result<ExitCode> {
    let db = Database::from_args(args)?;
    let mut client = db.connect("jobctl/migrate").await?;
    let report = migrate(&mut client, MIGRATIONS).await?;
    for (version, name) in &report.applied {
        tracing::info!(version, name, "applied migration");
    }
    println!(
        "migrate: {} applied, {} already present, database {}",
        report.applied.len(),
        report.already,
        db.target()
    );
    Ok(ExitCode::Success)
}
