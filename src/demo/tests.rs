use super::*;

use netcdf::AttributeValue;

/// A fresh, unique temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "climate-jobs-demo-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn str_attr(a: Option<netcdf::Attribute<'_>>) -> String {
    match a.expect("attribute present").value().unwrap() {
        AttributeValue::Str(s) => s,
        other => panic!("expected a string attribute, got {other:?}"),
    }
}

fn f32_attr(a: Option<netcdf::Attribute<'_>>) -> f32 {
    match a.expect("attribute present").value().unwrap() {
        AttributeValue::Float(x) => x,
        other => panic!("expected a float attribute, got {other:?}"),
    }
}

fn read_f32(file: &netcdf::File, name: &str) -> Vec<f32> {
    let v = file.variable(name).unwrap();
    assert_eq!(
        v.vartype(),
        netcdf::types::NcVariableType::Float(netcdf::types::FloatType::F32),
        "{name} is float32"
    );
    v.get_values::<f32, _>(..).unwrap()
}

fn opts(points: usize, years: RangeInclusive<i32>, seed: u64, scenarios: &[&str]) -> DemoOptions {
    DemoOptions {
        points,
        years,
        seed,
        scenarios: scenarios.iter().map(|s| (*s).to_owned()).collect(),
        calendar: DemoCalendar::Standard,
    }
}

#[test]
fn grid_shapes() {
    assert_eq!(grid_shape(1000), Some((25, 40)));
    assert_eq!(grid_shape(5000), Some((50, 100)));
    assert_eq!(grid_shape(100), Some((10, 10)));
    assert_eq!(grid_shape(12), Some((3, 4)));
    assert_eq!(grid_shape(1), Some((1, 1)));
    assert_eq!(grid_shape(0), None);
    assert_eq!(grid_shape(7), None, "prime");
    assert_eq!(grid_shape(997), None, "prime");
    assert_eq!(grid_shape(2 * 53), None, "ratio 26.5 > 20");
    assert_eq!(grid_shape(2 * 37), Some((2, 37)), "ratio 18.5");
    assert_eq!(region_count(1), 5);
    assert_eq!(region_count(100), 25);
    assert_eq!(region_count(10_000), 250);
}

#[test]
fn calendars() {
    assert_eq!(DemoCalendar::Standard.days_since_1950(1950), 0);
    assert_eq!(DemoCalendar::Standard.days_since_1950(1951), 365);
    // 1950-01-01 .. 2021-01-01: 71 years, 18 leap days (1952..=2020).
    assert_eq!(DemoCalendar::Standard.days_since_1950(2021), 71 * 365 + 18);
    assert_eq!(DemoCalendar::Noleap.days_since_1950(2021), 71 * 365);
    assert_eq!(DemoCalendar::Standard.days_in_year(2024), 366);
    assert_eq!(DemoCalendar::Standard.days_in_year(2100), 365);
    assert_eq!(DemoCalendar::Noleap.days_in_year(2024), 365);
}

#[test]
fn warming_depends_on_scenario() {
    let at = |s: &str, y: f64| warming(warming_params(s), y);
    assert!(at("ssp585", 2021.0).abs() < 1e-12);
    assert!((at("ssp585", 2100.0) - 4.0).abs() < 0.1);
    assert!(at("ssp126", 2100.0) < 1.0);
    assert!(at("ssp126", 2100.0) < at("ssp245", 2100.0));
    assert!(at("ssp245", 2100.0) < at("ssp585", 2100.0));
    assert!((at("custom", 2100.0) - 2.0).abs() < 1e-12);
}

#[test]
fn rejects_bad_options() {
    let dir = TempDir::new("bad");
    for o in [
        opts(0, 2021..=2021, 1, &["ssp126"]),
        #[allow(clippy::reversed_empty_ranges)]
        opts(4, 2022..=2021, 1, &["ssp126"]),
        opts(4, 2021..=2021, 1, &[]),
        opts(4, 2021..=2021, 1, &["../evil"]),
        opts(4, 2021..=2021, 1, &["ssp126", "ssp126"]),
    ] {
        assert!(write_demo_data(&dir.0, &o).is_err(), "{o:?}");
    }
}

