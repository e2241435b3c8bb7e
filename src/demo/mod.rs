//! Synthetic, realistic daily climate projections for demos, tests and benchmarks.
//!
//! [`write_demo_data`] writes one CF-1.8 NetCDF-4 file per scenario (`{scenario}.nc`, daily
//! `tasmax`, `tasmin` in K and `pr` in kg m-2 s-1 over a grid around the Korean peninsula) and a
//! `regions.csv` (`code,name,lat,lon`) of administrative-region stand-ins inside the grid.
//!
//! The data is made to exercise the hazard indices: a seasonal cycle with a latitude gradient
//! (hot southern summers with days at or above 33 °C, cold northern winters with nights at or below
//! −12 °C), AR(1) day-to-day weather with a regional (spatially coherent) component, a warming
//! trend that depends on the scenario, and precipitation from a two-state Markov chain (dry spells,
//! wet spells, a summer monsoon, occasional days above 100 mm). About one value in 50,000 is set
//! to the fill value.
//!
//! Everything is deterministic in the options: the generator uses its own PRNG (xoshiro256++,
//! in `demo::rng`) with one stream per grid point, so the same options give identical values no
//! matter how many threads generate them. Memory stays bounded: values are generated and written
//! one calendar year (all points) at a time, time-major.

mod rng;
mod sites;

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use rng::{Rng, derive_seed, fnv1a, inv_norm_cdf};

/// `_FillValue` (and `missing_value`) of the data variables, as CMIP files use it.
pub const FILL_VALUE: f32 = 1.0e20;
/// On average one value in this many is replaced by [`FILL_VALUE`].
pub const MISSING_ONE_IN: u64 = 50_000;
/// Bounding box of the demo grid (cell centres lie strictly inside it).
pub const LAT_RANGE: (f64, f64) = (33.0, 38.5);
/// Bounding box of the demo grid (cell centres lie strictly inside it).
pub const LON_RANGE: (f64, f64) = (125.5, 129.5);
/// Time units of the `time` variable.
pub const TIME_UNITS: &str = "days since 1950-01-01";
/// Grids more elongated than this (long side / short side) use the (time, point) layout.
pub const MAX_GRID_ASPECT: usize = 20;

const SECONDS_PER_DAY: f64 = 86_400.0;
const KELVIN: f64 = 273.15;

/// CF calendar of the generated files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoCalendar {
    /// `standard` (proleptic Gregorian for the supported years): leap years have 366 days.
    #[default]
    Standard,
    /// `noleap` (`365_day`): every year has 365 days.
    Noleap,
}

impl DemoCalendar {
    /// The value of the `calendar` attribute.
    pub fn cf_name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Noleap => "noleap",
        }
    }

    /// Number of days in `year` in this calendar.
    pub fn days_in_year(self, year: i32) -> usize {
        match self {
            Self::Standard if is_leap(year) => 366,
            _ => 365,
        }
    }

    /// Days from 1950-01-01 to `year`-01-01 in this calendar.
    fn days_since_1950(self, year: i32) -> i64 {
        match self {
            Self::Standard => days_from_civil(year, 1, 1) - days_from_civil(1950, 1, 1),
            Self::Noleap => (i64::from(year) - 1950) * 365,
        }
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Number of grid points (exactly; see [`grid_shape`] for the layout). Default 100.
    pub points: usize,
    /// Calendar years to generate, inclusive. Default 2021..=2040.
    pub years: RangeInclusive<i32>,
    /// PRNG seed. Default 42.
    pub seed: u64,
    /// Scenario names; one file `{scenario}.nc` each. `sspXYZ` names get a warming trend from
    /// their forcing (`ssp126` ≈ +0.7 K, `ssp585` ≈ +4 K in 2100 relative to 2021), other names
    /// +2 K. Default `ssp126`, `ssp245`, `ssp585`.
    pub scenarios: Vec<String>,
    /// CF calendar. Default [`DemoCalendar::Standard`].
    pub calendar: DemoCalendar,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            points: 100,
            years: 2021..=2040,
            seed: 42,
            scenarios: ["ssp126", "ssp245", "ssp585"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            calendar: DemoCalendar::Standard,
        }
    }
}

/// Spatial layout of the generated files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoLayout {
    /// Data variables are (`time`, `lat`, `lon`); `lat` is descending (north first).
    LatLon,
    /// Data variables are (`time`, `point`) with coordinate variables `lat(point)`, `lon(point)`.
    Point,
}

