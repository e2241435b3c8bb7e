//! Benchmark (c) of issue 3: the FLOOR under `hazard-timeseries-batch`.
//!
//! What the job cannot avoid doing, and nothing else:
//!
//! 1. read the file's three variables once, with the same library and the same access pattern
//!    as the job (`ClimateFile::read_block`, one calendar year × all points per read);
//! 2. binary `COPY` of as many rows as the job writes (points × 5 hazards × years; the years the
//!    job would write, i.e. every calendar year of the file) into a fresh table shaped like
//!    `hazard_results` (same columns and types, same primary key, same secondary index, same
//!    CHECK; no foreign key to `grid_points`, since `CREATE TABLE … LIKE` never copies one), in
//!    one transaction, with the same encoder (`tokio_postgres::binary_copy`).
//!
//! No index is computed: the row values are placeholders. The table is dropped again at the end.
//!
//! ```text
//! DATABASE_URL=postgres://… cargo run --release --example hazard_floor -- FILE.nc
//! ```
//!
//! stdout, last line: `{"tool":"floor","seconds":…,"read_seconds":…,"copy_seconds":…,
//! "peak_rss_mb":…,"rows":…, …}` (seconds = read + copy, process start-up excluded).

use std::time::Instant;

use climate_jobs::climate::{ClimateFile, Variable, VariableNames};
use climate_jobs::harness::ledger::peak_rss_kb;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const TABLE: &str = "hazard_results_floor";
const RISK_TYPES: [&str; 5] = [
    "extreme_heat",
    "extreme_cold",
    "drought",
    "urban_flood",
    "river_flood",
];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

    // 2. COPY the same number of rows the job writes.
    let copy_started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(copy_rows(&url, npoints, &years))?;
    let copy_seconds = copy_started.elapsed().as_secs_f64();
    let seconds = started.elapsed().as_secs_f64();

    eprintln!(
        "{path}: {npoints} points × {} years; read {values_read} values in {read_seconds:.2} s \
         (checksum {checksum:.3}), COPY {rows} rows in {copy_seconds:.2} s",
        years.len()
    );
    let peak_rss_mb = peak_rss_kb().map(|kb| (kb as f64 / 1024.0 * 10.0).round() / 10.0);
    println!(
        "{}",
        serde_json::json!({
            "tool": "floor",
            "seconds": round3(seconds),
            "read_seconds": round3(read_seconds),
            "copy_seconds": round3(copy_seconds),
            "peak_rss_mb": peak_rss_mb,
            "rows": rows,
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
    npoints: usize,
    years: &[(i32, std::ops::Range<usize>)],
) -> Result<u64, BoxError> {
    let (mut client, conn) = tokio_postgres::connect(url, NoTls).await?;
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} (
                 grid_id   integer          NOT NULL,
                 scenario  text             NOT NULL,
                 risk_type text             NOT NULL,
                 year      smallint         NOT NULL,
                 value     double precision NOT NULL,
                 score     real             NOT NULL CHECK (score BETWEEN 0 AND 100),
                 run_id    uuid             NOT NULL,
                 PRIMARY KEY (grid_id, scenario, risk_type, year)
             );
             CREATE INDEX {TABLE}_scenario ON {TABLE} (scenario, risk_type, year);"
        ))
        .await?;
    let run_id = uuid::Uuid::now_v7();
    let scenario = "ssp585";
    let tx = client.transaction().await?;
    let sink = tx
        .copy_in(&format!(
            "COPY {TABLE} (grid_id, scenario, risk_type, year, value, score, run_id) \
             FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let types = [
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::INT2,
        Type::FLOAT8,
        Type::FLOAT4,
        Type::UUID,
    ];
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    // Primary-key order (point, hazard, year): the cheapest order for the indexes.
    for p in 0..npoints {
        let grid_id = i32::try_from(p + 1)?;
        for (h, risk_type) in RISK_TYPES.iter().enumerate() {
            for (year, _) in years {
                let year = i16::try_from(*year)?;
                let value = (p + h) as f64;
                let score = (h * 10) as f32;
                writer
                    .as_mut()
                    .write(&[
                        &grid_id, &scenario, risk_type, &year, &value, &score, &run_id,
                    ])
                    .await?;
            }
        }
    }
    let rows = writer.finish().await?;
    tx.commit().await?;
    client.batch_execute(&format!("DROP TABLE {TABLE}")).await?;
    drop(client);
    let _ = conn.await;
    Ok(rows)
}
