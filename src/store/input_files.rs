//! `input_files`: what an input was when it was last fully processed, so
//! an unchanged input is skipped and a changed one recomputed.

use crate::fingerprint::Fnv64;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// A cheap content fingerprint: size, modification time, and a hash of the
/// first and last 64 KiB (a NetCDF header holds the dimensions, attributes
/// and history; the tail the last records written). Reading the whole file
/// would cost as much as the job itself on large inputs.
pub fn fingerprint(path: &Path) -> std::io::Result<String> {
    const EDGE: u64 = 64 * 1024;
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let size = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hash = Fnv64::default();
    let mut buf = vec![0u8; EDGE.min(size) as usize];
    file.read_exact(&mut buf)?;
    hash.write(&buf);
    if size > EDGE {
        let tail = EDGE.min(size - EDGE);
        file.seek(SeekFrom::End(-(tail as i64)))?;
        let mut buf = vec![0u8; tail as usize];
        file.read_exact(&mut buf)?;
        hash.write(&buf);
    }
    Ok(format!("v1:{size}:{mtime}:{:016x}", hash.finish()))
}

/// Stable hash of a string, for plan keys.
pub fn stable_hash(text: &str) -> String {
    let mut h = Fnv64::default();
    h.write(text.as_bytes());
    format!("{:016x}", h.finish())
}

/// What was recorded for an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedInput {
    pub fingerprint: String,
    pub scope: String,
    pub run_id: Uuid,
    pub processed_at: String,
}

pub async fn lookup(
    client: &impl GenericClient,
    job: &str,
    path: &str,
) -> Result<Option<ProcessedInput>> {
    let row = client
        .query_opt(
            "SELECT fingerprint, scope, run_id, to_char(processed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
               FROM input_files WHERE job = $1 AND path = $2",
            &[&job, &path],
        )
        .await
        .context("reading input_files")?;
    Ok(row.map(|r| ProcessedInput {
        fingerprint: r.get(0),
        scope: r.get(1),
        run_id: r.get(2),
        processed_at: r.get(3),
    }))
}

/// An input fully processed by a run: what `input_files` keeps of it.
#[derive(Debug, Clone, Copy)]
pub struct Processed<'a> {
    pub job: &'a str,
    /// The file, or a source name such as `table:hazard_results`.
    pub path: &'a str,
    pub fingerprint: &'a str,
    pub scope: &'a str,
    pub scenario: &'a str,
    pub points: i32,
    /// This process's rows; the recorded figure is the whole plan's.
    pub rows_written: i64,
    pub run_id: Uuid,
}

/// Records an input as fully processed with its scope.
pub async fn record(client: &impl GenericClient, input: &Processed<'_>) -> Result<()> {
    let Processed {
        job,
        path,
        fingerprint,
        scope,
        scenario,
        points,
        rows_written,
        run_id,
    } = *input;
    // The rows of every process that did a share of the plan just
    // completed (an earlier run cut short and resumed, sibling replicas),
    // from the chunks they recorded. The plan is the one this run did
    // chunks of or, when an earlier run did them all, the one whose chunk
    // finished last (the job's lock keeps other plans from running now).
    client
        .execute(
            "INSERT INTO input_files (path, job, fingerprint, scope, scenario, points, rows_written, run_id)
             VALUES ($1, $2, $3, $4, $5, $6,
                     greatest($7, (SELECT coalesce(sum(c.rows_written), 0)::bigint FROM run_chunks c
                                    WHERE c.job = $2 AND c.state = 'done'
                                      AND c.plan_key = coalesce(
                                          (SELECT plan_key FROM run_chunks WHERE job = $2 AND run_id = $8 LIMIT 1),
                                          (SELECT plan_key FROM run_chunks WHERE job = $2 AND state = 'done'
                                            ORDER BY finished_at DESC NULLS LAST LIMIT 1))
                                      AND coalesce(c.payload->>'file', $1) = $1)),
                     $8)
             ON CONFLICT (job, path) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                 scope = EXCLUDED.scope, scenario = EXCLUDED.scenario, points = EXCLUDED.points,
                 rows_written = EXCLUDED.rows_written, run_id = EXCLUDED.run_id, processed_at = now()",
            &[&path, &job, &fingerprint, &scope, &scenario, &points, &rows_written, &run_id],
        )
        .await
        .with_context(|| format!("recording {path} in input_files"))?;
    Ok(())
}
