//! ClimateFile: validation errors, layouts, missing values, and annual_indices on small files.

use crate::common;
use crate::support;

use climate_jobs::climate::{
    AnnualValue, Calendar, CfDate, ClimateFile, InputErrorKind, Layout, VariableNames,
    annual_indices,
};
use climate_jobs::hazard::{Precision, Unit, Variable, default_hazards};
use common::{Grid, Spec, TempDir, Var};

const ALL: [Variable; 3] = [Variable::Tasmax, Variable::Tasmin, Variable::Pr];

fn latlon(lats: &[f64], lons: &[f64]) -> Grid {
    Grid::LatLon {
        lats: lats.to_vec(),
        lons: lons.to_vec(),
    }
}

/// A 2×3 grid, `days` days: value = 1000*t + point, so every read can be checked exactly.
fn indexed_spec(days: usize) -> Spec {
    let mut s = Spec::daily(
        latlon(&[10.0, 20.0], &[100.0, 101.0, 102.0]),
        "2000-01-01",
        days,
        None,
    );
    let data = |off: f32| {
        (0..days * 6)
            .map(|i| off + 1000.0 * (i / 6) as f32 + (i % 6) as f32)
            .collect::<Vec<f32>>()
    };
    s.vars = vec![
        Var::f32("tasmax", "K", data(0.0)),
        Var::f32("tasmin", "degC", data(0.5)),
        Var::f32("pr", "kg m-2 s-1", data(0.25)),
    ];
    s
}

fn open(path: &std::path::Path) -> Result<ClimateFile, climate_jobs::climate::InputError> {
    ClimateFile::open(path, &VariableNames::default(), &ALL)
}

#[test]
fn reads_blocks_time_major_with_partial_rows() {
    let dir = TempDir::new("blocks");
    let p = dir.path("grid.nc");
    let mut spec = indexed_spec(4);
    spec.experiment_id = Some("ssp245".into());
    spec.write(&p);
    let f = open(&p).unwrap();
    assert_eq!(f.layout(), Layout::Grid { nlat: 2, nlon: 3 });
    assert_eq!(f.points().len(), 6);
    assert_eq!(f.points()[4], (20.0, 101.0));
    assert_eq!(f.time_len(), 4);
    assert_eq!(f.dates()[3], CfDate::new(2000, 1, 4));
    assert_eq!(f.calendar(), Calendar::Standard);
    assert_eq!(f.scenario(), Some("ssp245"));
    assert_eq!(f.units(Variable::Tasmax), Some(Unit::Kelvin));
    assert_eq!(f.units(Variable::Tasmin), Some(Unit::Celsius));
    assert_eq!(f.units(Variable::Pr), Some(Unit::KgPerM2PerS));
    assert_eq!(f.precision(Variable::Pr), Some(Precision::F32));
    // Points 2..5 span the end of row 0 and the start of row 1.
    let b = f.read_block(Variable::Tasmax, 1..3, 2..5).unwrap();
    assert_eq!(b, [1002.0, 1003.0, 1004.0, 2002.0, 2003.0, 2004.0]);
    let b = f.read_block(Variable::Tasmin, 0..1, 3..6).unwrap();
    assert_eq!(b, [3.5, 4.5, 5.5]);
    assert!(f.read_block(Variable::Pr, 0..5, 0..6).is_err());
    assert!(f.read_block(Variable::Pr, 0..1, 0..7).is_err());
    assert_eq!(
        f.read_block(Variable::Pr, 2..2, 0..6).unwrap(),
        Vec::<f32>::new()
    );
}

#[test]
fn descending_latitude_keeps_file_order() {
    let dir = TempDir::new("desc");
    let p = dir.path("desc.nc");
    let mut spec = indexed_spec(2);
    spec.grid = latlon(&[20.0, 10.0], &[100.0, 101.0, 102.0]);
    spec.write(&p);
    let f = open(&p).unwrap();
    assert_eq!(f.points()[0], (20.0, 100.0));
    assert_eq!(f.points()[5], (10.0, 102.0));
    assert_eq!(
        f.read_block(Variable::Tasmax, 1..2, 0..1).unwrap(),
        [1000.0]
    );
}