/// What [`write_demo_data`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoFiles {
    /// One NetCDF file per scenario, in the order of [`DemoOptions::scenarios`].
    pub netcdf: Vec<PathBuf>,
    /// The regions file (`code,name,lat,lon`).
    pub regions_csv: PathBuf,
    /// Number of grid points per file.
    pub points: usize,
    /// Length of the `lat` dimension (0 in the [`DemoLayout::Point`] layout).
    pub lat_len: usize,
    /// Length of the `lon` dimension (0 in the [`DemoLayout::Point`] layout).
    pub lon_len: usize,
    /// Which layout the files use.
    pub layout: DemoLayout,
    /// Length of the `time` dimension (days).
    pub time_len: usize,
    /// Number of regions in `regions_csv`.
    pub regions: usize,
    /// The sites file for `jobctl sites import` (as many sites as regions).
    pub sites_csv: PathBuf,
    pub sites: usize,
}

/// The (nlat, nlon) grid for `points` grid points: the factor pair closest to square, with
/// nlat ≤ nlon (1,000 → 25 × 40, 5,000 → 50 × 100). `None` when there is no usable grid — `points`
/// is 0 or prime (> 1), or the pair is more elongated than [`MAX_GRID_ASPECT`] — and the files
/// use the (time, point) layout instead.
pub fn grid_shape(points: usize) -> Option<(usize, usize)> {
    if points == 0 {
        return None;
    }
    let mut a = points.isqrt();
    while a > 1 && !points.is_multiple_of(a) {
        a -= 1;
    }
    let b = points / a;
    if (a == 1 && points > 1) || b > MAX_GRID_ASPECT * a {
        return None;
    }
    Some((a, b))
}

/// Number of regions written for `points` grid points: max(5, points / 4), at most 250.
pub fn region_count(points: usize) -> usize {
    (points / 4).clamp(5, 250)
}

/// Writes the demo data set into `out_dir` (created if missing): `{scenario}.nc` per scenario
/// and `regions.csv`. Files are written under a temporary name and renamed when complete, so a
/// failed run leaves no half-written file under the final name.
pub fn write_demo_data(out_dir: &Path, opts: &DemoOptions) -> Result<DemoFiles> {
    validate(opts)?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("creating output directory {}", out_dir.display()))?;
    let geom = Geometry::new(opts.points, opts.seed);
    let clim: Vec<PointClim> = geom
        .point_lat
        .iter()
        .zip(&geom.point_lon)
        .map(|(&lat, &lon)| PointClim::new(lat, lon))
        .collect();
    let time_len: usize = opts
        .years
        .clone()
        .map(|y| opts.calendar.days_in_year(y))
        .sum();

    let mut netcdf = Vec::with_capacity(opts.scenarios.len());
    for scenario in &opts.scenarios {
        let path = out_dir.join(format!("{scenario}.nc"));
        write_scenario(&path, scenario, opts, &geom, &clim, time_len)?;
        netcdf.push(path);
    }
    let regions_csv = out_dir.join("regions.csv");
    let regions = write_regions(&regions_csv, &geom, opts.seed)?;
    let sites_csv = out_dir.join("sites.csv");
    let sites = sites::write_sites(&sites_csv, geom.bbox(), regions, opts.seed)?;
    let (lat_len, lon_len) = match geom.layout {
        DemoLayout::LatLon => (geom.nlat, geom.nlon),
        DemoLayout::Point => (0, 0),
    };
    Ok(DemoFiles {
        netcdf,
        regions_csv,
        points: opts.points,
        lat_len,
        lon_len,
        layout: geom.layout,
        time_len,
        regions,
        sites_csv,
        sites,
    })
}

fn validate(opts: &DemoOptions) -> Result<()> {
    if opts.points == 0 {
        bail!("demo data: points must be at least 1");
    }
    let (a, b) = (*opts.years.start(), *opts.years.end());
    if a > b {
        bail!("demo data: empty year range {a}..={b}");
    }
    if a < 1850 || b > 2300 {
        bail!("demo data: years {a}..={b} outside the supported 1850..=2300");
    }
    if opts.scenarios.is_empty() {
        bail!("demo data: no scenarios given");
    }
    for (i, s) in opts.scenarios.iter().enumerate() {
        let ok = !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            bail!(
                "demo data: scenario name {s:?} is not usable as a file name \
                 (letters, digits, '-', '_', '.')"
            );
        }
        if opts.scenarios[..i].contains(s) {
            bail!("demo data: scenario {s:?} given twice");
        }
    }
    Ok(())
}

/// Grid geometry shared by all scenarios.
struct Geometry {
    layout: DemoLayout,
    nlat: usize,
    nlon: usize,
    /// Values of the `lat` coordinate variable (per row, descending; or per point).
    lat_coord: Vec<f64>,
    /// Values of the `lon` coordinate variable (per column; or per point).
    lon_coord: Vec<f64>,
    /// Latitude of every point in file order (row-major for the lat/lon layout).
    point_lat: Vec<f64>,
    point_lon: Vec<f64>,
}

