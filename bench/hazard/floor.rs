//! Benchmark (c) of issue 3: the FLOOR under `hazard-timeseries-batch`.
//!
//! What the job cannot avoid doing, and nothing else:
//!
//! 1. read the file's three variables once, with the same library and the same access pattern
//!    as the job (`ClimateFile::read_block`, one calendar year × all points per read) — reported
//!    alone as `read_seconds`, not part of the floor;
//! 2. read + compute: the five indices of every point and year with the job's own pure code
//!    (`climate::annual_indices` over all points, one thread) — `compute_seconds`;
//! 3. binary `COPY` of those values as the job stores them (one row per grid point and hazard,
//!    the yearly values and scores as arrays) into a fresh table shaped like `hazard_results`
//!    (same columns, types, primary key and CHECKs), in one transaction, with the same encoder
//!    (`tokio_postgres::binary_copy`) — `copy_seconds`.
//!
//! `seconds` = compute + copy (process start-up excluded). The table is dropped again at the end.
//!
//! ```text
//! DATABASE_URL=postgres://… cargo run --release --example hazard_floor -- FILE.nc
//! ```
//!
//! stdout, last line: `{"tool":"floor","seconds":…,"read_seconds":…,"compute_seconds":…,
//! "copy_seconds":…,"peak_rss_mb":…,"rows":…,"values":…, …}`.

use std::time::Instant;

use climate_jobs::climate::{ClimateFile, Variable, VariableNames, annual_indices};
use climate_jobs::harness::ledger::peak_rss_kb;
use climate_jobs::hazard::default_hazards;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const TABLE: &str = "hazard_results_floor";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One series as stored: yearly values and scores, `None` for a missing year.
type Series = (Vec<Option<f64>>, Vec<Option<f32>>);

fn main() -> Result<(), BoxError> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: hazard_floor FILE.nc   (DATABASE_URL in the environment)")?;
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let started = Instant::now();

    // 1. Read: every variable, one calendar year × all points per read, in file order.
    let file = ClimateFile::open(path.as_ref(), &VariableNames::default(), &Variable::ALL)?;
    let npoints = file.points().len();
    let mut years: Vec<(i32, std::ops::Range<usize>)> = Vec::new();
    for (i, d) in file.dates().iter().enumerate() {
        match years.last_mut() {
            Some((y, r)) if *y == d.year => r.end = i + 1,
            _ => years.push((d.year, i..i + 1)),
        }
    }
    let mut checksum = 0.0f64;
    let mut values_read = 0usize;
    for (_, time) in &years {
        for var in Variable::ALL {
            let block = file.read_block(var, time.clone(), 0..npoints)?;
            values_read += block.len();
            // Touch the data so the read cannot be considered dead.
            checksum += f64::from(block[block.len() / 2]);
        }
    }
    let read_seconds = started.elapsed().as_secs_f64();

    // 2. Read + compute, as the job's chunks do, over every point at once.
    let compute_started = Instant::now();
    let hazards = default_hazards();
    let values = annual_indices(&file, &hazards, 0..npoints, None)?;
    let compute_seconds = compute_started.elapsed().as_secs_f64();

    // 3. COPY them as series.
    let first_year = years.first().map_or(0, |y| y.0);
    let nyears = years.len();
    let mut series: Vec<Series> =
        vec![(vec![None; nyears], vec![None; nyears]); npoints * hazards.len()];
    for v in &values {
        let s = &mut series[v.point * hazards.len() + v.hazard];
        let y = usize::try_from(v.year - first_year)?;
        s.0[y] = Some(v.value);
        s.1[y] = Some(v.score as f32);
    }
    let risk_types: Vec<String> = hazards.iter().map(|h| h.risk_type.to_string()).collect();
    let copy_started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(copy_rows(
        &url,
        &risk_types,
        i16::try_from(first_year)?,
        &series,
    ))?;
    let copy_seconds = copy_started.elapsed().as_secs_f64();
    let seconds = compute_seconds + copy_seconds;

    eprintln!(
        "{path}: {npoints} points × {} years; read {values_read} values in {read_seconds:.2} s \
         (checksum {checksum:.3}); computed {} values in {compute_seconds:.2} s; COPY {rows} \
         series rows in {copy_seconds:.2} s",
        years.len(),
        values.len()
    );
    let peak_rss_mb = peak_rss_kb().map(|kb| (kb as f64 / 1024.0 * 10.0).round() / 10.0);
    println!(
        "{}",
        serde_json::json!({
            "tool": "floor",
            "seconds": round3(seconds),
            "read_seconds": round3(read_seconds),
            "compute_seconds": round3(compute_seconds),
            "copy_seconds": round3(copy_seconds),
            "peak_rss_mb": peak_rss_mb,
            "rows": rows,
            "values": values.len(),
            "points": npoints,
            "years": years.len(),
            "values_read": values_read,
            "file": path,
        })
    );
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn copy_rows(
    url: &str,
    risk_types: &[String],
    first_year: i16,
    series: &[Series],
) -> Result<u64, BoxError> {
    let (mut client, conn) = tokio_postgres::connect(url, NoTls).await?;
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} (
                 grid_id        integer            NOT NULL,
                 dataset_id     integer            NOT NULL,
                 risk_type      text               NOT NULL,
                 first_year     smallint           NOT NULL,
                 values_by_year double precision[] NOT NULL,
                 scores_by_year real[]             NOT NULL,
                 run_id         uuid               NOT NULL,
                 PRIMARY KEY (grid_id, dataset_id, risk_type),
                 CHECK (cardinality(values_by_year) = cardinality(scores_by_year)),
                 CHECK (cardinality(values_by_year) BETWEEN 1 AND 10000)
             );"
        ))
        .await?;
    let run_id = uuid::Uuid::now_v7();
    let dataset_id = 1i32;
    let tx = client.transaction().await?;
    let sink = tx
        .copy_in(&format!(
            "COPY {TABLE} (grid_id, dataset_id, risk_type, first_year, values_by_year, \
             scores_by_year, run_id) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let types = [
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::INT2,
        Type::FLOAT8_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::UUID,
    ];
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    // Primary-key order (point, hazard): the B-tree grows at its right edge.
    for (i, (values, scores)) in series.iter().enumerate() {
        let grid_id = i32::try_from(i / risk_types.len() + 1)?;
        let risk_type = &risk_types[i % risk_types.len()];
        writer
            .as_mut()
            .write(&[
                &grid_id,
                &dataset_id,
                risk_type,
                &first_year,
                values,
                scores,
                &run_id,
            ])
            .await?;
    }
    let rows = writer.finish().await?;
    tx.commit().await?;
    client.batch_execute(&format!("DROP TABLE {TABLE}")).await?;
    drop(client);
    let _ = conn.await;
    Ok(rows)
}