#[test]
fn point_layout_with_latitude_longitude_names() {
    let dir = TempDir::new("points");
    let p = dir.path("points.nc");
    let mut spec = Spec::daily(
        Grid::Points {
            lats: vec![1.0, 2.0, 3.0],
            lons: vec![4.0, 5.0, 6.0],
            lat_name: "latitude",
            lon_name: "longitude",
        },
        "1990-12-30",
        3,
        Some("noleap"),
    );
    let d: Vec<f32> = (0..9).map(|i| i as f32).collect();
    spec.vars = vec![
        Var::f32("tasmax", "degC", d.clone()),
        Var::f32("tasmin", "degC", d.clone()),
        Var::f32("pr", "mm/day", d),
    ];
    spec.write(&p);
    let f = open(&p).unwrap();
    assert_eq!(f.layout(), Layout::Points { n: 3 });
    assert_eq!(f.points(), [(1.0, 4.0), (2.0, 5.0), (3.0, 6.0)]);
    assert_eq!(f.dates()[2], CfDate::new(1991, 1, 1));
    assert_eq!(f.calendar(), Calendar::NoLeap);
    assert_eq!(
        f.read_block(Variable::Pr, 1..3, 1..3).unwrap(),
        [4.0, 5.0, 7.0, 8.0]
    );
    assert_eq!(f.scenario(), None);
}

#[test]
fn fill_missing_value_and_nan_are_nan() {
    let dir = TempDir::new("fill");
    let p = dir.path("fill.nc");
    let mut spec = indexed_spec(1);
    spec.vars = vec![
        Var::f32("tasmax", "K", vec![1e20, 300.0, f32::NAN, -999.0, 1.0, 2.0])
            .fill(1e20)
            .missing_value(-999.0),
        Var::f64("tasmin", "K", vec![-1.0, 273.15, 9.96921e36, 0.0, 0.0, 0.0]).fill(-1.0),
        Var::f32("pr", "mm/day", vec![0.0; 6]),
    ];
    spec.write(&p);
    let f = open(&p).unwrap();
    let b = f.read_block(Variable::Tasmax, 0..1, 0..6).unwrap();
    assert!(b[0].is_nan() && b[2].is_nan() && b[3].is_nan());
    assert_eq!(&b[4..], [1.0, 2.0]);
    assert_eq!(b[1], 300.0);
    assert_eq!(f.precision(Variable::Tasmin), Some(Precision::F64));
    let b = f.read_block(Variable::Tasmin, 0..1, 0..3).unwrap();
    assert!(b[0].is_nan());
    assert_eq!(b[1], 273.15_f32);
    // Without a matching attribute the netCDF default fill is data, as in xarray.
    assert_eq!(b[2], 9.96921e36_f32);
}

#[test]
fn variable_names_are_overridable() {
    let dir = TempDir::new("names");
    let p = dir.path("names.nc");
    let mut spec = indexed_spec(1);
    spec.vars[2].name = "precip".into();
    spec.write(&p);
    let names = VariableNames {
        pr: "precip".into(),
        ..VariableNames::default()
    };
    let f = ClimateFile::open(&p, &names, &[Variable::Pr]).unwrap();
    assert_eq!(f.variable_name(Variable::Pr), Some("precip"));
    assert_eq!(f.units(Variable::Tasmax), None);
    let err = ClimateFile::open(&p, &VariableNames::default(), &ALL).unwrap_err();
    assert_eq!(err.kind, InputErrorKind::MissingVariable);
    assert_eq!(err.variable.as_deref(), Some("pr"));
}

// ---- every bad-input case is an InputError naming the file (and variable) ----

#[test]
fn missing_file() {
    let dir = TempDir::new("missing");
    let p = dir.path("nope.nc");
    let err = open(&p).unwrap_err();
    assert_eq!(err.kind, InputErrorKind::NotFound);
    assert_eq!(err.to_string(), format!("{}: file not found", p.display()));
}

