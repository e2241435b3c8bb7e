//! probability-batch end to end: hazard rows from the real hazard batch on
//! demo data, the real binary, a real PostgreSQL.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use climate_jobs::jobs::probability_batch::{SeriesRow, fit_series};
use climate_jobs::probability::default_configs;
use support::{Finished, TestDb, run};

/// 20 points, 2021–2060 (40 years: windows of 30 shift at both ends), one scenario.
fn demo() -> PathBuf {
    support::demo_data("prob-demo", 20, "2021..2060", "ssp370")
}

fn job(db: &TestDb, binary: &str, args: &[&str]) -> Command {
    support::job(&db.url, binary, args)
}

fn probability(db: &TestDb, args: &[&str]) -> Command {
    job(db, env!("CARGO_BIN_EXE_probability-batch"), args)
}

fn with_hazard_rows(name: &str) -> TestDb {
    let db = TestDb::migrated(name);
    let input = demo().join("ssp370.nc");
    let done = run(job(
        &db,
        env!("CARGO_BIN_EXE_hazard-timeseries-batch"),
        &["--input", input.to_str().unwrap()],
    ));
    assert_eq!(done.code, 0, "{}", done.all_output());
    db
}

fn checksum(db: &TestDb) -> String {
    db.scalar(
        "SELECT md5(string_agg(concat_ws('|', grid_id, scenario, risk_type, year, method, sample_size, bin_edges, bin_probs,
                                         return_level_10, return_level_50, return_level_100, gev_c, gev_loc, gev_scale), ';'
                               ORDER BY grid_id, scenario, risk_type, year)) FROM probability_values",
    )
}

/// The stored hazard values `filter` (a WHERE clause or "") selects, as the pure fit's input
/// rows, in its order.
fn hazard_series_rows(db: &TestDb, filter: &str) -> Vec<SeriesRow> {
    db.yearly_rows(&format!(
        "SELECT grid_id, dataset_id, scenario, risk_type, year, value FROM hazard_yearly {filter}
          ORDER BY 1, 2, 4, 5"
    ))
    .into_iter()
    .map(|r| {
        let s = |i: usize| r[i].clone().unwrap();
        (
            s(0).parse().unwrap(),
            s(1).parse().unwrap(),
            s(2),
            s(3),
            s(4).parse().unwrap(),
            s(5).parse().unwrap(),
        )
    })
    .collect()
}

#[test]
fn every_series_year_gets_a_row_equal_to_the_pure_fit_with_bins_summing_to_one() {
    let db = with_hazard_rows("prob_rows");
    let done = run(probability(&db, &["--chunk-points", "8"]));
    assert_eq!(done.code, 0, "{}", done.all_output());
    let summary = done.summary();
    assert_eq!(summary["tasks_done"], 3, "20 points in chunks of 8");

    // What the pure code computes from the same hazard rows.
    let series = hazard_series_rows(&db, "");
    let (want, too_short) = fit_series(&series, &default_configs(), None, 30, 20).unwrap();
    assert_eq!(summary["rows_written"], want.len());
    assert_eq!(summary["counters"]["windows_too_short"], too_short);
    assert_eq!(
        db.count("SELECT count(*) FROM probability_values"),
        want.len() as i64
    );
    // Stored as one row per grid point, dataset and hazard.
    assert_eq!(db.count("SELECT count(*) FROM probability_results"), 20 * 5);
    // 20 points × 5 hazards × 40 years, less the all-degenerate-free cases: every year has a row.
    assert!(want.len() >= 20 * 5 * 38, "{}", want.len());
    for w in want.iter().step_by(97) {
        let got = &db.rows(&format!(
            "SELECT method, sample_size, return_level_100, array_to_string(bin_probs, ',') FROM probability_values
              WHERE grid_id = {} AND scenario = '{}' AND risk_type = '{}' AND year = {}",
            w.grid_id, w.scenario, w.risk_type, w.year
        ))[0];
        assert_eq!(got[0].as_deref(), Some(w.method), "{w:?}");
        assert_eq!(
            got[1].as_deref().unwrap().parse::<i16>().unwrap(),
            w.sample_size
        );
        let rl: f64 = got[2].as_deref().unwrap().parse().unwrap();
        assert!(
            (rl - w.return_levels[2]).abs() <= 1e-9 * rl.abs().max(1.0),
            "{rl} vs {:?}",
            w.return_levels
        );
        let probs: Vec<f64> = got[3]
            .as_deref()
            .unwrap()
            .split(',')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(probs.len(), w.bin_probs.len());
        for (a, b) in probs.iter().zip(&w.bin_probs) {
            assert!((a - b).abs() <= 1e-12, "{probs:?} vs {:?}", w.bin_probs);
        }
    }
    // Every row: bins sum to 1 within 1e-9, nothing is NaN.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM probability_values
              WHERE abs((SELECT sum(p) FROM unnest(bin_probs) p) - 1) > 1e-9
                 OR 'NaN' = ANY(bin_probs) OR 'NaN' IN (return_level_10, return_level_50, return_level_100)
                 OR 'NaN' IN (coalesce(gev_c, 0), coalesce(gev_loc, 0), coalesce(gev_scale, 0))"
        ),
        0
    );
    assert_eq!(
        db.scalar("SELECT string_agg(DISTINCT method || ':' || risk_type, ',' ORDER BY method || ':' || risk_type) FROM probability_values WHERE method <> 'degenerate'"),
        "empirical:extreme_cold,empirical:extreme_heat,gev:drought,gev:river_flood,gev:urban_flood"
    );
}

