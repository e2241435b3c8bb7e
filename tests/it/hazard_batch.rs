//! hazard-timeseries-batch end to end: the real binary, real NetCDF files
//! (`jobctl demo-data` output and hand-made bad files), a real PostgreSQL.

use crate::common;
use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use climate_jobs::climate::{
    ClimateFile, Dataset, VariableNames, annual_indices, dataset_indices_each,
};
use climate_jobs::hazard::{Variable, default_hazards};
use common::{Grid, Spec, TempDir, Var};
use support::{Finished, TestDb, run};

/// Demo data shared by the tests of this binary: 60 points (6×10 grid),
/// 2021–2025, two scenarios.
fn demo() -> PathBuf {
    support::demo_data("hazard-demo", 60, "2021..2025", "ssp126,ssp585")
}

fn batch(db: &TestDb) -> Command {
    support::job(&db.url, env!("CARGO_BIN_EXE_hazard-timeseries-batch"), &[])
}

fn run_batch(db: &TestDb, args: &[&str]) -> Finished {
    let mut c = batch(db);
    c.args(args);
    run(c)
}

/// (lat, lon, scenario, risk_type, year) → value, as the database has it.
type Table = BTreeMap<(String, String, String, String, i32), f64>;

fn table(db: &TestDb) -> Table {
    db.yearly_rows(
        "SELECT g.lat::text, g.lon::text, h.scenario, h.risk_type, h.year, h.value
           FROM hazard_yearly h JOIN grid_points g ON g.id = h.grid_id",
    )
    .into_iter()
    .map(|r| {
        let s = |i: usize| r[i].clone().unwrap();
        (
            (s(0), s(1), s(2), s(3), s(4).parse().unwrap()),
            s(5).parse().unwrap(),
        )
    })
    .collect()
}

/// What the pure library computes for the same file.
fn expected(path: &Path, scenario: &str) -> Table {
    let hazards = default_hazards();
    let file = ClimateFile::open(path, &VariableNames::default(), &Variable::ALL).unwrap();
    let n = file.points().len();
    annual_indices(&file, &hazards, 0..n, None)
        .unwrap()
        .into_iter()
        .map(|v| {
            let (lat, lon) = file.points()[v.point];
            // Postgres prints float8 with shortest round-trip digits, like Rust.
            let key = (
                lat.to_string(),
                lon.to_string(),
                scenario.to_string(),
                hazards[v.hazard].risk_type.to_string(),
                v.year,
            );
            (key, v.value)
        })
        .collect()
}

/// The table's content, run ids left out.
fn checksum(db: &TestDb) -> String {
    db.yearly_scalar(
        "SELECT md5(string_agg(grid_id || ':' || scenario || ':' || risk_type || ':' || year || ':' || value || ':' || score, ','
                               ORDER BY grid_id, scenario, risk_type, year)) FROM hazard_yearly",
    )
}

/// A chunk computed on several threads (each over a sub-range of the points
/// of every block read) emits exactly the values, in exactly the order, of
/// one thread: 700 points so that two and three workers both split it.
#[test]
fn compute_workers_give_the_values_of_one_thread_in_the_same_order() {
    let path = support::demo_data("hazard-workers", 700, "2021..2023", "ssp585").join("ssp585.nc");
    let file = ClimateFile::open(&path, &VariableNames::default(), &Variable::ALL).unwrap();
    let dataset = Dataset::single(&file).unwrap();
    let hazards = default_hazards();
    let compute = |workers: usize, points: std::ops::Range<usize>| {
        let mut out = Vec::new();
        dataset_indices_each(&dataset, &hazards, points, None, workers, |v| out.push(v)).unwrap();
        out
    };
    let one = compute(1, 0..700);
    assert!(
        one.len() > 700 * 3,
        "most points, hazards and years have a value"
    );
    assert_eq!(compute(2, 0..700), one);
    assert_eq!(compute(3, 0..700), one);
    // An offset range: the same values of those points, in the same order.
    let tail: Vec<_> = one.iter().filter(|v| v.point >= 100).copied().collect();
    assert_eq!(compute(2, 100..700), tail);
}