#[test]
fn not_a_netcdf_file() {
    let dir = TempDir::new("notnc");
    let p = dir.path("readme.nc");
    std::fs::write(&p, "this is not a NetCDF file\n".repeat(100)).unwrap();
    let err = open(&p).unwrap_err();
    assert!(matches!(err.kind, InputErrorKind::NotNetcdf(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: not a NetCDF file", p.display()))
    );
}

fn check_truncated(classic: bool) {
    let dir = TempDir::new("trunc");
    let full = dir.path("full.nc");
    let cut = dir.path("cut.nc");
    let mut spec = indexed_spec(400);
    spec.classic = classic;
    spec.write(&full);
    open(&full).expect("the complete file is fine");
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // Either open() refuses it or, at the latest, reading it fails: never a panic, never data.
    match open(&cut) {
        Err(err) => {
            eprintln!("open refused it: {err}");
            assert!(
                err.to_string().starts_with(&cut.display().to_string()),
                "{err}"
            );
        }
        Ok(f) => {
            let r = annual_indices(&f, &default_hazards(), 0..6, None);
            let err = r.expect_err("a truncated file must not produce values");
            eprintln!("reading failed: {err}");
            assert!(
                err.to_string().starts_with(&cut.display().to_string()),
                "{err}"
            );
        }
    }
}

#[test]
fn truncated_netcdf4_file() {
    check_truncated(false);
}

#[test]
fn truncated_classic_file() {
    check_truncated(true);
}

#[test]
fn missing_variable() {
    let dir = TempDir::new("missvar");
    let p = dir.path("f.nc");
    let mut spec = indexed_spec(2);
    spec.vars.pop();
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: variable \"pr\": variable not found in the file",
            p.display()
        )
    );
}

#[test]
fn unknown_units() {
    let dir = TempDir::new("units");
    let p = dir.path("ssp245.nc");
    let mut spec = indexed_spec(2);
    spec.vars[2].units = Some("furlongs/fortnight".into());
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: variable \"pr\": unknown units \"furlongs/fortnight\" (expected kg m-2 s-1, mm/day, or m/day (m: daily totals))",
            p.display()
        )
    );
    let mut spec = indexed_spec(2);
    spec.vars[0].units = Some("degF".into());
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert_eq!(err.variable.as_deref(), Some("tasmax"));
    assert!(matches!(err.kind, InputErrorKind::UnknownUnits { .. }));
    let mut spec = indexed_spec(2);
    spec.vars[1].units = None;
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert_eq!(err.variable.as_deref(), Some("tasmin"));
    assert!(matches!(err.kind, InputErrorKind::NoUnits { .. }));
}

#[test]
fn no_time_axis() {
    let dir = TempDir::new("notime");
    let p = dir.path("f.nc");
    let mut spec = indexed_spec(1);
    spec.grid = Grid::NoTime {
        lats: vec![10.0, 20.0],
        lons: vec![100.0, 101.0, 102.0],
    };
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert!(matches!(err.kind, InputErrorKind::NoTimeAxis(_)), "{err}");
    assert!(err.to_string().contains("no time axis"), "{err}");
}

#[test]
fn unsupported_calendar() {
    let dir = TempDir::new("cal");
    let p = dir.path("f.nc");
    let mut spec = indexed_spec(2);
    spec.calendar = Some("lunar".into());
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert_eq!(
        err.kind,
        InputErrorKind::UnsupportedCalendar("lunar".into())
    );
    assert!(
        err.to_string().starts_with(&format!(
            "{}: variable \"time\": unsupported calendar \"lunar\"",
            p.display()
        )),
        "{err}"
    );
}

#[test]
fn non_daily_time_axis() {
    let dir = TempDir::new("nondaily");
    let p = dir.path("f.nc");
    // A gap is missing days, not an error: the steps keep their own day numbers.
    let mut spec = indexed_spec(3);
    spec.time = vec![0.0, 1.0, 3.0];
    spec.write(&p);
    let d = open(&p).unwrap().day_numbers().to_vec();
    assert_eq!((d[1] - d[0], d[2] - d[1]), (1, 2));
    // Steps that go backwards are refused.
    let p = dir.path("g.nc");
    let mut spec = indexed_spec(3);
    spec.time = vec![0.0, 2.0, 1.0];
    spec.write(&p);
    let err = open(&p).unwrap_err();
    assert!(matches!(err.kind, InputErrorKind::BadTimeAxis(_)), "{err}");
    let mut spec = indexed_spec(3);
    spec.time_units = "months since 2000-01-01".into();
    spec.write(&p);
    assert!(matches!(
        open(&p).unwrap_err().kind,
        InputErrorKind::BadTimeAxis(_)
    ));
}

// ---- annual_indices on generated data ----