#[test]
fn a_rerun_on_unchanged_hazard_rows_writes_nothing_and_force_rewrites_identical_rows() {
    let db = with_hazard_rows("prob_rerun");
    assert_eq!(run(probability(&db, &[])).code, 0);
    let before = checksum(&db);
    let count = db.count("SELECT count(*) FROM probability_values");
    let series = db.count("SELECT count(*) FROM probability_results");

    let again = run(probability(&db, &[]));
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(again.summary()["status"], "skipped");
    assert_eq!(again.summary()["rows_written"], 0);

    let forced: Finished = run(probability(&db, &["--force"]));
    assert_eq!(forced.code, 0, "{}", forced.all_output());
    assert_eq!(forced.summary()["rows_written"], count);
    assert_eq!(checksum(&db), before);
    assert_eq!(db.count("SELECT count(*) FROM probability_values"), count);
    assert_eq!(db.count("SELECT count(*) FROM probability_results"), series);
    let id = forced.summary()["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM probability_results WHERE run_id = '{id}'"
        )),
        series
    );

    // New hazard rows make the next run recompute.
    let input = demo().join("ssp370.nc");
    let rewrite = run(job(
        &db,
        env!("CARGO_BIN_EXE_hazard-timeseries-batch"),
        &["--input", input.to_str().unwrap(), "--force"],
    ));
    assert_eq!(rewrite.code, 0);
    assert_eq!(run(probability(&db, &[])).summary()["status"], "succeeded");
}

/// The view's rows other than those of `year`, as one checksum.
fn checksum_without(db: &TestDb, year: i32) -> String {
    db.scalar(&format!(
        "SELECT md5(string_agg(concat_ws('|', grid_id, scenario, risk_type, year, method, sample_size, bin_edges, bin_probs,
                                         return_level_10, return_level_50, return_level_100, gev_c, gev_loc, gev_scale), ';'
                               ORDER BY grid_id, scenario, risk_type, year)) FROM probability_values WHERE year <> {year}"
    ))
}

#[test]
fn a_years_subset_merges_into_the_stored_series_keeping_every_other_year() {
    let db = with_hazard_rows("prob_years_merge");
    assert_eq!(run(probability(&db, &["--chunk-points", "8"])).code, 0);
    let before = checksum_without(&db, 2055);
    let count = db.count("SELECT count(*) FROM probability_values");
    let series = db.count("SELECT count(*) FROM probability_results");
    let subset =
        db.count("SELECT count(*) FROM probability_values WHERE year BETWEEN 2028 AND 2032");
    assert!(subset > 0);
    // Mark one year inside the subset and one outside in every series.
    db.rows(
        "UPDATE probability_results SET return_level_100_by_year[2030 - first_year + 1] = -1,
                                        return_level_100_by_year[2055 - first_year + 1] = -1",
    );

    let done = run(probability(
        &db,
        &["--years", "2028..2032", "--chunk-points", "8"],
    ));
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert_eq!(done.summary()["rows_written"], subset);
    // The subset's years are recomputed (2030 is right again), the other
    // years are kept as they were (2055 still marked), nothing is lost.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM probability_values WHERE year = 2030 AND return_level_100 = -1"
        ),
        0
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM probability_values WHERE year = 2055 AND return_level_100 = -1"
        ),
        db.count("SELECT count(*) FROM probability_values WHERE year = 2055")
    );
    assert!(db.count("SELECT count(*) FROM probability_values WHERE year = 2055") > 0);
    assert_eq!(checksum_without(&db, 2055), before);
    assert_eq!(db.count("SELECT count(*) FROM probability_values"), count);
    assert_eq!(db.count("SELECT count(*) FROM probability_results"), series);
    let id = done.summary()["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM probability_results WHERE run_id = '{id}'"
        )),
        series
    );
}