#[test]
fn writes_what_the_indices_compute_then_skips_unchanged_input_and_force_rewrites_identically() {
    let db = TestDb::migrated("hazard_rerun");
    let ssp126 = demo().join("ssp126.nc");
    let input = ssp126.to_str().unwrap();
    let first = run_batch(&db, &["--input", input, "--chunk-points", "16"]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    let summary = first.summary();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["tasks_done"], 4, "60 points in chunks of 16");
    let want = expected(&ssp126, "ssp126");
    assert!(
        want.len() > 1400,
        "60 points × 5 hazards × 5 years, less missing years: {}",
        want.len()
    );
    assert_eq!(summary["rows_written"], want.len());
    let got = table(&db);
    assert_eq!(got.len(), want.len());
    for (key, value) in &want {
        let stored = got.get(key).unwrap_or_else(|| panic!("no row for {key:?}"));
        assert!(
            (stored - value).abs() <= 1e-9 * value.abs().max(1.0),
            "{key:?}: {stored} vs {value}"
        );
    }
    assert_eq!(db.count("SELECT count(*) FROM grid_points"), 60);
    let before = checksum(&db);

    let second = run_batch(&db, &["--input", input, "--chunk-points", "16"]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert_eq!(second.summary()["status"], "skipped");
    assert!(
        second.summary()["reason"]
            .as_str()
            .unwrap()
            .contains("unchanged")
    );
    let second_id = second.summary()["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        db.yearly_count(&format!(
            "SELECT count(*) FROM hazard_yearly WHERE run_id = '{second_id}'"
        )),
        0
    );

    let forced = run_batch(&db, &["--input", input, "--chunk-points", "16", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.all_output());
    let forced_id = forced.summary()["run_id"].as_str().unwrap().to_string();
    assert_eq!(checksum(&db), before, "--force rewrites identical rows");
    assert_eq!(
        db.yearly_count("SELECT count(*) FROM hazard_yearly"),
        want.len() as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM hazard_results"),
        60 * 5,
        "one row per grid point and hazard"
    );
    assert_eq!(
        db.yearly_count(&format!(
            "SELECT count(*) FROM hazard_yearly WHERE run_id = '{forced_id}'"
        )),
        want.len() as i64,
        "every row was rewritten by the forced run"
    );
}

#[test]
fn scope_flags_limit_years_points_and_hazards() {
    let db = TestDb::migrated("hazard_scope");
    let input = demo().join("ssp585.nc");
    let done = run_batch(
        &db,
        &[
            "--input",
            input.to_str().unwrap(),
            "--years",
            "2022..2023",
            "--points",
            "0..9",
            "--hazards",
            "extreme_heat,drought",
        ],
    );
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert_eq!(
        db.yearly_scalar("SELECT min(year) || '-' || max(year) FROM hazard_yearly"),
        "2022-2023"
    );
    assert_eq!(
        db.yearly_count("SELECT count(DISTINCT grid_id) FROM hazard_yearly"),
        10
    );
    assert_eq!(
        db.yearly_scalar("SELECT string_agg(DISTINCT risk_type, ',') FROM hazard_yearly"),
        "drought,extreme_heat"
    );
    // A narrower scope does not vouch for the whole file: a full run is not skipped.
    let full = run_batch(&db, &["--input", input.to_str().unwrap()]);
    assert_eq!(
        full.summary()["status"],
        "succeeded",
        "{}",
        full.all_output()
    );
}