/// Two points over 1999-12-27 .. 2002-01-03 (standard calendar), values from closures.
fn series_file(
    dir: &TempDir,
    calendar: Option<&str>,
    start: &str,
    days: usize,
    tasmax: impl Fn(usize, usize) -> f32,
    pr: impl Fn(usize, usize) -> f32,
    pr_units: &str,
) -> std::path::PathBuf {
    let p = dir.path("series.nc");
    let mut spec = Spec::daily(latlon(&[5.0], &[1.0, 2.0]), start, days, calendar);
    let make = |f: &dyn Fn(usize, usize) -> f32| {
        (0..days * 2).map(|i| f(i / 2, i % 2)).collect::<Vec<f32>>()
    };
    spec.vars = vec![
        Var::f32("tasmax", "K", make(&tasmax)),
        Var::f32("tasmin", "K", make(&|t, pt| tasmax(t, pt) - 10.0)),
        Var::f32("pr", pr_units, make(&pr)),
    ];
    spec.write(&p);
    p
}

fn by_key(rows: &[AnnualValue]) -> std::collections::BTreeMap<(usize, usize, i32), f64> {
    rows.iter()
        .map(|r| ((r.point, r.hazard, r.year), r.value))
        .collect()
}

#[test]
fn annual_indices_standard_calendar() {
    let dir = TempDir::new("annual");
    // 1999-12-27 + 740 days = through 2002-01-05; 2000 and 2001 are complete.
    let days = 740;
    let p = series_file(
        &dir,
        None,
        "1999-12-27",
        days,
        // Point 0: exactly 33 degC in float32 K on 10 days of each year; point 1: 1 ulp below.
        |t, pt| {
            let at = 306.15_f32;
            if t % 37 == 0 {
                if pt == 0 {
                    at
                } else {
                    f32::from_bits(at.to_bits() - 1)
                }
            } else {
                290.0
            }
        },
        // Rain: 10 mm/day on 1999-12-28..31 and 2000-01-01 (t=1..5), else 0.5 mm/day (dry).
        // Point 1 misses one day in 2001.
        |t, pt| {
            if pt == 1 && t == 400 {
                f32::NAN
            } else if (1..=5).contains(&t) {
                10.0
            } else {
                0.5
            }
        },
        "mm/day",
    );
    let f = open(&p).unwrap();
    let hz = default_hazards();
    let rows = annual_indices(&f, &hz, 0..2, None).unwrap();
    let m = by_key(&rows);
    // Only 2000 and 2001 are complete; 1999 (5 days) and 2002 (5 days) give nothing.
    assert!(rows.iter().all(|r| r.year == 2000 || r.year == 2001));
    let hot_2000 = (0..days)
        .filter(|t| t % 37 == 0 && (5..5 + 366).contains(t))
        .count() as f64;
    assert_eq!(m[&(0, 0, 2000)], hot_2000);
    assert_eq!(m[&(1, 0, 2000)], 0.0);
    assert_eq!(m[&(0, 1, 2000)], 0.0);
    // Drought: 2000 is dry except Jan 1 → 365; 2001 all dry → 365.
    assert_eq!(m[&(0, 2, 2000)], 365.0);
    assert_eq!(m[&(0, 2, 2001)], 365.0);
    // Rx1day 10; Rx5day window ending 2000-01-01 (5 × 10 mm) counts for 2000.
    assert_eq!(m[&(0, 3, 2000)], 10.0);
    assert_eq!(m[&(0, 4, 2000)], 50.0);
    assert_eq!(m[&(0, 4, 2001)], 2.5);
    // Point 1 has a missing day in 2001: no value for any precipitation hazard that year.
    for h in 2..5 {
        assert!(!m.contains_key(&(1, h, 2001)));
        assert!(m.contains_key(&(1, h, 2000)));
    }
    // Scores follow the bounds.
    let r = rows
        .iter()
        .find(|r| r.point == 0 && r.hazard == 4 && r.year == 2000)
        .unwrap();
    assert_eq!(r.score, 50.0 / 400.0 * 100.0);

    // A year selection gives the same rows for that year (Rx5day lead-in from December).
    let only = annual_indices(&f, &hz, 0..2, Some(2000..=2000)).unwrap();
    let all_2000: Vec<_> = rows.iter().filter(|r| r.year == 2000).copied().collect();
    assert_eq!(only, all_2000);
    // A sub-range of points gives the same rows for those points, with file point indices.
    let sub = annual_indices(&f, &hz, 1..2, None).unwrap();
    let all_p1: Vec<_> = rows.iter().filter(|r| r.point == 1).copied().collect();
    assert_eq!(sub, all_p1);
}