impl Geometry {
    fn new(points: usize, seed: u64) -> Self {
        let (lat0, lat1) = LAT_RANGE;
        let (lon0, lon1) = LON_RANGE;
        match grid_shape(points) {
            Some((nlat, nlon)) => {
                let dlat = (lat1 - lat0) / nlat as f64;
                let dlon = (lon1 - lon0) / nlon as f64;
                // Rounded to 1e-6 degrees so the coordinates print cleanly.
                let lat_coord: Vec<f64> = (0..nlat)
                    .map(|i| round6(lat1 - (i as f64 + 0.5) * dlat))
                    .collect();
                let lon_coord: Vec<f64> = (0..nlon)
                    .map(|j| round6(lon0 + (j as f64 + 0.5) * dlon))
                    .collect();
                let mut point_lat = Vec::with_capacity(points);
                let mut point_lon = Vec::with_capacity(points);
                for &la in &lat_coord {
                    for &lo in &lon_coord {
                        point_lat.push(la);
                        point_lon.push(lo);
                    }
                }
                Self {
                    layout: DemoLayout::LatLon,
                    nlat,
                    nlon,
                    lat_coord,
                    lon_coord,
                    point_lat,
                    point_lon,
                }
            }
            None => {
                let mut r = Rng::new(derive_seed(&[seed, fnv1a("points")]));
                let mut point_lat = Vec::with_capacity(points);
                let mut point_lon = Vec::with_capacity(points);
                for _ in 0..points {
                    point_lat.push(round4(lat0 + 0.02 + r.uniform() * (lat1 - lat0 - 0.04)));
                    point_lon.push(round4(lon0 + 0.02 + r.uniform() * (lon1 - lon0 - 0.04)));
                }
                Self {
                    layout: DemoLayout::Point,
                    nlat: 0,
                    nlon: 0,
                    lat_coord: point_lat.clone(),
                    lon_coord: point_lon.clone(),
                    point_lat,
                    point_lon,
                }
            }
        }
    }

    fn bbox(&self) -> (f64, f64, f64, f64) {
        let fold = |v: &[f64]| {
            v.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        };
        let (la0, la1) = fold(&self.point_lat);
        let (lo0, lo1) = fold(&self.point_lon);
        (la0, la1, lo0, lo1)
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Climatology of one point (°C, and a precipitation amount factor).
#[derive(Clone, Copy, Debug)]
struct PointClim {
    /// Mean tasmax at the height of summer / depth of winter.
    tx_summer: f64,
    tx_winter: f64,
    tn_summer: f64,
    tn_winter: f64,
    /// Multiplier of wet-day amounts (the south is wetter).
    pr_scale: f64,
    /// −1 in the far south, +1 in the far north: loading of the north–south weather modes.
    ns: f64,
}

impl PointClim {
    fn new(lat: f64, lon: f64) -> Self {
        let north = ((lat - LAT_RANGE.0) / (LAT_RANGE.1 - LAT_RANGE.0)).clamp(0.0, 1.0);
        // Continentality: the interior (around 127.5–128.5 E) has hotter summers, colder winters.
        let interior = (-((lon - 128.0) / 1.0).powi(2)).exp();
        Self {
            tx_summer: 32.5 - 2.5 * north + 0.8 * interior,
            tx_winter: 8.5 - 11.0 * north - 0.5 * interior,
            tn_summer: 23.5 - 3.0 * north,
            tn_winter: 2.5 - 12.0 * north - 1.0 * interior,
            pr_scale: 1.25 - 0.45 * north,
            ns: 2.0 * north - 1.0,
        }
    }
}

/// Warming (K) in 2100 relative to 2021 and the shape exponent of the trend for a scenario.
fn warming_params(scenario: &str) -> (f64, f64) {
    let lower = scenario.to_ascii_lowercase();
    let forcing = lower
        .strip_prefix("ssp")
        .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d[1..].parse::<u32>().ok())
        .map(|f| f64::from(f) / 10.0);
    match forcing {
        // ssp126 → +0.72 K (levelling off), ssp245 → +1.76 K, ssp370 → +3.1 K,
        // ssp585 → +3.96 K (accelerating).
        Some(f) => (
            (0.55 * (f - 1.3)).max(0.2),
            (0.6 + 0.1525 * (f - 2.6)).clamp(0.5, 1.6),
        ),
        None => (2.0, 1.0),
    }
}

/// Warming (K) relative to the start of 2021 at fractional year `t`.
fn warming(params: (f64, f64), t: f64) -> f64 {
    let (w, p) = params;
    let x = (t - 2021.0) / 79.0;
    if x >= 0.0 { w * x.powf(p) } else { w * x }
}

/// Everything about one simulated day that is shared by all points.
#[derive(Clone, Copy, Debug)]
struct DayCtx {
    /// Seasonal phase: 0 in mid-winter, 1 at the height of summer.
    season: f64,
    /// Scenario warming (K).
    delta: f64,
    /// Standard deviation of the tasmax / tasmin anomaly (K).
    sd_x: f64,
    sd_n: f64,
    /// Normal quantiles of the dry→wet and wet→wet transition probabilities.
    q01: f64,
    q11: f64,
    /// Mean wet-day amount (mm) before the point's scale factor and the storm factor.
    mu: f64,
    /// Regional multiplicative storm factor of wet-day amounts (log-normal, mean 1).
    storm: f64,
    /// Regional temperature anomaly modes (unit variance): common and north–south.
    r1: f64,
    r2: f64,
    /// Regional precipitation driver (unit variance) and its north–south mode.
    zp: f64,
    zp2: f64,
}

/// Regional (domain-wide) weather state carried from day to day and year to year.
struct Regional {
    rng: Rng,
    r1: f64,
    r2: f64,
}

impl Regional {
    const RHO1: f64 = 0.8;
    const RHO2: f64 = 0.6;

    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let r1 = rng.normal();
        let r2 = rng.normal();
        Self { rng, r1, r2 }
    }

