//! The demo's `sites.csv` for `jobctl sites import`: business sites inside
//! the grid's bounding box, every asset class and structure type, some with
//! a distance to a river. Deterministic for a seed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::rng::{Rng, derive_seed, fnv1a};
use crate::risk::{AssetClass, StructureType};

/// Writes `count` sites in (lat0..lat1, lon0..lon1); returns `count`.
pub fn write_sites(
    path: &Path,
    bbox: (f64, f64, f64, f64),
    count: usize,
    seed: u64,
) -> Result<usize> {
    let (la0, la1, lo0, lo1) = bbox;
    let mut r = Rng::new(derive_seed(&[seed, fnv1a("sites")]));
    let mut text = String::from(
        "site_id,name,lat,lon,asset_value,currency,asset_class,structure_type,year_built,floors,distance_to_river_km,distance_to_coast_km\n",
    );
    for i in 1..=count {
        let lat = (la0 + r.uniform() * (la1 - la0)).clamp(la0, la1);
        let lon = (lo0 + r.uniform() * (lo1 - lo0)).clamp(lo0, lo1);
        let class = AssetClass::ALL[i % AssetClass::ALL.len()];
        let structure = StructureType::ALL[(i / 2) % StructureType::ALL.len()];
        // 10^8 .. 10^11 KRW, log-uniform.
        let value = (10f64.powf(8.0 + 3.0 * r.uniform())).round();
        let year = 1940 + (r.uniform() * 85.0) as i32;
        let floors = 1 + (r.uniform() * r.uniform() * 30.0) as i32;
        let river = if i % 3 == 0 {
            String::new()
        } else {
            format!("{:.2}", r.uniform() * 15.0)
        };
        let coast = format!("{:.1}", r.uniform() * 80.0);
        let _ = writeln!(
            text,
            "DEMO-S{i:04},Demo site {i:04},{lat:.4},{lon:.4},{value},KRW,{class},{},{year},{floors},{river},{coast}",
            structure.as_str()
        );
    }
    super::write_csv_atomically(path, &text, "sites")?;
    Ok(count)
}