#[test]
fn annual_indices_flux_units_and_360_day() {
    let dir = TempDir::new("flux360");
    let days = 720;
    let p = series_file(
        &dir,
        Some("360_day"),
        "2001-01-01",
        days,
        |_, _| 300.0,
        |t, _| if t == 100 { 50.0 / 86_400.0 } else { 0.0 },
        "kg m-2 s-1",
    );
    let f = open(&p).unwrap();
    let rows = annual_indices(&f, &default_hazards(), 0..2, None).unwrap();
    let m = by_key(&rows);
    assert_eq!(rows.len(), 2 * 5 * 2);
    let rx1 = m[&(0, 3, 2001)];
    assert!((rx1 - 50.0).abs() < 1e-4, "{rx1}");
    assert_eq!(m[&(0, 2, 2001)], 259.0); // dry days 101..360 after the single wet day
    assert_eq!(m[&(0, 2, 2002)], 360.0);
}

#[test]
fn all_missing_point_gives_no_rows() {
    let dir = TempDir::new("allmiss");
    let p = series_file(
        &dir,
        Some("noleap"),
        "2001-01-01",
        365,
        |_, pt| if pt == 1 { f32::NAN } else { 300.0 },
        |_, pt| if pt == 1 { f32::NAN } else { 3.0 },
        "mm/day",
    );
    let f = open(&p).unwrap();
    let rows = annual_indices(&f, &default_hazards(), 0..2, None).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.point == 0 && r.year == 2001));
}

// ---- refused input through the real binary: exit 65, the file and the problem named ----

/// A file on a rotated grid: dims (time, rlat, rlon) with 1-D rlat/rlon only, no 2-D lat/lon.
fn write_rotated_without_latlon(path: &std::path::Path, days: usize) {
    let mut f = netcdf::create(path).unwrap();
    f.add_attribute("experiment_id", "ssp245").unwrap();
    f.add_dimension("time", days).unwrap();
    f.add_dimension("rlat", 2).unwrap();
    f.add_dimension("rlon", 2).unwrap();
    for (name, std) in [("rlat", "grid_latitude"), ("rlon", "grid_longitude")] {
        let mut v = f.add_variable::<f64>(name, &[name]).unwrap();
        v.put_attribute("standard_name", std).unwrap();
        v.put_attribute("units", "degrees").unwrap();
        v.put_values(&[-0.5, 0.5], ..).unwrap();
    }
    let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("units", "days since 2000-01-01").unwrap();
    let tv: Vec<f64> = (0..days).map(|d| d as f64).collect();
    t.put_values(&tv, ..).unwrap();
    for (name, units, value) in [
        ("tasmax", "K", 300.0f32),
        ("tasmin", "K", 280.0),
        ("pr", "kg m-2 s-1", 1e-5),
    ] {
        let mut v = f
            .add_variable::<f32>(name, &["time", "rlat", "rlon"])
            .unwrap();
        v.put_attribute("units", units).unwrap();
        v.put_attribute("grid_mapping", "rotated_pole").unwrap();
        v.put_values(&vec![value; days * 4], ..).unwrap();
    }
    f.close().unwrap();
}

/// A valid small (time, lat, lon) file, 2×2 points, `days` days from 2000-01-01.
fn small_spec(days: usize) -> Spec {
    let mut s = Spec::daily(
        latlon(&[35.0, 36.0], &[127.0, 128.0]),
        "2000-01-01",
        days,
        None,
    );
    s.vars = vec![
        Var::f32("tasmax", "K", vec![300.0; days * 4]),
        Var::f32("tasmin", "K", vec![280.0; days * 4]),
        Var::f32("pr", "kg m-2 s-1", vec![1e-5; days * 4]),
    ];
    s.experiment_id = Some("ssp245".into());
    s
}