    /// Day contexts for one calendar year.
    fn year(&mut self, year: i32, ndays: usize, warm: (f64, f64), out: &mut Vec<DayCtx>) {
        out.clear();
        let len = ndays as f64;
        for d in 0..ndays {
            let x = (d as f64 + 0.5) / len;
            // Peak of summer around 24 July, depth of winter around 22 January.
            let season = 0.5 * (1.0 + (2.0 * std::f64::consts::PI * (x - 0.5616)).cos());
            // Monsoon (Changma) peak mid-July, a second late-summer (typhoon) peak early September.
            let monsoon = ((-0.5 * ((x - 0.54) / 0.075).powi(2)).exp()
                + 0.5 * (-0.5 * ((x - 0.675) / 0.045).powi(2)).exp())
            .min(1.0);
            let delta = warming(warm, f64::from(year) + x);
            let p_wet = 0.17 + 0.38 * monsoon;
            let p11 = 0.40 + 0.30 * monsoon;
            let p01 = p_wet * (1.0 - p11) / (1.0 - p_wet);
            let g = &mut self.rng;
            self.r1 = Self::RHO1 * self.r1 + (1.0 - Self::RHO1 * Self::RHO1).sqrt() * g.normal();
            self.r2 = Self::RHO2 * self.r2 + (1.0 - Self::RHO2 * Self::RHO2).sqrt() * g.normal();
            let zp = g.normal();
            let zp2 = g.normal();
            let storm = (0.4 * g.normal() - 0.08).exp();
            out.push(DayCtx {
                season,
                delta,
                sd_x: 2.3 + 1.2 * (1.0 - season),
                sd_n: 2.0 + 2.2 * (1.0 - season),
                q01: inv_norm_cdf(p01),
                q11: inv_norm_cdf(p11),
                mu: (3.0 + 17.0 * monsoon) * (1.0 + 0.07 * delta),
                storm,
                r1: self.r1,
                r2: self.r2,
                zp,
                zp2,
            });
        }
    }
}

/// Per-point weather state carried from day to day.
#[derive(Clone, Debug)]
struct PointState {
    rng: Rng,
    /// Local AR(1) temperature anomaly (unit variance).
    local: f64,
    wet: bool,
}