#[test]
fn errors_name_the_file() {
    let dir = TempDir::new("err");
    // The output directory is a regular file: creating it fails, naming it.
    let not_a_dir = dir.0.join("plain-file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let err = write_demo_data(&not_a_dir, &opts(4, 2021..=2021, 1, &["ssp126"])).unwrap_err();
    assert!(format!("{err:#}").contains("plain-file"), "{err:#}");
    // A directory squatting on the temporary name: the NetCDF create fails, naming the file,
    // and no final file appears.
    std::fs::create_dir_all(dir.0.join("ssp126.nc.part")).unwrap();
    let err = write_demo_data(&dir.0, &opts(4, 2021..=2021, 1, &["ssp126"])).unwrap_err();
    assert!(format!("{err:#}").contains("ssp126.nc"), "{err:#}");
    assert!(!dir.0.join("ssp126.nc").exists());
}

/// The main check: layout, metadata, physical values, missing values, extremes.
#[test]
fn writes_cf_lat_lon_file_with_realistic_values() {
    let dir = TempDir::new("grid");
    // 10 × 12 grid, 2022–2024 (2024 is a leap year).
    let o = opts(120, 2022..=2024, 42, &["ssp126", "ssp585"]);
    let files = write_demo_data(&dir.0, &o).unwrap();
    assert_eq!(files.layout, DemoLayout::LatLon);
    assert_eq!((files.lat_len, files.lon_len), (10, 12));
    assert_eq!(files.time_len, 365 + 365 + 366);
    assert_eq!(files.netcdf.len(), 2);
    assert_eq!(files.netcdf[1], dir.0.join("ssp585.nc"));
    assert!(!dir.0.join("ssp585.nc.part").exists());

    let f = netcdf::open(&files.netcdf[1]).unwrap();
    assert_eq!(f.dimension_len("time"), Some(1096));
    assert_eq!(f.dimension_len("lat"), Some(10));
    assert_eq!(f.dimension_len("lon"), Some(12));
    assert!(!f.dimension("time").unwrap().is_unlimited());
    assert_eq!(str_attr(f.attribute("Conventions")), "CF-1.8");
    assert_eq!(str_attr(f.attribute("experiment_id")), "ssp585");
    assert_eq!(str_attr(f.attribute("frequency")), "day");
    assert_eq!(
        str_attr(f.attribute("source")),
        "climate-jobs demo-data (synthetic)"
    );
    assert!(str_attr(f.attribute("title")).contains("ssp585"));

    let time = f.variable("time").unwrap();
    assert_eq!(str_attr(time.attribute("units")), "days since 1950-01-01");
    assert_eq!(str_attr(time.attribute("calendar")), "standard");
    assert_eq!(str_attr(time.attribute("axis")), "T");
    let t: Vec<f64> = time.get_values(..).unwrap();
    // 2022-01-01 is day 26298 since 1950-01-01; values are at noon.
    assert_eq!(t[0], 26_298.5);
    assert!(t.windows(2).all(|w| w[1] - w[0] == 1.0));

    let lat = f.variable("lat").unwrap();
    assert_eq!(str_attr(lat.attribute("units")), "degrees_north");
    let lats: Vec<f64> = lat.get_values(..).unwrap();
    assert!(lats.windows(2).all(|w| w[0] > w[1]), "descending: {lats:?}");
    assert!(lats[0] < 38.5 && lats[9] > 33.0);
    let lon = f.variable("lon").unwrap();
    assert_eq!(str_attr(lon.attribute("units")), "degrees_east");
    let lons: Vec<f64> = lon.get_values(..).unwrap();
    assert!(lons.windows(2).all(|w| w[0] < w[1]));
    assert!(lons[0] > 125.5 && lons[11] < 129.5);

    for (name, units) in [("tasmax", "K"), ("tasmin", "K"), ("pr", "kg m-2 s-1")] {
        let v = f.variable(name).unwrap();
        assert_eq!(str_attr(v.attribute("units")), units, "{name}");
        assert_eq!(f32_attr(v.attribute("_FillValue")), FILL_VALUE, "{name}");
        assert_eq!(v.fill_value::<f32>().unwrap(), Some(FILL_VALUE));
        assert!(!str_attr(v.attribute("standard_name")).is_empty());
        assert!(!str_attr(v.attribute("long_name")).is_empty());
        let dims: Vec<String> = v.dimensions().iter().map(|d| d.name()).collect();
        assert_eq!(dims, ["time", "lat", "lon"]);
    }

    let tx = read_f32(&f, "tasmax");
    let tn = read_f32(&f, "tasmin");
    let pr = read_f32(&f, "pr");
    let n = 1096 * 120;
    assert_eq!((tx.len(), tn.len(), pr.len()), (n, n, n));
    let missing = |v: &[f32]| v.iter().filter(|&&x| x == FILL_VALUE).count();
    for (name, v) in [("tasmax", &tx), ("tasmin", &tn), ("pr", &pr)] {
        let m = missing(v);
        assert!((1..=20).contains(&m), "{name}: {m} missing");
    }
    let mut heat = 0;
    let mut cold = 0;
    let mut heavy = 0;
    for i in 0..n {
        let (x, y, p) = (tx[i], tn[i], pr[i]);
        if x != FILL_VALUE {
            assert!((240.0..320.0).contains(&x), "tasmax {x}");
            if x >= 306.15 {
                heat += 1;
            }
        }
        if y != FILL_VALUE {
            assert!((230.0..305.0).contains(&y), "tasmin {y}");
            if y <= 261.15 {
                cold += 1;
            }
        }
        if x != FILL_VALUE && y != FILL_VALUE {
            assert!(y < x, "tasmin {y} >= tasmax {x} at {i}");
        }
        if p != FILL_VALUE {
            assert!(p >= 0.0 && p.is_finite(), "pr {p}");
            if f64::from(p) * 86_400.0 > 100.0 {
                heavy += 1;
            }
        }
    }
    assert!(heat > 0, "no day with tasmax >= 33 degC");
    assert!(cold > 0, "no day with tasmin <= -12 degC");
    assert!(heavy > 0, "no day above 100 mm");

    // Dry spells: the longest run of pr < 1 mm/day at some point is at least two weeks,
    // and the wet-day fraction is plausible.
    let mut longest = 0;
    let mut wet = 0;
    for p in 0..120 {
        let mut run = 0;
        for d in 0..1096 {
            let v = pr[d * 120 + p];
            if v != FILL_VALUE && f64::from(v) * 86_400.0 < 1.0 {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
                wet += 1;
            }
        }
    }
    assert!(longest >= 14, "longest dry spell {longest}");
    let wet_frac = f64::from(wet) / n as f64;
    assert!((0.15..0.45).contains(&wet_frac), "wet fraction {wet_frac}");

    // Seasonal cycle and latitude gradient: July in the south is much warmer than January in
    // the north (first row is the northernmost).
    let mean = |v: &[f32], days: std::ops::Range<usize>, rows: std::ops::Range<usize>| {
        let mut s = 0.0;
        let mut c = 0.0;
        for d in days {
            for r in rows.clone() {
                for j in 0..12 {
                    let x = v[d * 120 + r * 12 + j];
                    if x != FILL_VALUE {
                        s += f64::from(x);
                        c += 1.0;
                    }
                }
            }
        }
        s / c - 273.15
    };
    let july_south_tx = mean(&tx, 181..212, 8..10);
    let jan_north_tn = mean(&tn, 0..31, 0..2);
    let jan_south_tn = mean(&tn, 0..31, 8..10);
    assert!((27.0..34.0).contains(&july_south_tx), "{july_south_tx}");
    assert!((-14.0..-5.0).contains(&jan_north_tn), "{jan_north_tn}");
    assert!(jan_south_tn > jan_north_tn + 5.0);

    let regions = std::fs::read_to_string(&files.regions_csv).unwrap();
    let lines: Vec<&str> = regions.lines().collect();
    assert_eq!(lines[0], "code,name,lat,lon");
    assert_eq!(lines.len() - 1, 30);
    assert_eq!(files.regions, 30);
    assert!(lines[1].starts_with("KR-R001,Region 001,"));
    for l in &lines[1..] {
        let cols: Vec<&str> = l.split(',').collect();
        assert_eq!(cols.len(), 4);
        let la: f64 = cols[2].parse().unwrap();
        let lo: f64 = cols[3].parse().unwrap();
        assert!((lats[9]..=lats[0]).contains(&la), "{l}");
        assert!((lons[0]..=lons[11]).contains(&lo), "{l}");
    }
}

#[test]
fn point_layout_for_prime_counts_and_noleap_calendar() {
    let dir = TempDir::new("point");
    let mut o = opts(13, 2030..=2032, 7, &["ssp245"]);
    o.calendar = DemoCalendar::Noleap;
    let files = write_demo_data(&dir.0, &o).unwrap();
    assert_eq!(files.layout, DemoLayout::Point);
    assert_eq!((files.lat_len, files.lon_len), (0, 0));
    assert_eq!(files.time_len, 3 * 365);
    assert_eq!(files.regions, 5);
    let f = netcdf::open(&files.netcdf[0]).unwrap();
    assert_eq!(f.dimension_len("point"), Some(13));
    assert!(f.dimension("lat").is_none());
    let time = f.variable("time").unwrap();
    assert_eq!(str_attr(time.attribute("calendar")), "noleap");
    let t: Vec<f64> = time.get_values(..).unwrap();
    assert_eq!(t[0], (2030.0 - 1950.0) * 365.0 + 0.5);
    let lat = f.variable("lat").unwrap();
    let dims: Vec<String> = lat.dimensions().iter().map(|d| d.name()).collect();
    assert_eq!(dims, ["point"]);
    let lats: Vec<f64> = lat.get_values(..).unwrap();
    assert!(lats.iter().all(|l| (33.0..=38.5).contains(l)));
    let tx = f.variable("tasmax").unwrap();
    let dims: Vec<String> = tx.dimensions().iter().map(|d| d.name()).collect();
    assert_eq!(dims, ["time", "point"]);
    assert_eq!(str_attr(tx.attribute("coordinates")), "lat lon");
    let tx = read_f32(&f, "tasmax");
    let tn = read_f32(&f, "tasmin");
    assert_eq!(tx.len(), 13 * 3 * 365);
    for (x, y) in tx.iter().zip(&tn) {
        if *x != FILL_VALUE && *y != FILL_VALUE {
            assert!(y < x);
        }
    }
}

#[test]
fn same_seed_same_data_other_seed_differs() {
    let (a, b, c) = (
        TempDir::new("seed-a"),
        TempDir::new("seed-b"),
        TempDir::new("seed-c"),
    );
    // 300 points: large enough that generation runs on several threads where available.
    let o = opts(300, 2021..=2022, 5, &["ssp245"]);
    let fa = write_demo_data(&a.0, &o).unwrap();
    let fb = write_demo_data(&b.0, &o).unwrap();
    let fc = write_demo_data(
        &c.0,
        &DemoOptions {
            seed: 6,
            ..o.clone()
        },
    )
    .unwrap();
    let read = |p: &Path| {
        let f = netcdf::open(p).unwrap();
        ["tasmax", "tasmin", "pr", "lat", "lon", "time"].map(|v| {
            f.variable(v)
                .unwrap()
                .get_raw_values(..)
                .unwrap_or_else(|e| panic!("{v}: {e}"))
        })
    };
    let (da, db, dc) = (
        read(&fa.netcdf[0]),
        read(&fb.netcdf[0]),
        read(&fc.netcdf[0]),
    );
    assert_eq!(da, db, "same options must give identical data");
    assert_ne!(da[0], dc[0], "another seed must give other data");
    assert_ne!(da[2], dc[2], "another seed must give other data");
    assert_eq!(da[3], dc[3], "the grid does not depend on the seed");
    assert_eq!(
        std::fs::read(&fa.regions_csv).unwrap(),
        std::fs::read(&fb.regions_csv).unwrap()
    );
    assert_ne!(
        std::fs::read(&fa.regions_csv).unwrap(),
        std::fs::read(&fc.regions_csv).unwrap()
    );
}

#[test]
fn thread_count_does_not_change_values() {
    let npoints = 200;
    let clim: Vec<PointClim> = (0..npoints)
        .map(|p| PointClim::new(33.0 + p as f64 * 0.02, 126.0 + p as f64 * 0.01))
        .collect();
    let mut days = Vec::new();
    Regional::new(1).year(2050, 365, warming_params("ssp585"), &mut days);
    let run = |threads: usize| {
        let mut states: Vec<PointState> = (0..npoints as u64)
            .map(|p| PointState::new(derive_seed(&[9, p])))
            .collect();
        let mut block = YearBlock {
            tasmax: Vec::new(),
            tasmin: Vec::new(),
            pr: Vec::new(),
        };
        generate_year(&days, &clim, &mut states, threads, &mut block);
        (block.tasmax, block.tasmin, block.pr)
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_eq!(one, run(8));
}

#[test]
fn the_sites_file_imports() {
    let dir = std::env::temp_dir().join(format!("demo-sites-{}", std::process::id()));
    let opts = DemoOptions {
        points: 20,
        years: 2021..=2021,
        seed: 7,
        scenarios: vec!["ssp245".into()],
        calendar: DemoCalendar::Noleap,
    };
    let files = write_demo_data(&dir, &opts).unwrap();
    let text = std::fs::read_to_string(&files.sites_csv).unwrap();
    let sites = crate::risk::parse_sites_csv(&text).unwrap();
    assert_eq!(sites.len(), files.sites);
    assert_eq!(files.sites, files.regions);
    let _ = std::fs::remove_dir_all(&dir);
}