#[test]
fn refused_grids_axes_and_packing_exit_65_naming_file_and_problem() {
    let db = support::TestDb::migrated("reader_bad_input");
    let dir = TempDir::new("reader-bad");
    let good = dir.path("good.nc");
    small_spec(10).write(&good);
    // A correctly packed temperature too, so `--tasmax-var tx_packed` is valid for it.
    {
        let mut f = netcdf::append(&good).unwrap();
        let mut v = f
            .add_variable::<i16>("tx_packed", &["time", "lat", "lon"])
            .unwrap();
        v.put_attribute("units", "K").unwrap();
        v.put_attribute("scale_factor", 0.01f32).unwrap();
        v.put_attribute("add_offset", 273.15f32).unwrap();
        v.put_values(&[2000i16; 40], ..).unwrap();
        f.close().unwrap();
    }

    let rotated = dir.path("rotated_no_latlon.nc");
    write_rotated_without_latlon(&rotated, 10);
    // rlat/rlon renamed to lat/lon but still rotated coordinates.
    let renamed = dir.path("renamed_rotated.nc");
    small_spec(10).write(&renamed);
    {
        let mut f = netcdf::append(&renamed).unwrap();
        for (name, std) in [("lat", "grid_latitude"), ("lon", "grid_longitude")] {
            let mut v = f.variable_mut(name).unwrap();
            v.put_attribute("standard_name", std).unwrap();
            v.put_attribute("units", "degrees").unwrap();
        }
        f.close().unwrap();
    }
    let unsorted = dir.path("unsorted.nc");
    let mut s = small_spec(4);
    s.time = vec![0.5, 1.5, 3.5, 2.5];
    s.write(&unsorted);
    let duplicated = dir.path("duplicated.nc");
    let mut s = small_spec(4);
    s.time = vec![0.5, 1.5, 1.5, 2.5];
    s.write(&duplicated);
    let bad_scale = dir.path("bad_scale_factor.nc");
    small_spec(10).write(&bad_scale);
    {
        let mut f = netcdf::append(&bad_scale).unwrap();
        let mut v = f
            .add_variable::<i16>("tx_packed", &["time", "lat", "lon"])
            .unwrap();
        v.put_attribute("units", "K").unwrap();
        v.put_attribute("scale_factor", "0.01").unwrap();
        v.put_values(&[100i16; 40], ..).unwrap();
        f.close().unwrap();
    }

    let cases: Vec<(&std::path::Path, Vec<&str>, &[&str])> = vec![
        (
            &rotated,
            vec![],
            &[
                "rotated/projected coordinates need 2-D latitude/longitude",
                "rlat",
            ],
        ),
        (
            &renamed,
            vec![],
            &[
                "rotated/projected coordinates need 2-D latitude/longitude",
                "not geographic",
            ],
        ),
        (&unsorted, vec![], &["not sorted", "step 3"]),
        (&duplicated, vec![], &["duplicated", "step 2"]),
        (
            &bad_scale,
            vec!["--tasmax-var", "tx_packed"],
            &["variable \"tx_packed\"", "packed data: scale_factor"],
        ),
    ];
    for (bad, extra, says) in cases {
        let mut args = vec!["--input", good.to_str().unwrap(), bad.to_str().unwrap()];
        args.extend(extra);
        let mut cmd = support::job(
            &db.url,
            env!("CARGO_BIN_EXE_hazard-timeseries-batch"),
            &args,
        );
        cmd.env_remove("HAZARD_INPUTS");
        let done = support::run(cmd);
        assert_eq!(done.code, 65, "{}: {}", bad.display(), done.all_output());
        let error = done.summary()["error"].as_str().unwrap().to_string();
        eprintln!("exit 65: {error}");
        assert!(
            error.contains(bad.to_str().unwrap()),
            "names the file: {error}"
        );
        for phrase in says {
            assert!(error.contains(phrase), "expected {phrase:?} in: {error}");
        }
        assert_eq!(
            db.count("SELECT count(*) FROM hazard_results"),
            0,
            "{error}"
        );
    }
}

#[test]
fn curvilinear_and_packed_files_open_with_geographic_points() {
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hazard");
    // WRF: XLAT(Time, y, x) float32; the points are its first step, row-major.
    let wrf = open(&fx.join("wrf_xlat_xlong.nc")).unwrap();
    assert_eq!(wrf.layout(), Layout::Grid { nlat: 2, nlon: 3 });
    assert_eq!(
        wrf.points()[4].0,
        f64::from(34.2f32 + 0.27 * 1.0 + 0.01 * 1.0)
    );
    // ERA5: valid_time axis, lon 300 stored as -60, pr in m.
    let era5 = open(&fx.join("era5_valid_time_m.nc")).unwrap();
    assert_eq!(era5.points()[1], (37.75, -60.0));
    assert_eq!(era5.units(Variable::Pr), Some(Unit::MPerDay));
    assert_eq!(era5.dates()[0], CfDate::new(2023, 1, 1));
    // Packed: precision as xarray decodes (float32 / float64 coefficients).
    let packed = open(&fx.join("packed_int16.nc")).unwrap();
    assert_eq!(packed.precision(Variable::Tasmax), Some(Precision::F32));
    assert_eq!(packed.precision(Variable::Tasmin), Some(Precision::F64));
    let tx = packed.read_block(Variable::Tasmax, 0..1, 0..1).unwrap();
    assert!(
        tx[0] > 250.0 && tx[0] < 300.0,
        "decoded, not raw: {}",
        tx[0]
    );
    let julian = open(&fx.join("julian_lon360.nc")).unwrap();
    assert_eq!(julian.calendar(), Calendar::Julian);
    assert!(julian.dates().contains(&CfDate::new(2100, 2, 29)));
    assert_eq!(
        julian.points().iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![-10.0, -0.25, 0.25, -180.0]
    );
}