#[test]
fn failed_and_hung_chunks_are_dead_lettered_and_dlq_reprocess_redoes_them() {
    let db = with_hazard_rows("prob_faults");
    let mut c = probability(&db, &["--chunk-points", "5", "--task-timeout", "2s"]);
    c.env("CLIMATE_JOBS_FAULT", "fail-task=1,hang-task=2");
    let done = run(c);
    assert_eq!(done.code, 3, "{}", done.all_output());
    assert_eq!(done.summary()["tasks_failed"], 1);
    assert_eq!(done.summary()["tasks_timed_out"], 1);
    let letters = db.rows("SELECT error_kind, payload->'grid_ids' FROM dead_letters ORDER BY id");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(
        db.count("SELECT count(DISTINCT grid_id) FROM probability_results"),
        10
    );

    let clean = with_hazard_rows("prob_faults_clean");
    assert_eq!(run(probability(&clean, &[])).code, 0);

    let repair = run(job(&db, env!("CARGO_BIN_EXE_dlq-reprocess"), &[]));
    assert_eq!(repair.code, 0, "{}", repair.all_output());
    assert_eq!(repair.summary()["tasks_done"], 2);
    assert_eq!(
        db.count("SELECT count(*) FROM dead_letters WHERE status = 'resolved'"),
        2
    );
    assert_eq!(checksum(&db), checksum(&clean));
}

/// Two models and two members of one experiment (tests/fixtures/datasets): each dataset is
/// fitted on its own series only.
#[test]
fn each_dataset_is_fitted_on_its_own_series_never_mixing_models_or_members() {
    let db = TestDb::migrated("prob_datasets");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets");
    let done = run(job(
        &db,
        env!("CARGO_BIN_EXE_hazard-timeseries-batch"),
        &[
            "--input",
            fixtures.join("download1").to_str().unwrap(),
            "--input",
            fixtures.join("download2").to_str().unwrap(),
        ],
    ));
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert_eq!(
        db.count("SELECT count(DISTINCT model) FROM hazard_values"),
        3
    );
    // Three years per dataset: windows of 3, at least 2 values.
    let fitted = run(probability(&db, &["--window", "3", "--min-years", "2"]));
    assert_eq!(fitted.code, 0, "{}", fitted.all_output());
    assert_eq!(
        db.count("SELECT count(DISTINCT dataset_id) FROM probability_results"),
        4
    );
    // A window mixing the four datasets would hold up to 12 values.
    assert!(db.count("SELECT max(sample_size) FROM probability_values") <= 3);
    let ids: Vec<String> = db
        .rows("SELECT id FROM datasets ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    for id in ids {
        // The pure fit of this dataset's series alone.
        let series = hazard_series_rows(&db, &format!("WHERE dataset_id = {id}"));
        let (want, _) = fit_series(&series, &default_configs(), None, 3, 2).unwrap();
        assert!(!want.is_empty());
        let got = db.rows(&format!(
            "SELECT grid_id, risk_type, year, sample_size, return_level_100 FROM probability_values
              WHERE dataset_id = {id} ORDER BY grid_id, risk_type, year"
        ));
        assert_eq!(got.len(), want.len(), "dataset {id}");
        for (g, w) in got.iter().zip(&want) {
            let s = |i: usize| g[i].clone().unwrap();
            assert_eq!(
                (
                    s(0).parse::<i32>().unwrap(),
                    s(1),
                    s(2).parse::<i16>().unwrap()
                ),
                (w.grid_id, w.risk_type.clone(), w.year)
            );
            assert_eq!(s(3).parse::<i16>().unwrap(), w.sample_size, "{w:?}");
            let rl: f64 = s(4).parse().unwrap();
            assert!(
                (rl - w.return_levels[2]).abs() <= 1e-9 * rl.abs().max(1.0),
                "dataset {id}: {rl} vs {w:?}"
            );
        }
    }
}