#[test]
fn a_years_subset_merges_into_existing_series_keeping_every_other_year() {
    let db = TestDb::migrated("hazard_years_merge");
    let path = demo().join("ssp126.nc");
    let input = path.to_str().unwrap();
    let want = expected(&path, "ssp126");
    let years_of = |t: &Table| -> Vec<i32> {
        let mut y: Vec<i32> = t.keys().map(|k| k.4).collect();
        y.sort_unstable();
        y.dedup();
        y
    };
    let only = |years: &[i32]| -> Table {
        want.iter()
            .filter(|(k, _)| years.contains(&k.4))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    assert_eq!(years_of(&want), vec![2021, 2022, 2023, 2024, 2025]);

    for (years, have) in [
        ("2021..2022", vec![2021, 2022]),
        // A later subset leaves a gap (2023) between the two spans.
        ("2024..2025", vec![2021, 2022, 2024, 2025]),
        // Filling the gap merges into the middle of every series.
        ("2023..2023", vec![2021, 2022, 2023, 2024, 2025]),
    ] {
        let done = run_batch(
            &db,
            &["--input", input, "--years", years, "--chunk-points", "16"],
        );
        assert_eq!(done.code, 0, "{years}: {}", done.all_output());
        assert_eq!(done.summary()["status"], "succeeded", "{years}");
        assert_eq!(table(&db), only(&have), "after --years {years}");
        assert_eq!(
            db.count("SELECT count(*) FROM hazard_results"),
            60 * 5,
            "{years}: still one row per grid point and hazard"
        );
    }
    assert_eq!(
        db.scalar("SELECT min(first_year) || '-' || max(first_year + cardinality(values_by_year) - 1) FROM hazard_results"),
        "2021-2025"
    );
    // Rewriting a middle year again with --force keeps the years around it.
    let again = run_batch(&db, &["--input", input, "--years", "2022..2023", "--force"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(table(&db), want);
    // The readers' view has every value too.
    assert_eq!(
        db.count("SELECT count(*) FROM hazard_values"),
        want.len() as i64
    );
}

#[test]
fn a_failed_chunk_is_dead_lettered_the_others_are_written_and_a_rerun_repairs_it() {
    let db = TestDb::migrated("hazard_fail_chunk");
    let input = demo().join("ssp126.nc");
    let mut c = batch(&db);
    c.env("CLIMATE_JOBS_FAULT", "fail-task=1").args([
        "--input",
        input.to_str().unwrap(),
        "--chunk-points",
        "16",
    ]);
    let done = run(c);
    assert_eq!(done.code, 3, "{}", done.all_output());
    assert_eq!(
        db.yearly_count("SELECT count(DISTINCT grid_id) FROM hazard_yearly"),
        44,
        "3 of 4 chunks"
    );
    let letters = db.rows("SELECT payload::text, status, error_kind FROM dead_letters");
    assert_eq!(letters.len(), 1);
    let payload: serde_json::Value =
        serde_json::from_str(letters[0][0].as_deref().unwrap()).unwrap();
    assert_eq!(payload["points"], serde_json::json!([16, 32]));
    // The payload carries what redoes the chunk: the dataset and its files.
    assert_eq!(payload["files"][0]["path"], input.to_str().unwrap());
    assert_eq!(payload["dataset"]["scenario"], "ssp126");
    // The payload's points are exactly the ones missing from the table.
    let file = ClimateFile::open(&input, &VariableNames::default(), &Variable::ALL).unwrap();
    for (i, (lat, lon)) in file.points().iter().enumerate() {
        let rows = db.yearly_count(&format!(
            "SELECT count(*) FROM hazard_yearly h JOIN grid_points g ON g.id = h.grid_id WHERE g.lat = {lat} AND g.lon = {lon}"
        ));
        assert_eq!(rows > 0, !(16..32).contains(&i), "point {i}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM input_files"),
        0,
        "a partial run vouches for nothing"
    );

    // Running the batch again redoes only the failed chunk and resolves its letter.
    let again = run_batch(
        &db,
        &["--input", input.to_str().unwrap(), "--chunk-points", "16"],
    );
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(again.summary()["tasks_done"], 1);
    assert_eq!(again.summary()["tasks_skipped"], 3);
    assert_eq!(db.scalar("SELECT status FROM dead_letters"), "resolved");
    assert_eq!(table(&db), expected(&input, "ssp126"));
}

/// A small valid file, changed by `edit`, for the bad-input cases.
fn small_file(dir: &TempDir, name: &str, edit: impl FnOnce(&mut Spec)) -> PathBuf {
    let days = 40;
    let mut spec = Spec::daily(
        Grid::LatLon {
            lats: vec![35.0, 36.0],
            lons: vec![127.0, 128.0],
        },
        "2030-01-01",
        days,
        None,
    );
    spec.experiment_id = Some("ssp245".into());
    spec.vars = vec![
        Var::f32("tasmax", "K", vec![300.0; days * 4]),
        Var::f32("tasmin", "K", vec![280.0; days * 4]),
        Var::f32("pr", "kg m-2 s-1", vec![1e-5; days * 4]),
    ];
    edit(&mut spec);
    let path = dir.path(name);
    spec.write(&path);
    path
}

#[test]
fn bad_input_exits_65_naming_file_and_variable_and_writes_nothing() {
    let db = TestDb::migrated("hazard_bad_input");
    let dir = TempDir::new("bad-input");
    let good = small_file(&dir, "good.nc", |_| {});
    let not_nc = dir.path("notes.nc");
    std::fs::write(&not_nc, "not a NetCDF file\n".repeat(50)).unwrap();
    let truncated = dir.path("truncated.nc");
    let bytes = std::fs::read(demo().join("ssp126.nc")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let units = small_file(&dir, "units.nc", |s| {
        s.vars[2].units = Some("furlongs/fortnight".into())
    });
    let no_time = small_file(&dir, "notime.nc", |s| {
        s.grid = Grid::NoTime {
            lats: vec![35.0, 36.0],
            lons: vec![127.0, 128.0],
        };
        s.vars = vec![
            Var::f32("tasmax", "K", vec![300.0; 4]),
            Var::f32("tasmin", "K", vec![280.0; 4]),
            Var::f32("pr", "kg m-2 s-1", vec![1e-5; 4]),
        ];
    });
    let calendar = small_file(&dir, "lunar.nc", |s| s.calendar = Some("lunar".into()));
    let missing = dir.path("missing.nc");

    let cases: Vec<(PathBuf, Vec<&str>, &str)> = vec![
        (missing.clone(), vec![], "file not found"),
        (not_nc.clone(), vec![], "not a NetCDF file"),
        (truncated.clone(), vec![], "truncated"),
        (
            good.clone(),
            vec!["--pr-var", "precip"],
            "variable \"precip\": variable not found",
        ),
        (
            units.clone(),
            vec![],
            "variable \"pr\": unknown units \"furlongs/fortnight\"",
        ),
        (no_time.clone(), vec![], "no time axis"),
        (calendar.clone(), vec![], "unsupported calendar \"lunar\""),
    ];
    for (bad, extra, says) in cases {
        // The good file comes first: validation of every input precedes any write.
        let mut args = vec!["--input", good.to_str().unwrap(), bad.to_str().unwrap()];
        if bad == good {
            args.truncate(2);
        }
        args.extend(extra);
        let done = run_batch(&db, &args);
        assert_eq!(done.code, 65, "{}: {}", bad.display(), done.all_output());
        let error = done.summary()["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(bad.to_str().unwrap()),
            "names the file: {error}"
        );
        assert!(error.contains(says), "expected {says:?} in: {error}");
        assert_eq!(
            db.count("SELECT count(*) FROM hazard_results"),
            0,
            "{error}"
        );
        assert_eq!(db.count("SELECT count(*) FROM grid_points"), 0, "{error}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM job_runs WHERE status = 'failed' AND exit_code = 65"),
        7
    );
}

// ---- datasets: ESGF / CORDEX downloads (tests/fixtures/datasets, tools/fixtures/make_dataset_fixtures.py) ----

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets")
}

/// (model, member, lat, lon, risk_type, year) → xclim's value on the joined series (None: NaN).
type Expected = BTreeMap<(String, String, String, String, String, i32), Option<f64>>;

fn xclim_expected() -> Expected {
    let text = std::fs::read_to_string(fixtures().join("expected.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let key = (
                f[0].to_string(),
                f[1].to_string(),
                // As Postgres prints float8 (shortest round trip, like Rust).
                f[2].parse::<f64>().unwrap().to_string(),
                f[3].parse::<f64>().unwrap().to_string(),
                f[4].to_string(),
                f[5].parse().unwrap(),
            );
            (key, (!f[6].is_empty()).then(|| f[6].parse().unwrap()))
        })
        .collect()
}

/// The `hazard_values` view, the reading contract: (model, member, lat, lon, risk, year) → value.
fn hazard_values(
    db: &TestDb,
    scenario: &str,
) -> BTreeMap<(String, String, String, String, String, i32), f64> {
    let rows = db.rows(&format!(
        "SELECT model, member, lat::text, lon::text, risk_type, year, value FROM hazard_values WHERE scenario = '{scenario}'"
    ));
    let n = rows.len();
    let map: BTreeMap<_, _> = rows
        .into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap();
            (
                (s(0), s(1), s(2), s(3), s(4), s(5).parse().unwrap()),
                s(6).parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(map.len(), n, "one row per value in hazard_values");
    map
}

/// Counts identical, amounts within 1e-4 relative (as tests/hazard_fixtures.rs); a NaN of
/// xclim's is no row.
fn assert_matches_xclim(
    want: &Expected,
    got: &BTreeMap<(String, String, String, String, String, i32), f64>,
) {
    for (key, value) in want {
        match (value, got.get(key)) {
            (None, None) => {}
            (Some(e), Some(g))
                if key.4 == "extreme_heat" || key.4 == "extreme_cold" || key.4 == "drought" =>
            {
                assert_eq!(g, e, "{key:?}")
            }
            (Some(e), Some(g)) => assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1e-300),
                "{key:?}: {g} vs xclim {e}"
            ),
            (e, g) => panic!("{key:?}: stored {g:?}, xclim {e:?}"),
        }
    }
}

#[test]
fn a_cordex_simulation_is_named_by_its_driving_and_regional_model() {
    let db = TestDb::migrated("hazard_cordex");
    let dir = fixtures().join("cordex");
    let done = run_batch(&db, &["--input", dir.to_str().unwrap()]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let mut want = xclim_expected();
    want.retain(|k, _| k.0 == "MPI-M-MPI-ESM-LR/CLMcom-CCLM4-8-17" && k.1 == "r1i1p1");
    let got = hazard_values(&db, "rcp85");
    assert_eq!(got.len(), want.values().filter(|v| v.is_some()).count());
    assert_matches_xclim(&want, &got);
    assert_eq!(
        db.scalar("SELECT scenario || ' ' || model || ' ' || member || ' ' || grid || ' ' || convention FROM datasets"),
        "rcp85 MPI-M-MPI-ESM-LR/CLMcom-CCLM4-8-17 r1i1p1 EUR-11 CORDEX"
    );
}

#[test]
fn a_download_in_two_folders_keeps_every_dataset_each_equal_to_xclim_on_its_joined_series() {
    let db = TestDb::migrated("hazard_datasets");
    let (d1, d2) = (fixtures().join("download1"), fixtures().join("download2"));
    let (d1, d2) = (d1.to_str().unwrap(), d2.to_str().unwrap());

    // The plan names the datasets and what one of them cannot compute.
    let plan = run_batch(&db, &["--input", d1, "--input", d2, "--dry-run"]);
    assert_eq!(plan.code, 0, "{}", plan.all_output());
    for says in [
        "dataset ssp245 MODEL-A r1i1p1f1 gn (CMIP6): 6 file(s)",
        "dataset ssp245 MODEL-A r2i1p1f1 gn (CMIP6): 1 file(s)",
        "1 missing day(s) of tasmax",
        "dataset ssp245 MODEL-B r1i1p1f1 gn (ESGF file name): 6 file(s)",
        "dataset ssp245 MODEL-C r1i1p1f1 gn: not computed: drought, urban_flood, river_flood (no file holds pr)",
    ] {
        assert!(plan.stdout.contains(says), "{says:?} in:\n{}", plan.stdout);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM datasets"),
        0,
        "a dry run writes nothing"
    );

    let done = run_batch(&db, &["--input", d1, "--input", d2]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let summary = done.summary();
    assert_eq!(summary["counters"]["datasets"], 4);
    let lacking = &summary["counters"]["not_computed"];
    assert_eq!(lacking.as_array().unwrap().len(), 1, "{lacking}");
    assert_eq!(lacking[0]["model"], "MODEL-C");
    assert_eq!(
        lacking[0]["hazards"],
        serde_json::json!(["drought", "urban_flood", "river_flood"])
    );

    let mut want = xclim_expected();
    want.retain(|k, _| k.0.starts_with("MODEL-"));
    let with_value = want.values().filter(|v| v.is_some()).count();
    let got = hazard_values(&db, "ssp245");
    // Every value is there: none lost, none overwritten by another model or member.
    assert_eq!(got.len(), with_value, "rows in hazard_values");
    assert_eq!(summary["rows_written"], with_value);
    assert_eq!(
        db.count("SELECT count(DISTINCT (model, member)) FROM hazard_values"),
        4
    );
    assert_matches_xclim(&want, &got);
    // The planted cases: a dry spell and an Rx5day window across the file boundary of MODEL-A
    // r1, and the missing day of MODEL-A r2 (no 2016 value at all).
    let key = |member: &str, lat: &str, lon: &str, risk: &str, year: i32| {
        (
            "MODEL-A".to_string(),
            member.to_string(),
            lat.to_string(),
            lon.to_string(),
            risk.to_string(),
            year,
        )
    };
    assert!(got[&key("r1i1p1f1", "35", "126.5", "drought", 2016)] >= 46.0);
    assert!((got[&key("r1i1p1f1", "35", "127.5", "river_flood", 2016)] - 450.0).abs() < 0.01);
    assert!(!got.contains_key(&key("r2i1p1f1", "35", "126.5", "drought", 2016)));
    assert!(got.contains_key(&key("r2i1p1f1", "35", "126.5", "drought", 2015)));

    // Identity and provenance, for operators.
    let listed = run({
        let mut c = support::jobctl(&db.url);
        c.args(["datasets", "--json"]);
        c
    });
    assert_eq!(listed.code, 0, "{}", listed.all_output());
    let list: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4);
    let b = list.iter().find(|d| d["model"] == "MODEL-B").unwrap();
    assert_eq!(b["convention"], "ESGF file name");
    assert_eq!(b["files"].as_array().unwrap().len(), 6);
    let a1 = list
        .iter()
        .find(|d| d["model"] == "MODEL-A" && d["member"] == "r1i1p1f1")
        .unwrap();
    assert_eq!(a1["attributes"]["source_id"], "MODEL-A");
    assert_eq!(
        a1["hazard_rows"],
        got.keys()
            .filter(|k| k.0 == "MODEL-A" && k.1 == "r1i1p1f1")
            .count()
    );

    // Unchanged: the whole download is skipped.
    let again = run_batch(&db, &["--input", d1, "--input", d2]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(
        again.summary()["status"],
        "skipped",
        "{}",
        again.all_output()
    );
}

#[test]
fn conflicting_overlapping_days_exit_65_naming_both_files_and_the_date_and_write_nothing() {
    let db = TestDb::migrated("hazard_conflict");
    let dir = fixtures().join("conflict");
    let done = run_batch(&db, &["--input", dir.to_str().unwrap()]);
    assert_eq!(done.code, 65, "{}", done.all_output());
    let error = done.summary()["error"].as_str().unwrap().to_string();
    for says in [
        "pr_day_MODEL-D_ssp245_r1i1p1f1_gn_20150101-20161231.nc",
        "pr_day_MODEL-D_ssp245_r1i1p1f1_gn_20161227-20171231.nc",
        "first conflicting date 2016-12-29",
    ] {
        assert!(error.contains(says), "{says:?} in: {error}");
    }
    assert_eq!(db.count("SELECT count(*) FROM hazard_results"), 0);
    assert_eq!(db.count("SELECT count(*) FROM datasets"), 0);
    assert_eq!(db.count("SELECT count(*) FROM grid_points"), 0);
}

#[test]
fn labels_filter_name_and_relabel_and_a_relabelled_input_is_recomputed() {
    let db = TestDb::migrated("hazard_labels");
    let d2 = fixtures().join("download2");
    let d2 = d2.to_str().unwrap();

    // A filter that matches nothing is a usage error, never a silent success.
    let none = run_batch(&db, &["--input", d2, "--scenario", "ssp585"]);
    assert_eq!(none.code, 2, "{}", none.all_output());
    let error = none.summary()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("--scenario ssp585 matches no input"),
        "{error}"
    );
    assert!(
        error.contains("ssp245"),
        "names what the inputs hold: {error}"
    );
    let years = run_batch(&db, &["--input", d2, "--years", "2040..2050"]);
    assert_eq!(years.code, 2, "{}", years.all_output());
    let pattern = fixtures().join("download2/*_MODEL-Z_*.nc");
    let nothing = run_batch(&db, &["--input", pattern.to_str().unwrap()]);
    assert_eq!(nothing.code, 2, "{}", nothing.all_output());
    assert_eq!(db.count("SELECT count(*) FROM hazard_results"), 0);

    // A pattern, and --model selecting one dataset of two.
    let pattern = fixtures().join("download2/*_day_MODEL-?_ssp245_*.nc");
    let b = run_batch(
        &db,
        &["--input", pattern.to_str().unwrap(), "--model", "MODEL-B"],
    );
    assert_eq!(b.code, 0, "{}", b.all_output());
    assert_eq!(b.summary()["counters"]["datasets"], 1, "{}", b.all_output());
    let b_rows = db.count("SELECT count(*) FROM hazard_values WHERE model = 'MODEL-B'");
    assert!(b_rows > 0);
    assert_eq!(db.count("SELECT count(*) FROM hazard_values"), b_rows);
    let skipped = run_batch(&db, &["--input", d2, "--model", "MODEL-B"]);
    assert_eq!(
        skipped.summary()["status"],
        "skipped",
        "{}",
        skipped.all_output()
    );

    // Relabelled: recomputed under the new identity, not skipped; the old rows stay.
    let relabelled = run_batch(&db, &["--input", d2, "--model", "MODEL-B=MODEL-B-v2"]);
    assert_eq!(relabelled.code, 0, "{}", relabelled.all_output());
    assert_eq!(
        relabelled.summary()["status"],
        "succeeded",
        "{}",
        relabelled.all_output()
    );
    assert!(
        relabelled.stderr.contains("relabelled"),
        "logged: {}",
        relabelled.stderr
    );
    assert_eq!(
        db.count("SELECT count(*) FROM hazard_values WHERE model = 'MODEL-B-v2'"),
        b_rows
    );
    assert_eq!(
        db.count("SELECT count(*) FROM hazard_values WHERE model = 'MODEL-B'"),
        b_rows
    );
}

#[test]
fn inputs_are_never_split_on_commas_and_the_environment_takes_colon_separated_inputs() {
    let db = TestDb::migrated("hazard_input_paths");
    let dir = TempDir::new("comma");
    let odd = dir.path("runs,2026");
    std::fs::create_dir_all(&odd).unwrap();
    let name = "MODEL-A_r2i1p1f1_ssp245_all-variables.nc";
    std::fs::copy(fixtures().join("download1").join(name), odd.join(name)).unwrap();
    let done = run_batch(
        &db,
        &[
            "--input",
            odd.to_str().unwrap(),
            "--hazards",
            "extreme_heat",
        ],
    );
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert!(db.count("SELECT count(*) FROM hazard_values WHERE member = 'r2i1p1f1'") > 0);

    let mut c = batch(&db);
    c.env(
        "CLIMATE_JOBS_INPUT",
        format!(
            "{}:{}",
            fixtures().join("download2").display(),
            odd.display()
        ),
    )
    .args(["--hazards", "extreme_cold", "--dry-run"]);
    let planned = run(c);
    assert_eq!(planned.code, 0, "{}", planned.all_output());
    assert!(
        planned.stdout.contains("MODEL-A r2i1p1f1"),
        "{}",
        planned.stdout
    );
    assert!(
        planned.stdout.contains("MODEL-B r1i1p1f1"),
        "{}",
        planned.stdout
    );
}

#[test]
fn migrating_a_schema_3_database_keeps_every_row_assigned_to_a_dataset() {
    let db = TestDb::at_version("hazard_migrate_from_3", 3);
    db.rows(
        "INSERT INTO grid_points (id, lat, lon) VALUES (1, 35, 127), (2, 36, 128);
         INSERT INTO hazard_results (grid_id, scenario, risk_type, year, value, score, run_id)
         SELECT g, s, r, y, g * 10 + y - 2000, 50, '00000000-0000-7000-8000-000000000001'
           FROM generate_series(1, 2) g, unnest(ARRAY['ssp126', 'ssp585']) s,
                unnest(ARRAY['drought', 'extreme_heat']) r, generate_series(2021, 2023) y;
         INSERT INTO probability_results (grid_id, scenario, risk_type, year, method, sample_size, bin_edges,
                bin_probs, return_level_10, return_level_50, return_level_100, run_id)
         VALUES (1, 'ssp585', 'drought', 2022, 'empirical', 3, '{1,2}', '{0.2,0.3,0.5}', 1, 2, 3,
                 '00000000-0000-7000-8000-000000000001');
         INSERT INTO input_files (path, job, fingerprint, scope, scenario, points, rows_written, run_id)
         VALUES ('/data/cmip6/ssp585.nc', 'hazard-timeseries-batch', 'v1:1:2:3', 'hazards=all', 'ssp585', 2, 12,
                 '00000000-0000-7000-8000-000000000001');
         INSERT INTO regions (code, name, lat, lon) VALUES ('KR-11', 'Seoul', 35.1, 127.1);
         INSERT INTO region_hazard_cache_state (generation, rows, source_versions, run_id)
         VALUES (7, 1, '{}', '00000000-0000-7000-8000-000000000001');
         INSERT INTO region_hazard_cache_rows (generation, region_code, scenario, risk_type, year, grid_id,
                distance_km, value, score)
         VALUES (7, 'KR-11', 'ssp585', 'drought', 2022, 1, 14.2, 32, 50);",
    );
    let before = db.scalar(
        "SELECT md5(string_agg(concat_ws('|', grid_id, scenario, risk_type, year, value, score), ',' ORDER BY grid_id, scenario, risk_type, year)) FROM hazard_results",
    );

    db.migrate_the_rest(3);

    // Every row kept, and each belongs to the dataset of the scenario it was written under.
    assert_eq!(db.yearly_count("SELECT count(*) FROM hazard_yearly"), 24);
    assert_eq!(
        db.yearly_scalar(
            "SELECT md5(string_agg(concat_ws('|', grid_id, scenario, risk_type, year, value, score), ',' ORDER BY grid_id, scenario, risk_type, year)) FROM hazard_yearly"
        ),
        before
    );
    assert_eq!(
        db.scalar("SELECT string_agg(scenario || ':' || model || ':' || member, ',' ORDER BY scenario) FROM datasets"),
        "ssp126:unknown:unknown,ssp585:unknown:unknown"
    );
    assert_eq!(db.count("SELECT count(*) FROM hazard_values"), 24);
    assert_eq!(
        db.scalar("SELECT f.path FROM dataset_files f JOIN datasets d ON d.id = f.dataset_id WHERE d.scenario = 'ssp585'"),
        "/data/cmip6/ssp585.nc"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM probability_results p JOIN datasets d ON d.id = p.dataset_id AND d.scenario = 'ssp585'"),
        1
    );
    assert_eq!(
        db.scalar("SELECT region_code || ':' || scenario || ':' || model || ':' || member || ':' || value FROM region_hazard_cache"),
        "KR-11:ssp585:unknown:unknown:32"
    );
}

#[test]
fn migrating_a_schema_4_database_turns_yearly_rows_into_series_keeping_every_value_and_gap() {
    let db = TestDb::at_version("hazard_migrate_from_4", 4);
    // Schema-4 rows: two datasets, two points, two hazards, 2021-2025 with
    // 2023 missing for (point 2, drought) and two runs' ids mixed.
    db.rows(
        "INSERT INTO grid_points (id, lat, lon) VALUES (1, 35, 127), (2, 36, 128);
         INSERT INTO datasets (id, scenario, model, member, convention) VALUES
                (1, 'ssp126', 'M-A', 'r1i1p1f1', 'CMIP6'), (2, 'ssp585', 'M-A', 'r1i1p1f1', 'CMIP6');
         INSERT INTO hazard_results (grid_id, scenario, risk_type, year, value, score, run_id, dataset_id)
         SELECT g, CASE d WHEN 1 THEN 'ssp126' ELSE 'ssp585' END, r, y, g * 100 + d * 10 + y - 2020 + 0.25,
                (y - 2000) * 2, CASE WHEN y < 2024 THEN '00000000-0000-7000-8000-000000000001'::uuid
                                     ELSE '00000000-0000-7000-8000-000000000002'::uuid END, d
           FROM generate_series(1, 2) g, generate_series(1, 2) d,
                unnest(ARRAY['drought', 'extreme_heat']) r, generate_series(2021, 2025) y
          WHERE NOT (g = 2 AND r = 'drought' AND y = 2023);",
    );
    let values = "SELECT md5(string_agg(concat_ws('|', lat, lon, scenario, model, member, risk_type, year, value, score), ','
                                        ORDER BY lat, lon, scenario, risk_type, year)) FROM hazard_values";
    let before = db.scalar(values);
    let before_count = db.count("SELECT count(*) FROM hazard_values");
    assert_eq!(before_count, 2 * 2 * 2 * 5 - 2);
    let version =
        db.scalar("SELECT version FROM data_versions WHERE table_name = 'hazard_results'");

    db.migrate_the_rest(4);
    // The readers' view has the same rows, value for value.
    assert_eq!(db.count("SELECT count(*) FROM hazard_values"), before_count);
    assert_eq!(db.scalar(values), before);
    // One row per (grid point, dataset, hazard); the missing year is a NULL element.
    assert_eq!(db.count("SELECT count(*) FROM hazard_results"), 8);
    assert_eq!(
        db.scalar(
            "SELECT first_year || ':' || array_to_string(values_by_year, ',', 'NULL') || ':' || array_to_string(scores_by_year, ',', 'NULL')
               FROM hazard_results WHERE grid_id = 2 AND dataset_id = 1 AND risk_type = 'drought'"
        ),
        "2021:211.25,212.25,NULL,214.25,215.25:42,44,NULL,48,50"
    );
    // The same values are not a change for probability-batch or cache-refresh.
    assert_eq!(
        db.scalar("SELECT version FROM data_versions WHERE table_name = 'hazard_results'"),
        version
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'hazard_results_yearly'"),
        0
    );
}