impl PointState {
    const RHO: f64 = 0.65;

    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let local = rng.normal();
        Self {
            rng,
            local,
            wet: false,
        }
    }

    /// One day at one point: (tasmax K, tasmin K, pr kg m-2 s-1).
    #[inline]
    fn step(&mut self, c: &PointClim, d: &DayCtx) -> (f32, f32, f32) {
        let g = &mut self.rng;
        self.local = Self::RHO * self.local + (1.0 - Self::RHO * Self::RHO).sqrt() * g.normal();
        let anomaly = 0.7 * d.r1 + 0.35 * c.ns * d.r2 + 0.62 * self.local;
        // Summer warm anomalies are damped (evaporative cooling, convection): negative skew of
        // summer tasmax, so that tens of millions of draws do not produce 45 °C days.
        let anomaly_x = if anomaly > 0.0 {
            anomaly / (1.0 + 0.18 * d.season * anomaly)
        } else {
            anomaly
        };

        // Wet/dry: a two-state Markov chain per point whose transitions are driven by a
        // Gaussian copula mixing a regional and a local deviate (spatially coherent rain).
        let z = 0.75 * (0.9 * d.zp + 0.436 * c.ns * d.zp2) + 0.6614 * g.normal();
        self.wet = z < if self.wet { d.q11 } else { d.q01 };
        let pr_mm = if self.wet {
            soft_cap(0.1 + d.mu * c.pr_scale * d.storm * g.exp1(), PR_SOFT_CAP_MM)
        } else if g.uniform() < 0.25 {
            0.8 * g.uniform()
        } else {
            0.0
        };

        let s = d.season;
        let wet_cool = if self.wet { 1.0 + 1.5 * s } else { 0.0 };
        let wet_warm_night = if self.wet { 0.8 } else { 0.0 };
        let tx =
            c.tx_winter + (c.tx_summer - c.tx_winter) * s + d.delta + d.sd_x * anomaly_x - wet_cool;
        let tn = c.tn_winter
            + (c.tn_summer - c.tn_winter) * s
            + d.delta
            + d.sd_n * (0.8 * anomaly + 0.6 * g.normal())
            + wet_warm_night;
        // Keep a minimum diurnal range so tasmin < tasmax holds after rounding to f32.
        let tn = tn.min(tx - 0.3);
        (
            (tx + KELVIN) as f32,
            (tn + KELVIN) as f32,
            (pr_mm / SECONDS_PER_DAY) as f32,
        )
    }
}

/// Daily amounts above this (mm) are compressed logarithmically: the record daily rainfall in
/// Korea is about 870 mm, while independent exponential draws over millions of wet days would
/// exceed it.
const PR_SOFT_CAP_MM: f64 = 250.0;

/// Identity below `cap`, then `cap + 80 ln(1 + (x − cap) / 80)`: continuous, increasing.
fn soft_cap(x: f64, cap: f64) -> f64 {
    if x <= cap {
        x
    } else {
        cap + 80.0 * (1.0 + (x - cap) / 80.0).ln()
    }
}

/// Chooses positions of values to replace by the fill value: geometric gaps with mean
/// [`MISSING_ONE_IN`] over the variable's time-major flat index, the first one within the first
/// `MISSING_ONE_IN` values (so even a small file has at least one missing value).
struct MissingCursor {
    rng: Rng,
    next: u64,
}

impl MissingCursor {
    fn new(seed: u64, total: u64) -> Self {
        let mut rng = Rng::new(seed);
        let next = rng.below(total.clamp(1, MISSING_ONE_IN));
        Self { rng, next }
    }

    fn apply(&mut self, block: &mut [f32], base: u64) {
        let end = base + block.len() as u64;
        let log_keep = (1.0 - 1.0 / MISSING_ONE_IN as f64).ln();
        while self.next < end {
            if let Some(v) = usize::try_from(self.next - base)
                .ok()
                .and_then(|i| block.get_mut(i))
            {
                *v = FILL_VALUE;
            }
            let gap = (self.rng.uniform().ln() / log_keep).floor() as u64 + 1;
            self.next += gap;
        }
    }
}

/// One year (all points) of the three variables, time-major: index = day × points + point.
#[derive(Default)]
struct YearBlock {
    tasmax: Vec<f32>,
    tasmin: Vec<f32>,
    pr: Vec<f32>,
}