#[test]
fn migrating_a_schema_7_database_turns_yearly_probability_rows_into_series_keeping_every_result() {
    let db = TestDb::at_version("prob_migrate_from_7", 7);
    // Schema-7 rows: two datasets, two points, a GEV and an empirical hazard,
    // 2021-2025 with 2023 missing for (point 2, drought) and two runs' ids.
    db.rows(
        "INSERT INTO grid_points (id, lat, lon) VALUES (1, 35, 127), (2, 36, 128);
         INSERT INTO datasets (id, scenario, model, member, convention) VALUES
                (1, 'ssp126', 'M-A', 'r1i1p1f1', 'CMIP6'), (2, 'ssp585', 'M-A', 'r1i1p1f1', 'CMIP6');
         INSERT INTO probability_results (grid_id, scenario, risk_type, year, method, sample_size, bin_edges,
                bin_probs, return_level_10, return_level_50, return_level_100, gev_c, gev_loc, gev_scale,
                run_id, dataset_id)
         SELECT g, CASE d WHEN 1 THEN 'ssp126' ELSE 'ssp585' END, r, y,
                CASE WHEN r = 'drought' THEN 'gev' ELSE 'empirical' END, 20 + y - 2021,
                CASE WHEN r = 'drought' THEN '{10,20,30}'::float8[] ELSE '{5,10}'::float8[] END,
                CASE WHEN r = 'drought' THEN ARRAY[0.125, 0.25, 0.5, 0.125 + (y - 2021) / 1e6]
                     ELSE ARRAY[0.5, 0.25, 0.25] END,
                g * 100 + y - 2020 + 0.5, g * 100 + y - 2020 + 1.5, g * 100 + y - 2020 + 2.5,
                CASE WHEN r = 'drought' THEN -0.1 * d END, CASE WHEN r = 'drought' THEN 30 + g END,
                CASE WHEN r = 'drought' THEN 5.5 END,
                CASE WHEN y < 2024 THEN '00000000-0000-7000-8000-000000000001'::uuid
                     ELSE '00000000-0000-7000-8000-000000000002'::uuid END, d
           FROM generate_series(1, 2) g, generate_series(1, 2) d,
                unnest(ARRAY['drought', 'extreme_heat']) r, generate_series(2021, 2025) y
          WHERE NOT (g = 2 AND r = 'drought' AND y = 2023);",
    );
    let values = "SELECT md5(string_agg(concat_ws('|', lat, lon, grid_id, scenario, model, member, dataset_id, risk_type,
                                                   year, method, gev_c, gev_loc, gev_scale, bin_edges, bin_probs,
                                                   return_level_10, return_level_50, return_level_100, sample_size,
                                                   pg_typeof(year), pg_typeof(sample_size), pg_typeof(bin_probs)), ','
                                        ORDER BY grid_id, dataset_id, risk_type, year)) FROM probability_values";
    let before = db.scalar(values);
    let before_count = db.count("SELECT count(*) FROM probability_values");
    assert_eq!(before_count, 2 * 2 * 2 * 5 - 2);
    let columns =
        "SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position)
                     FROM information_schema.columns WHERE table_name = 'probability_values'";
    let before_columns = db.scalar(columns);
    let version =
        db.scalar("SELECT version FROM data_versions WHERE table_name = 'probability_results'");

    db.migrate_the_rest(7);
    // The readers' view: the same columns and rows, value for value.
    assert_eq!(db.scalar(columns), before_columns);
    assert_eq!(
        db.count("SELECT count(*) FROM probability_values"),
        before_count
    );
    assert_eq!(db.scalar(values), before);
    // One row per (grid point, dataset, hazard); the missing year is NULL in every array.
    assert_eq!(db.count("SELECT count(*) FROM probability_results"), 8);
    assert_eq!(
        db.scalar(
            "SELECT first_year || ':' || bin_count || ':' || array_to_string(method_by_year, ',', 'NULL') || ':'
                    || array_to_string(sample_size_by_year, ',', 'NULL') || ':'
                    || array_to_string(bin_probs_by_year[9:12], ',', 'NULL') || ':'
                    || array_to_string(gev_loc_by_year, ',', 'NULL') || ':' || run_id
               FROM probability_results WHERE grid_id = 2 AND dataset_id = 1 AND risk_type = 'drought'"
        ),
        "2021:4:gev,gev,NULL,gev,gev:20,21,NULL,23,24:NULL,NULL,NULL,NULL:32,32,NULL,32,32:00000000-0000-7000-8000-000000000002"
    );
    assert_eq!(
        db.scalar(
            "SELECT array_to_string(gev_c_by_year, ',', 'NULL') FROM probability_results
              WHERE grid_id = 1 AND dataset_id = 2 AND risk_type = 'extreme_heat'"
        ),
        "NULL,NULL,NULL,NULL,NULL"
    );
    // The same results are not a change for cache-refresh or site-risk-batch.
    assert_eq!(
        db.scalar("SELECT version FROM data_versions WHERE table_name = 'probability_results'"),
        version
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'probability_results_yearly'"),
        0
    );
}