#[test]
fn a_height_coordinate_is_not_taken_for_a_grid_axis() {
    // CMIP6 tasmax lists `coordinates = "height"` (a scalar in metres) next to 1-D lat/lon.
    let dir = TempDir::new("scalar-coord");
    let p = dir.path("f.nc");
    small_spec(3).write(&p);
    {
        let mut f = netcdf::append(&p).unwrap();
        let mut h = f.add_variable::<f64>("height", &[]).unwrap();
        h.put_attribute("units", "m").unwrap();
        h.put_attribute("standard_name", "height").unwrap();
        h.put_value(2.0, ..).unwrap();
        let mut v = f.variable_mut("tasmax").unwrap();
        v.put_attribute("coordinates", "height").unwrap();
        f.close().unwrap();
    }
    let nc = open(&p).unwrap();
    assert_eq!(nc.points()[3], (36.0, 128.0));
}

/// A CF file of `lats` × `lons` points × 2021-01-01..2023-12-31, contiguous or chunked along
/// time ((ntime, 1, 1), zlib + shuffle, as station-like data come); the same values either way.
fn time_chunked_pair(
    dir: &TempDir,
    lats: usize,
    lons: usize,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let days = 1095;
    let n = days * lats * lons;
    // Seasonal temperatures with heat and frost, rain with wet spells, and a few missing values.
    let at = |i: usize| {
        let (t, p) = (i / (lats * lons), i % (lats * lons));
        let season = ((t % 365) as f32 / 365.0 * std::f32::consts::TAU).sin();
        let noise = ((i.wrapping_mul(2_654_435_761)) % 1000) as f32 / 100.0;
        (t, p, season, noise)
    };
    let tasmax: Vec<f32> = (0..n)
        .map(|i| {
            let (t, p, season, noise) = at(i);
            if (t * 7 + p) % 5003 == 11 {
                f32::NAN
            } else {
                290.0 + 14.0 * season + noise + (p % 9) as f32
            }
        })
        .collect();
    let tasmin: Vec<f32> = tasmax
        .iter()
        .zip(0..)
        .map(|(x, i)| x - 8.0 - at(i).3)
        .collect();
    let pr: Vec<f32> = (0..n)
        .map(|i| {
            let (t, p, _, noise) = at(i);
            if (t / 3 + p) % 4 == 0 {
                noise * 1.0e-4
            } else {
                0.0
            }
        })
        .collect();
    let write = |path: &std::path::Path, chunked: bool| {
        let mut f = netcdf::create(path).unwrap();
        f.add_dimension("time", days).unwrap();
        f.add_dimension("lat", lats).unwrap();
        f.add_dimension("lon", lons).unwrap();
        let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", "days since 2021-01-01").unwrap();
        v.put_attribute("calendar", "standard").unwrap();
        let time: Vec<f64> = (0..days).map(|d| d as f64 + 0.5).collect();
        v.put_values(&time, ..).unwrap();
        for (name, units, len, step) in [
            ("lat", "degrees_north", lats, 0.5),
            ("lon", "degrees_east", lons, 0.75),
        ] {
            let mut v = f.add_variable::<f64>(name, &[name]).unwrap();
            v.put_attribute("units", units).unwrap();
            let vals: Vec<f64> = (0..len).map(|i| i as f64 * step).collect();
            v.put_values(&vals, ..).unwrap();
        }
        for (name, units, data) in [
            ("tasmax", "K", &tasmax),
            ("tasmin", "K", &tasmin),
            ("pr", "kg m-2 s-1", &pr),
        ] {
            let mut v = f
                .add_variable::<f32>(name, &["time", "lat", "lon"])
                .unwrap();
            if chunked {
                v.set_chunking(&[days, 1, 1]).unwrap();
                v.set_compression(4, true).unwrap();
            }
            v.put_attribute("units", units).unwrap();
            v.put_values(data, ..).unwrap();
        }
    };
    let (plain, chunked) = (dir.path("plain.nc"), dir.path("time_chunked.nc"));
    write(&plain, false);
    write(&chunked, true);
    (plain, chunked)
}