/// Generates one year into `block` (resized to ndays × points), in parallel over point chunks.
fn generate_year(
    days: &[DayCtx],
    clim: &[PointClim],
    states: &mut [PointState],
    threads: usize,
    block: &mut YearBlock,
) {
    let npoints = clim.len();
    let n = days.len() * npoints;
    for v in [&mut block.tasmax, &mut block.tasmin, &mut block.pr] {
        v.clear();
        v.resize(n, 0.0);
    }
    let chunk = npoints.div_ceil(threads.max(1)).max(1);
    if threads <= 1 || npoints < 64 {
        generate_points(days, clim, states, 0, npoints, block);
        return;
    }
    // Each thread fills its own time-major sub-block for a range of points; they are then
    // interleaved into the year block. Results do not depend on the number of threads.
    let parts: Vec<(usize, YearBlock)> = std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .chunks_mut(chunk)
            .zip(clim.chunks(chunk))
            .enumerate()
            .map(|(k, (st, cl))| {
                scope.spawn(move || {
                    let mut sub = YearBlock {
                        tasmax: vec![0.0; days.len() * cl.len()],
                        tasmin: vec![0.0; days.len() * cl.len()],
                        pr: vec![0.0; days.len() * cl.len()],
                    };
                    generate_points(days, cl, st, 0, cl.len(), &mut sub);
                    (k * chunk, sub)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(part) => part,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    for (start, sub) in parts {
        let width = sub.tasmax.len() / days.len().max(1);
        for d in 0..days.len() {
            let dst = d * npoints + start..d * npoints + start + width;
            let src = d * width..(d + 1) * width;
            block.tasmax[dst.clone()].copy_from_slice(&sub.tasmax[src.clone()]);
            block.tasmin[dst.clone()].copy_from_slice(&sub.tasmin[src.clone()]);
            block.pr[dst].copy_from_slice(&sub.pr[src]);
        }
    }
}

/// Fills `out` (time-major with row width `width`) for points `clim[..]`.
fn generate_points(
    days: &[DayCtx],
    clim: &[PointClim],
    states: &mut [PointState],
    offset: usize,
    width: usize,
    out: &mut YearBlock,
) {
    for (d, day) in days.iter().enumerate() {
        let row = d * width + offset;
        let tx = &mut out.tasmax[row..row + clim.len()];
        let tn = &mut out.tasmin[row..row + clim.len()];
        let pr = &mut out.pr[row..row + clim.len()];
        for (i, (c, st)) in clim.iter().zip(states.iter_mut()).enumerate() {
            let (a, b, p) = st.step(c, day);
            tx[i] = a;
            tn[i] = b;
            pr[i] = p;
        }
    }
}

fn write_scenario(
    path: &Path,
    scenario: &str,
    opts: &DemoOptions,
    geom: &Geometry,
    clim: &[PointClim],
    time_len: usize,
) -> Result<()> {
    let tmp = path.with_extension("nc.part");
    let result = write_scenario_to(&tmp, scenario, opts, geom, clim, time_len)
        .with_context(|| {
            format!(
                "writing demo NetCDF file {} (as {})",
                path.display(),
                tmp.display()
            )
        })
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_scenario_to(
    path: &Path,
    scenario: &str,
    opts: &DemoOptions,
    geom: &Geometry,
    clim: &[PointClim],
    time_len: usize,
) -> Result<()> {
    let mut file = netcdf::create(path).context("creating the file")?;
    let space_dims = define_dimensions(&mut file, geom, clim.len(), time_len)?;
    put_global_attributes(&mut file, scenario, opts)?;
    define_coordinates(&mut file, geom, opts)?;
    define_data_variables(&mut file, geom, &space_dims)?;
    write_coordinates(&mut file, geom, opts, time_len)?;
    write_data(&mut file, scenario, opts, geom, clim, time_len)?;
    file.close().context("closing the file")?;
    Ok(())
}

/// Every dimension is fixed-size; returns the spatial ones in order.
fn define_dimensions(
    file: &mut netcdf::FileMut,
    geom: &Geometry,
    npoints: usize,
    time_len: usize,
) -> Result<Vec<&'static str>> {
    file.add_dimension("time", time_len)?;
    file.add_dimension("bnds", 2)?;
    Ok(match geom.layout {
        DemoLayout::LatLon => {
            file.add_dimension("lat", geom.nlat)?;
            file.add_dimension("lon", geom.nlon)?;
            vec!["lat", "lon"]
        }
        DemoLayout::Point => {
            file.add_dimension("point", npoints)?;
            vec!["point"]
        }
    })
}

/// CMIP-like global attributes; `experiment_id` is the scenario.
fn put_global_attributes(
    file: &mut netcdf::FileMut,
    scenario: &str,
    opts: &DemoOptions,
) -> Result<()> {
    let (y0, y1) = (*opts.years.start(), *opts.years.end());
    file.add_attribute("Conventions", "CF-1.8")?;
    file.add_attribute(
        "title",
        format!("Synthetic daily climate projection, {scenario}, {y0}-{y1}").as_str(),
    )?;
    file.add_attribute("source", "climate-jobs demo-data (synthetic)")?;
    file.add_attribute("experiment_id", scenario)?;
    file.add_attribute("frequency", "day")?;
    file.add_attribute(
        "institution",
        "climate-jobs (synthetic data, not a model run)",
    )?;
    file.add_attribute(
        "comment",
        format!(
            "Generated by climate-jobs demo-data with seed {}; not real climate model output.",
            opts.seed
        )
        .as_str(),
    )?;
    Ok(())
}

/// time (with bounds), lat and lon, with their CF attributes.
fn define_coordinates(
    file: &mut netcdf::FileMut,
    geom: &Geometry,
    opts: &DemoOptions,
) -> Result<()> {
    {
        let mut v = file.add_variable::<f64>("time", &["time"])?;
        v.put_attribute("units", TIME_UNITS)?;
        v.put_attribute("calendar", opts.calendar.cf_name())?;
        v.put_attribute("axis", "T")?;
        v.put_attribute("standard_name", "time")?;
        v.put_attribute("long_name", "time")?;
        v.put_attribute("bounds", "time_bnds")?;
    }
    file.add_variable::<f64>("time_bnds", &["time", "bnds"])?;
    let coord_dims: [&str; 2] = match geom.layout {
        DemoLayout::LatLon => ["lat", "lon"],
        DemoLayout::Point => ["point", "point"],
    };
    for (name, dim, units, std_name, axis) in [
        ("lat", coord_dims[0], "degrees_north", "latitude", "Y"),
        ("lon", coord_dims[1], "degrees_east", "longitude", "X"),
    ] {
        let mut v = file.add_variable::<f64>(name, &[dim])?;
        v.put_attribute("units", units)?;
        v.put_attribute("standard_name", std_name)?;
        v.put_attribute("long_name", std_name)?;
        if geom.layout == DemoLayout::LatLon {
            v.put_attribute("axis", axis)?;
        }
    }
    Ok(())
}

/// tasmax, tasmin (K) and pr (kg m-2 s-1) as float32 with a fill value.
fn define_data_variables(
    file: &mut netcdf::FileMut,
    geom: &Geometry,
    space_dims: &[&str],
) -> Result<()> {
    let mut data_dims = vec!["time"];
    data_dims.extend_from_slice(space_dims);
    for (name, units, std_name, long_name, cell_methods) in [
        (
            "tasmax",
            "K",
            "air_temperature",
            "Daily Maximum Near-Surface Air Temperature",
            "time: maximum",
        ),
        (
            "tasmin",
            "K",
            "air_temperature",
            "Daily Minimum Near-Surface Air Temperature",
            "time: minimum",
        ),
        (
            "pr",
            "kg m-2 s-1",
            "precipitation_flux",
            "Precipitation",
            "time: mean",
        ),
    ] {
        let mut v = file.add_variable::<f32>(name, &data_dims)?;
        v.set_fill_value(FILL_VALUE)
            .with_context(|| format!("setting _FillValue of {name}"))?;
        v.put_attribute("missing_value", FILL_VALUE)?;
        v.put_attribute("units", units)?;
        v.put_attribute("standard_name", std_name)?;
        v.put_attribute("long_name", long_name)?;
        v.put_attribute("cell_methods", cell_methods)?;
        if geom.layout == DemoLayout::Point {
            v.put_attribute("coordinates", "lat lon")?;
        }
    }
    Ok(())
}

/// Daily time stamps at noon with day bounds, and the grid's coordinates.
fn write_coordinates(
    file: &mut netcdf::FileMut,
    geom: &Geometry,
    opts: &DemoOptions,
    time_len: usize,
) -> Result<()> {
    let mut times = Vec::with_capacity(time_len);
    let mut bounds = Vec::with_capacity(2 * time_len);
    for y in opts.years.clone() {
        let start = opts.calendar.days_since_1950(y) as f64;
        for d in 0..opts.calendar.days_in_year(y) {
            let t0 = start + d as f64;
            times.push(t0 + 0.5);
            bounds.push(t0);
            bounds.push(t0 + 1.0);
        }
    }
    put(file, "time", &times, 0..time_len)?;
    put(file, "time_bnds", &bounds, [0..time_len, 0..2])?;
    put(file, "lat", &geom.lat_coord, 0..geom.lat_coord.len())?;
    put(file, "lon", &geom.lon_coord, 0..geom.lon_coord.len())?;
    Ok(())
}

/// The data, one calendar year at a time: a producer thread generates year
/// y + 1 while this thread writes year y (two blocks in flight at most, so
/// memory stays bounded).
fn write_data(
    file: &mut netcdf::FileMut,
    scenario: &str,
    opts: &DemoOptions,
    geom: &Geometry,
    clim: &[PointClim],
    time_len: usize,
) -> Result<()> {
    let npoints = clim.len();
    let mut generator = Generator::new(scenario, opts, clim, time_len);
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(i32, YearBlock)>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<YearBlock>(2);
    for _ in 0..2 {
        empty_tx
            .send(YearBlock::default())
            .context("internal: block channel")?;
    }
    let years = opts.years.clone();
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            for y in years {
                // A closed channel means the writer stopped (on an error): stop too.
                let Ok(mut block) = empty_rx.recv() else {
                    return;
                };
                generator.year(y, &mut block);
                if full_tx.send((y, block)).is_err() {
                    return;
                }
            }
        });
        let written = write_years(file, geom, npoints, full_rx, empty_tx);
        if let Err(panic) = producer.join() {
            std::panic::resume_unwind(panic);
        }
        match written {
            Ok(t) if t == time_len => Ok(()),
            Ok(t) => bail!("internal: wrote {t} of {time_len} days"),
            Err(e) => Err(e),
        }
    })
}