#[test]
fn files_of_one_dataset_on_different_grids_exit_65_naming_both() {
    let db = TestDb::migrated("hazard_grid_mismatch");
    let dir = TempDir::new("grid-mismatch");
    let days = 40;
    let t = small_file(
        &dir,
        "tasmax_day_M_ssp245_r1i1p1f1_gn_20300101-20300209.nc",
        |s| {
            s.vars = vec![Var::f32("tasmax", "K", vec![300.0; days * 4])];
        },
    );
    let p = small_file(
        &dir,
        "pr_day_M_ssp245_r1i1p1f1_gn_20300101-20300209.nc",
        |s| {
            s.grid = Grid::LatLon {
                lats: vec![35.0, 36.0, 37.0],
                lons: vec![127.0],
            };
            s.vars = vec![Var::f32("pr", "kg m-2 s-1", vec![1e-5; days * 3])];
        },
    );
    let dir_path = t.parent().unwrap();
    let done = run_batch(&db, &["--input", dir_path.to_str().unwrap()]);
    assert_eq!(done.code, 65, "{}", done.all_output());
    let error = done.summary()["error"].as_str().unwrap().to_string();
    assert!(error.contains(t.to_str().unwrap()), "{error}");
    assert!(error.contains(p.to_str().unwrap()), "{error}");
    assert!(error.contains("must share the grid"), "{error}");
    assert_eq!(db.count("SELECT count(*) FROM hazard_results"), 0);
}
