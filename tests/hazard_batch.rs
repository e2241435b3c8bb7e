//! hazard-timeseries-batch end to end: the real binary, real NetCDF files
//! (`jobctl demo-data` output and hand-made bad files), a real PostgreSQL.

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use climate_jobs::climate::{ClimateFile, VariableNames, annual_indices};
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
    db.rows(
        "SELECT g.lat::text, g.lon::text, h.scenario, h.risk_type, h.year, h.value
           FROM hazard_results h JOIN grid_points g ON g.id = h.grid_id",
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
    db.scalar(
        "SELECT md5(string_agg(grid_id || ':' || scenario || ':' || risk_type || ':' || year || ':' || value || ':' || score, ','
                               ORDER BY grid_id, scenario, risk_type, year)) FROM hazard_results",
    )
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
        db.count(&format!(
            "SELECT count(*) FROM hazard_results WHERE run_id = '{second_id}'"
        )),
        0
    );

    let forced = run_batch(&db, &["--input", input, "--chunk-points", "16", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.all_output());
    let forced_id = forced.summary()["run_id"].as_str().unwrap().to_string();
    assert_eq!(checksum(&db), before, "--force rewrites identical rows");
    assert_eq!(
        db.count("SELECT count(*) FROM hazard_results"),
        want.len() as i64
    );
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM hazard_results WHERE run_id = '{forced_id}'"
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
        db.scalar("SELECT min(year) || '-' || max(year) FROM hazard_results"),
        "2022-2023"
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT grid_id) FROM hazard_results"),
        10
    );
    assert_eq!(
        db.scalar("SELECT string_agg(DISTINCT risk_type, ',') FROM hazard_results"),
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
        db.count("SELECT count(DISTINCT grid_id) FROM hazard_results"),
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
        let rows = db.count(&format!(
            "SELECT count(*) FROM hazard_results h JOIN grid_points g ON g.id = h.grid_id WHERE g.lat = {lat} AND g.lon = {lon}"
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
