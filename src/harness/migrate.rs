//! Schema migrations, embedded in every binary and applied by `jobctl migrate`.
//!
//! Each migration runs in its own transaction and is recorded in
//! `schema_migrations`; a session advisory lock serialises concurrent
//! `migrate` runs, so two started together both succeed and apply each
//! migration once.

use anyhow::{Context, Result, bail};
use tokio_postgres::Client;

/// (version, name, SQL) in order. Append only: never edit an applied one.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "harness",
        include_str!("../../migrations/0001_harness.sql"),
    ),
    (
        2,
        "hazard",
        include_str!("../../migrations/0002_hazard.sql"),
    ),
    (3, "cache", include_str!("../../migrations/0003_cache.sql")),
    // 4 and 5 are other branches' (datasets, …); a gap is fine: every
    // version not yet recorded is applied, in this order.
    (6, "sites", include_str!("../../migrations/0006_sites.sql")),
];

/// Advisory lock key for migrations (any constant unlikely to collide).
const MIGRATION_LOCK: i64 = 0x636c_696d_6d69_6772; // "climmigr"

#[derive(Debug, Default)]
pub struct MigrationReport {
    pub applied: Vec<(i32, &'static str)>,
    pub already: usize,
}

pub async fn migrate(client: &mut Client) -> Result<MigrationReport> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let result = apply_pending(client).await;
    // The lock is session-level: release it even when a migration failed.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = result?;
    unlock.context("releasing the migration lock")?;
    Ok(report)
}

async fn apply_pending(client: &mut Client) -> Result<MigrationReport> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .context("creating schema_migrations")?;
    let applied: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .context("reading schema_migrations")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(&newest) = applied.last() {
        let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if newest > known {
            bail!(
                "the database is at schema version {newest}, newer than this binary knows ({known}): deploy the newer image"
            );
        }
    }
    let mut report = MigrationReport::default();
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            report.already += 1;
            continue;
        }
        let tx = client
            .transaction()
            .await
            .context("starting a migration transaction")?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {version:04} {name}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await
        .context("recording the migration")?;
        tx.commit()
            .await
            .with_context(|| format!("committing migration {version:04} {name}"))?;
        report.applied.push((version, name));
    }
    Ok(report)
}