/// Writes the year blocks arriving on `full` in order, handing each buffer back on `empty`;
/// returns the number of days written. Dropping the channels on return stops the producer.
fn write_years(
    file: &mut netcdf::FileMut,
    geom: &Geometry,
    npoints: usize,
    full: std::sync::mpsc::Receiver<(i32, YearBlock)>,
    empty: std::sync::mpsc::SyncSender<YearBlock>,
) -> Result<usize> {
    let mut t0 = 0_usize;
    for (y, block) in full {
        let ndays = block.tasmax.len() / npoints.max(1);
        let t1 = t0 + ndays;
        for (name, values) in [
            ("tasmax", &block.tasmax),
            ("tasmin", &block.tasmin),
            ("pr", &block.pr),
        ] {
            let r = match geom.layout {
                DemoLayout::LatLon => put(file, name, values, [t0..t1, 0..geom.nlat, 0..geom.nlon]),
                DemoLayout::Point => put(file, name, values, [t0..t1, 0..npoints]),
            };
            r.with_context(|| format!("year {y}"))?;
        }
        t0 = t1;
        // The producer may already have finished; a closed channel is fine here.
        let _ = empty.send(block);
    }
    Ok(t0)
}

/// The whole random state of one scenario's data: regional weather, every point's weather,
/// and the missing-value cursors. Years must be requested in order.
struct Generator<'a> {
    clim: &'a [PointClim],
    calendar: DemoCalendar,
    warm: (f64, f64),
    threads: usize,
    regional: Regional,
    states: Vec<PointState>,
    missing: [MissingCursor; 3],
    days: Vec<DayCtx>,
    /// Flat (time-major) index of the next value to generate.
    offset: u64,
}

