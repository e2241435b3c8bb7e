//! Rough read + compute timing of `annual_indices` (not a test; the recorded benchmark is
//! bench/hazard). Writes a synthetic (time, point) file once, then times open + all five indices.
//!
//! cargo run --release --example hazard_speed -- [points] [years] [deflate 0-9] [chunk_days]

use std::time::Instant;

use climate_jobs::climate::{ClimateFile, VariableNames, annual_indices};
use climate_jobs::hazard::{Variable, default_hazards};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let points = args.first().copied().unwrap_or(1000);
    let years = args.get(1).copied().unwrap_or(80);
    let deflate = args.get(2).copied().unwrap_or(0);
    let chunk_days = args.get(3).copied().unwrap_or(0);
    let days = years * 365;
    let path = std::env::temp_dir().join(format!(
        "climate-jobs-speed-{points}x{years}-d{deflate}-c{chunk_days}.nc"
    ));
    if !path.exists() {
        let t = Instant::now();
        write(&path, points, days, deflate, chunk_days)?;
        eprintln!("wrote {} in {:.2?}", path.display(), t.elapsed());
    }
    let t = Instant::now();
    let f = ClimateFile::open(&path, &VariableNames::default(), &Variable::ALL)?;
    let opened = t.elapsed();
    let rows = annual_indices(&f, &default_hazards(), 0..points, None)?;
    let total = t.elapsed();
    let values = points * days * 3;
    println!(
        "{points} points x {years} years x 3 vars = {:.1}M values: open {opened:.2?}, total {total:.2?} \
         ({:.0}M values/s), {} rows",
        values as f64 / 1e6,
        values as f64 / 1e6 / total.as_secs_f64(),
        rows.len()
    );
    // The floor: the same reads (one year x all points per variable), no index computation.
    let t = Instant::now();
    let mut sum = 0.0f64;
    for year in 0..years {
        for v in Variable::ALL {
            let b = f.read_block(v, year * 365..(year + 1) * 365, 0..points)?;
            sum += f64::from(b[b.len() / 2]);
        }
    }
    println!("read only: {:.2?} (checksum {sum:.1})", t.elapsed());
    Ok(())
}

/// Noleap calendar, float32, realistic-ish values with a little noise.
fn write(
    path: &std::path::Path,
    points: usize,
    days: usize,
    deflate: usize,
    chunk_days: usize,
) -> Result<(), netcdf::Error> {
    let mut f = netcdf::create(path)?;
    f.add_dimension("point", points)?;
    f.add_dimension("time", days)?;
    f.add_variable::<f64>("lat", &["point"])?;
    f.add_variable::<f64>("lon", &["point"])?;
    let mut t = f.add_variable::<f64>("time", &["time"])?;
    t.put_attribute("units", "days since 2021-01-01")?;
    t.put_attribute("calendar", "noleap")?;
    for (name, units) in [("tasmax", "K"), ("tasmin", "K"), ("pr", "kg m-2 s-1")] {
        let mut v = f.add_variable::<f32>(name, &["time", "point"])?;
        v.put_attribute("units", units)?;
        v.put_attribute("_FillValue", 1e20_f32)?;
        if chunk_days > 0 {
            v.set_chunking(&[chunk_days, points])?;
        }
        if deflate > 0 {
            v.set_compression(deflate as i32, true)?;
        }
    }
    let lat: Vec<f64> = (0..points).map(|i| 33.0 + (i % 50) as f64 * 0.1).collect();
    let lon: Vec<f64> = (0..points).map(|i| 125.0 + (i / 50) as f64 * 0.1).collect();
    f.variable_mut("lat").ok_or("lat")?.put_values(&lat, ..)?;
    f.variable_mut("lon").ok_or("lon")?.put_values(&lon, ..)?;
    let time: Vec<f64> = (0..days).map(|d| d as f64 + 0.5).collect();
    f.variable_mut("time")
        .ok_or("time")?
        .put_values(&time, ..)?;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let block = 365;
    for start in (0..days).step_by(block) {
        let n = block.min(days - start);
        let mut tx = Vec::with_capacity(n * points);
        let mut tn = Vec::with_capacity(n * points);
        let mut pr = Vec::with_capacity(n * points);
        for d in start..start + n {
            let season = ((d % 365) as f32 / 365.0 * std::f32::consts::TAU).cos();
            for _ in 0..points {
                let base = 288.0 - 14.0 * season + 8.0 * noise();
                tx.push(base + 6.0);
                tn.push(base - 6.0);
                let r = noise() + 0.5;
                pr.push(if r > 0.6 {
                    (r - 0.6) * 60.0 / 86_400.0
                } else {
                    0.0
                });
            }
        }
        for (name, data) in [("tasmax", &tx), ("tasmin", &tn), ("pr", &pr)] {
            f.variable_mut(name)
                .ok_or("var")?
                .put_values(data, [start..start + n, 0..points])?;
        }
    }
    f.close()
}