#[test]
fn time_chunked_zlib_file_gives_the_plain_file_values() {
    let dir = TempDir::new("time-chunked");
    // 23 × 27 = 621 points: more than one 500-point pass, the pass boundary inside a grid row.
    let (plain, chunked) = time_chunked_pair(&dir, 23, 27);
    let (plain, chunked) = (open(&plain).unwrap(), open(&chunked).unwrap());
    for var in ALL {
        assert!(
            !plain.reads_stored_chunks_directly(var),
            "{var}: plain file"
        );
        assert!(
            chunked.reads_stored_chunks_directly(var),
            "{var}: stored chunks read directly"
        );
    }
    let hazards = default_hazards();
    let np = plain.points().len();
    let want = by_key(&annual_indices(&plain, &hazards, 0..np, None).unwrap());
    // The whole file, and a job chunk starting mid-row with a short last pass.
    for points in [0..np, 13..np - 4] {
        let got = annual_indices(&chunked, &hazards, points.clone(), None).unwrap();
        let got = by_key(&got);
        let expected: std::collections::BTreeMap<_, _> = want
            .iter()
            .filter(|((p, _, _), _)| points.contains(p))
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(got.len(), expected.len(), "rows for points {points:?}");
        for (k, v) in &expected {
            assert_eq!(got[k].to_bits(), v.to_bits(), "{k:?} for points {points:?}");
        }
    }
    // The values are not all trivial: the comparison would catch swapped points or days.
    assert!(want.len() > 5000 && want.values().filter(|v| **v > 0.0).count() > 1000);
}

#[test]
fn time_chunked_file_with_unwritten_chunks_reads_through_the_library() {
    let dir = TempDir::new("time-chunked-partial");
    let path = dir.path("partial.nc");
    let days = 800;
    {
        let mut f = netcdf::create(&path).unwrap();
        f.add_dimension("time", days).unwrap();
        f.add_dimension("lat", 1).unwrap();
        f.add_dimension("lon", 3).unwrap();
        let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", "days since 2021-01-01").unwrap();
        let time: Vec<f64> = (0..days).map(|d| d as f64).collect();
        v.put_values(&time, ..).unwrap();
        for (name, units) in [("lat", "degrees_north"), ("lon", "degrees_east")] {
            let mut v = f.add_variable::<f64>(name, &[name]).unwrap();
            v.put_attribute("units", units).unwrap();
            let n = if name == "lat" { 1 } else { 3 };
            v.put_values(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), ..)
                .unwrap();
        }
        for (name, units) in [("tasmax", "K"), ("tasmin", "K"), ("pr", "kg m-2 s-1")] {
            let mut v = f
                .add_variable::<f32>(name, &["time", "lat", "lon"])
                .unwrap();
            v.set_chunking(&[days, 1, 1]).unwrap();
            v.set_compression(4, true).unwrap();
            v.put_attribute("units", units).unwrap();
            v.put_attribute("_FillValue", -999.0f32).unwrap();
            // Only the first point is written: the chunks of the other two never are.
            let vals: Vec<f32> = (0..days).map(|t| 280.0 + (t % 17) as f32).collect();
            v.put_values(&vals, (.., 0..1, 0..1)).unwrap();
        }
    }
    let file = open(&path).unwrap();
    assert!(file.reads_stored_chunks_directly(Variable::Tasmax));
    // Written chunk alone: direct; with the unwritten ones: the library's fill values, masked.
    let first = file.read_block(Variable::Tasmax, 0..days, 0..1).unwrap();
    assert!(
        first
            .iter()
            .zip(0..)
            .all(|(v, t)| *v == 280.0 + (t % 17) as f32)
    );
    let all = file.read_block(Variable::Tasmax, 0..days, 0..3).unwrap();
    for (t, row) in all.chunks_exact(3).enumerate() {
        assert_eq!(row[0], 280.0 + (t % 17) as f32, "day {t}");
        assert!(row[1].is_nan() && row[2].is_nan(), "day {t}: {row:?}");
    }
}