impl<'a> Generator<'a> {
    fn new(scenario: &str, opts: &DemoOptions, clim: &'a [PointClim], time_len: usize) -> Self {
        let scen = fnv1a(scenario);
        let seed = opts.seed;
        let total = (time_len * clim.len()) as u64;
        let cursor = |v: &str| {
            MissingCursor::new(
                derive_seed(&[seed, scen, fnv1a("missing"), fnv1a(v)]),
                total,
            )
        };
        Self {
            clim,
            calendar: opts.calendar,
            warm: warming_params(scenario),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            regional: Regional::new(derive_seed(&[seed, scen, fnv1a("regional")])),
            states: (0..clim.len() as u64)
                .map(|p| PointState::new(derive_seed(&[seed, scen, fnv1a("point"), p])))
                .collect(),
            missing: [cursor("tasmax"), cursor("tasmin"), cursor("pr")],
            days: Vec::with_capacity(366),
            offset: 0,
        }
    }

    /// Generates calendar year `y` (all points, time-major) into `block`.
    fn year(&mut self, y: i32, block: &mut YearBlock) {
        let ndays = self.calendar.days_in_year(y);
        self.regional.year(y, ndays, self.warm, &mut self.days);
        generate_year(&self.days, self.clim, &mut self.states, self.threads, block);
        for (cursor, values) in
            self.missing
                .iter_mut()
                .zip([&mut block.tasmax, &mut block.tasmin, &mut block.pr])
        {
            cursor.apply(values, self.offset);
        }
        self.offset += block.tasmax.len() as u64;
    }
}

fn put<T, E>(file: &mut netcdf::FileMut, name: &str, values: &[T], extents: E) -> Result<()>
where
    T: netcdf::NcTypeDescriptor,
    E: TryInto<netcdf::Extents>,
    E::Error: Into<netcdf::Error>,
{
    let mut v = file
        .variable_mut(name)
        .with_context(|| format!("variable {name} not defined"))?;
    v.put_values(values, extents)
        .with_context(|| format!("writing variable {name}"))
}

/// Writes `regions.csv`; returns the number of regions.
fn write_regions(path: &Path, geom: &Geometry, seed: u64) -> Result<usize> {
    let n = region_count(geom.point_lat.len());
    let (la0, la1, lo0, lo1) = geom.bbox();
    let mut r = Rng::new(derive_seed(&[seed, fnv1a("regions")]));
    let mut text = String::from("code,name,lat,lon\n");
    for i in 1..=n {
        let lat = round4(la0 + r.uniform() * (la1 - la0)).clamp(la0, la1);
        let lon = round4(lo0 + r.uniform() * (lo1 - lo0)).clamp(lo0, lo1);
        let _ = writeln!(text, "KR-R{i:03},Region {i:03},{lat:.4},{lon:.4}");
    }
    write_csv_atomically(path, &text, "regions")?;
    Ok(n)
}

/// Writes `text` to `path` through a `.part` file renamed into place, so a
/// reader never sees half a file; the part file is removed on failure.
pub(crate) fn write_csv_atomically(path: &Path, text: &str, what: &str) -> Result<()> {
    let tmp = path.with_extension("csv.part");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {what} file {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
