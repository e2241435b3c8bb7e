//! site-risk-batch end to end against a real PostgreSQL, and its parity
//! with CLIMADA (tests/fixtures/site_risk, made by
//! tools/fixtures/make_site_risk_fixtures.py with CLIMADA 6.1).

use crate::support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use climate_jobs::jobs::site_risk::assess_sites;
use climate_jobs::probability::GevParams;
use climate_jobs::risk::{parse_curves_csv, parse_sites_csv};
use climate_jobs::store::probability_results::merge_sql;
use climate_jobs::store::site_results::{DatasetKey, ProbabilityRecord, ProbabilitySeries};
use serde_json::Value;
use support::{TestDb, run};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/site_risk")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn sql_array(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("ARRAY[{}]::float8[]", items.join(","))
}

fn records(exp: &Value) -> Vec<ProbabilityRecord> {
    let mut out: Vec<ProbabilityRecord> = exp["probability_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let rl = f64s(&r["return_levels"]);
            ProbabilityRecord {
                grid_id: r["grid_id"].as_i64().unwrap() as i32,
                dataset: DatasetKey {
                    scenario: r["scenario"].as_str().unwrap().into(),
                    model: String::new(),
                    member: String::new(),
                },
                risk_type: r["risk_type"].as_str().unwrap().into(),
                year: r["year"].as_i64().unwrap() as i16,
                method: r["method"].as_str().unwrap().into(),
                bin_edges: f64s(&r["bin_edges"]),
                bin_probs: f64s(&r["bin_probs"]),
                return_levels: [rl[0], rl[1], rl[2]],
                gev: r["gev"].as_object().map(|g| GevParams {
                    c: g["c"].as_f64().unwrap(),
                    loc: g["loc"].as_f64().unwrap(),
                    scale: g["scale"].as_f64().unwrap(),
                }),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.grid_id, &a.dataset, &a.risk_type, a.year).cmp(&(
            b.grid_id,
            &b.dataset,
            &b.risk_type,
            b.year,
        ))
    });
    out
}

/// A migrated database with the fixture's grid points and probability rows.
fn with_probabilities(name: &str) -> TestDb {
    let db = TestDb::migrated(name);
    let exp = expected();
    for (id, ll) in exp["grid"].as_object().unwrap() {
        let ll = f64s(ll);
        db.rows(&format!(
            "INSERT INTO grid_points (id, lat, lon) VALUES ({id}, {:?}, {:?})",
            ll[0], ll[1]
        ));
    }
    for r in exp["probability_rows"].as_array().unwrap() {
        let rl = f64s(&r["return_levels"]);
        let gev = |k: &str| {
            r["gev"]
                .get(k)
                .and_then(Value::as_f64)
                .map(|x| format!("{x:?}"))
                .unwrap_or_else(|| "NULL".into())
        };
        let scenario = r["scenario"].as_str().unwrap();
        // Every fixture row belongs to one dataset per scenario.
        db.rows(&format!(
            "INSERT INTO datasets (scenario, model, member, grid, convention)
             VALUES ('{scenario}', 'FIXTURE-MODEL', 'r1i1p1f1', '', 'none') ON CONFLICT DO NOTHING"
        ));
        // One year of the (grid point, dataset, hazard) series, merged into it.
        db.rows(&merge_sql(&format!(
            "SELECT {}, (SELECT id FROM datasets WHERE scenario = '{}' AND model = 'FIXTURE-MODEL'), '{}', '{}',
                    {}, {}, {}, ARRAY['{}'], ARRAY[{}]::smallint[], {}, ARRAY[{:?}]::float8[],
                    ARRAY[{:?}]::float8[], ARRAY[{:?}]::float8[], ARRAY[{}]::float8[], ARRAY[{}]::float8[],
                    ARRAY[{}]::float8[], gen_random_uuid()",
            r["grid_id"],
            scenario,
            scenario,
            r["risk_type"].as_str().unwrap(),
            r["year"],
            sql_array(&f64s(&r["bin_edges"])),
            f64s(&r["bin_probs"]).len(),
            r["method"].as_str().unwrap(),
            r["sample_size"],
            sql_array(&f64s(&r["bin_probs"])),
            rl[0],
            rl[1],
            rl[2],
            gev("c"),
            gev("loc"),
            gev("scale"),
        )));
    }
    db
}

fn import_sites(db: &TestDb, file: &Path) -> support::Finished {
    let mut c = support::jobctl(&db.url);
    c.args(["sites", "import"]).arg(file);
    run(c)
}

fn site_risk(db: &TestDb, args: &[&str]) -> support::Finished {
    run(support::job(
        &db.url,
        env!("CARGO_BIN_EXE_site-risk-batch"),
        args,
    ))
}

fn fixture_curves() -> String {
    fixture("curves.csv").display().to_string()
}

fn value(db: &TestDb, site: &str, scenario: &str, risk: &str, year: i64, metric: &str) -> f64 {
    db.scalar(&format!(
        "SELECT value FROM site_risk_values WHERE site_id = '{site}' AND scenario = '{scenario}'
            AND risk_type = '{risk}' AND year = {year} AND metric = '{metric}'"
    ))
    .parse()
    .unwrap()
}

#[test]
fn pure_aal_equals_climada_eai_exp_within_1e_9() {
    let exp = expected();
    let sites = parse_sites_csv(&std::fs::read_to_string(fixture("sites.csv")).unwrap()).unwrap();
    let curves =
        parse_curves_csv(&std::fs::read_to_string(fixture("curves.csv")).unwrap()).unwrap();
    let grid: Vec<(i32, f64, f64)> = exp["grid"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, ll)| {
            let ll = f64s(ll);
            (id.parse().unwrap(), ll[0], ll[1])
        })
        .collect();
    let nearest: Vec<_> = sites
        .iter()
        .map(|s| climate_jobs::cache::nearest_point(s.lat, s.lon, &grid))
        .collect();
    let (results, without) = assess_sites(
        &sites,
        &nearest,
        &ProbabilitySeries::from_records(&records(&exp)).unwrap(),
        &curves,
    )
    .unwrap();
    assert_eq!(without, 0);
    let by_key: HashMap<(String, String, String), f64> = results
        .rows
        .iter()
        .map(|r| {
            (
                (r.site_id.clone(), r.scenario.clone(), r.risk_type.clone()),
                results.series_of(r).aal_rate[0],
            )
        })
        .collect();
    let mut checked = 0;
    let mut worst = 0.0_f64;
    for e in exp["site_results"].as_array().unwrap() {
        let key = (
            e["site_id"].as_str().unwrap().to_string(),
            e["scenario"].as_str().unwrap().to_string(),
            e["risk_type"].as_str().unwrap().to_string(),
        );
        let value = sites
            .iter()
            .find(|s| s.site_id == key.0)
            .unwrap()
            .asset_value;
        let aal = by_key[&key] * value;
        let climada = e["eai_exp"].as_f64().unwrap();
        assert!(
            close(aal, climada, 1e-9),
            "{key:?}: {aal} vs CLIMADA {climada}"
        );
        if climada != 0.0 {
            worst = worst.max((aal - climada).abs() / climada.abs());
        }
        checked += 1;
    }
    assert_eq!(checked, 4 * 2 * 5);
    eprintln!("{checked} site AALs, largest relative difference from CLIMADA {worst:e}");
}

#[test]
fn job_aal_equals_climada_aai_agg_within_1e_9() {
    let db = with_probabilities("site_parity");
    let done = import_sites(&db, &fixture("sites.csv"));
    assert_eq!(done.code, 0, "{}", done.all_output());
    let done = site_risk(&db, &["--curves", &fixture_curves()]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let exp = expected();
    // Per site: the stored AAL (aal_rate × value, through the view) against eai_exp.
    for e in exp["site_results"].as_array().unwrap() {
        let (site, scenario, risk) = (
            e["site_id"].as_str().unwrap(),
            e["scenario"].as_str().unwrap(),
            e["risk_type"].as_str().unwrap(),
        );
        let got = value(&db, site, scenario, risk, 2030, "aal_value");
        let want = e["eai_exp"].as_f64().unwrap();
        assert!(
            close(got, want, 1e-9),
            "{site} {scenario} {risk}: {got} vs {want}"
        );
    }
    // Per CLIMADA run (grid point, scenario, hazard): Σ sites = aai_agg.
    for a in exp["aggregates"].as_array().unwrap() {
        let sites: Vec<String> = a["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("'{}'", s.as_str().unwrap()))
            .collect();
        let got: f64 = db
            .scalar(&format!(
                "SELECT sum(value) FROM site_risk_values WHERE site_id IN ({}) AND scenario = '{}'
                    AND risk_type = '{}' AND year = 2030 AND metric = 'aal_value'",
                sites.join(","),
                a["scenario"].as_str().unwrap(),
                a["risk_type"].as_str().unwrap()
            ))
            .parse()
            .unwrap();
        let want = a["aai_agg"].as_f64().unwrap();
        assert!(close(got, want, 1e-9), "{a}: {got} vs aai_agg {want}");
    }
    // The total is the sum of the five hazards' expectations.
    let total = value(&db, "S3", "ssp585", "all_hazards", 2030, "aal_value");
    let sum: f64 = [
        "extreme_heat",
        "extreme_cold",
        "drought",
        "urban_flood",
        "river_flood",
    ]
    .iter()
    .map(|h| value(&db, "S3", "ssp585", h, 2030, "aal_value"))
    .sum();
    assert!(close(total, sum, 1e-12), "{total} vs {sum}");
    assert_eq!(
        value(&db, "S3", "ssp585", "all_hazards", 2030, "hazards_summed"),
        5.0
    );
    // Scores in range; S4 (light metal, 1985, 1 floor): V = 55 + 5 + 10.
    assert_eq!(value(&db, "S4", "ssp245", "drought", 2030, "v_score"), 70.0);
    assert_eq!(
        db.count("SELECT count(*) FROM site_risk_values WHERE metric IN ('risk_index','hazard_score','e_score','v_score') AND NOT value BETWEEN 0 AND 100"),
        0
    );
    // And the API's view next to the regions.
    assert_eq!(
        db.count("SELECT count(*) FROM site_aal_cache WHERE risk_type <> 'all_hazards'"),
        4 * 2 * 5
    );
}

#[test]
fn rerun_is_skipped_and_one_changed_curve_recomputes_only_its_sites() {
    let db = with_probabilities("site_rerun");
    assert_eq!(import_sites(&db, &fixture("sites.csv")).code, 0);
    let curves = fixture_curves();
    let first = site_risk(&db, &["--curves", &curves, "--chunk-sites", "1"]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(first.summary()["tasks_done"], 4);
    let again = site_risk(&db, &["--curves", &curves, "--chunk-sites", "1"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(
        again.summary()["status"],
        "skipped",
        "{}",
        again.all_output()
    );

    let before: HashMap<String, String> = db
        .rows("SELECT r.site_id || '/' || r.scenario || '/' || r.risk_type, r.run_id::text || h.aal_rate::text FROM site_results r JOIN site_hazard_series h ON h.id = r.series_id")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    // S1 is the only commercial site: raise its river_flood curve's top point.
    let text = std::fs::read_to_string(fixture("curves.csv")).unwrap();
    let changed = text.replace(
        "river_flood,commercial,700,0.6,",
        "river_flood,commercial,700,0.9,",
    );
    assert_ne!(text, changed);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site_rerun_curves.csv");
    std::fs::write(&path, changed).unwrap();
    let third = site_risk(
        &db,
        &["--curves", path.to_str().unwrap(), "--chunk-sites", "1"],
    );
    assert_eq!(third.code, 0, "{}", third.all_output());
    assert_eq!(third.summary()["tasks_done"], 1, "{}", third.all_output());
    let after: HashMap<String, String> = db
        .rows("SELECT r.site_id || '/' || r.scenario || '/' || r.risk_type, r.run_id::text || h.aal_rate::text FROM site_results r JOIN site_hazard_series h ON h.id = r.series_id")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert_eq!(before.len(), after.len());
    for (k, v) in &after {
        if k.starts_with("S1/") {
            assert_ne!(&before[k], v, "{k} was not recomputed");
        } else {
            assert_eq!(&before[k], v, "{k} changed though its curves did not");
        }
    }
    // S1's river flood AAL went up (the heavy-tailed ssp245 fit reaches the top point).
    let old: f64 = before["S1/ssp245/river_flood"]
        .split('{')
        .nth(1)
        .unwrap()
        .trim_end_matches('}')
        .parse()
        .unwrap();
    let new = value(&db, "S1", "ssp245", "river_flood", 2030, "aal_rate");
    assert!(new > old, "{new} vs {old}");
    // Then nothing changed again: skipped.
    let fourth = site_risk(&db, &["--curves", path.to_str().unwrap()]);
    assert_eq!(
        fourth.summary()["status"],
        "skipped",
        "{}",
        fourth.all_output()
    );
}

#[test]
fn a_curve_that_is_not_monotone_is_refused_naming_file_and_line() {
    let db = with_probabilities("site_bad_curve");
    assert_eq!(import_sites(&db, &fixture("sites.csv")).code, 0);
    let text = std::fs::read_to_string(fixture("curves.csv")).unwrap();
    // Line 21 of the file is industrial extreme_cold 20 days 0.009: make it lower than line 20.
    let bad = text.replace(
        "extreme_cold,industrial,20,0.009,",
        "extreme_cold,industrial,20,0.001,",
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site_bad_curves.csv");
    std::fs::write(&path, bad).unwrap();
    let done = site_risk(&db, &["--curves", path.to_str().unwrap()]);
    assert_eq!(done.code, 65, "{}", done.all_output());
    let line = format!(
        "{}: line 21: damage_ratio 0.001 is below the previous point's 0.002 (line 20): the curve extreme_cold/industrial is not monotone",
        path.display()
    );
    let error = done.summary()["error"].as_str().unwrap().to_string();
    assert!(error.contains(&line), "{error}");
    assert_eq!(db.count("SELECT count(*) FROM site_results"), 0);

    let mut check = support::jobctl(&db.url);
    check.args(["check", "--file"]);
    check.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.yaml"));
    check.arg("--curves").arg(&path);
    let checked = run(check);
    assert_eq!(checked.code, 2, "{}", checked.all_output());
    assert!(checked.stderr.contains(&line), "{}", checked.stderr);
}

#[test]
fn an_asset_class_without_a_curve_is_refused_naming_the_sites_line() {
    let db = with_probabilities("site_no_curve");
    let mut text = std::fs::read_to_string(fixture("sites.csv")).unwrap();
    text.push_str("S5,Port crane,35.10,129.04,3000000000,KRW,infrastructure,steel,2001,1,,0.1\n");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site_no_curve_sites.csv");
    std::fs::write(&path, text).unwrap();
    assert_eq!(import_sites(&db, &path).code, 0);
    let done = site_risk(&db, &["--curves", &fixture_curves()]);
    assert_eq!(done.code, 65, "{}", done.all_output());
    let want = format!(
        "{}: line 6: site \"S5\" has asset class infrastructure, which has no extreme_heat curve in {}",
        path.display(),
        fixture_curves()
    );
    let error = done.summary()["error"].as_str().unwrap().to_string();
    assert!(error.contains(&want), "{error}");
    assert_eq!(db.count("SELECT count(*) FROM site_results"), 0);
}

#[test]
fn a_site_outside_the_latitude_range_is_refused_naming_the_line() {
    let db = TestDb::migrated("site_bad_lat");
    let mut text = std::fs::read_to_string(fixture("sites.csv")).unwrap();
    text.push_str("S5,Nowhere,91.5,129.04,3000000000,KRW,commercial,steel,2001,1,,\n");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site_bad_lat_sites.csv");
    std::fs::write(&path, text).unwrap();
    let done = import_sites(&db, &path);
    assert_eq!(done.code, 65, "{}", done.all_output());
    let want = format!("{}: line 6: lat 91.5 is outside -90..90", path.display());
    assert!(done.stderr.contains(&want), "{}", done.stderr);
    assert_eq!(db.count("SELECT count(*) FROM sites"), 0);
}

#[test]
fn a_failed_chunk_goes_to_the_dlq_with_its_curves_and_dlq_reprocess_completes_it() {
    let db = with_probabilities("site_dlq");
    assert_eq!(import_sites(&db, &fixture("sites.csv")).code, 0);
    let curves = fixture_curves();
    let mut failing = support::job(
        &db.url,
        env!("CARGO_BIN_EXE_site-risk-batch"),
        &["--curves", &curves, "--chunk-sites", "1"],
    );
    failing.env("CLIMATE_JOBS_FAULT", "fail-task=1");
    let done = run(failing);
    assert_eq!(done.code, 3, "{}", done.all_output());
    // Chunk 1 is S2: no rows for it, the others written.
    assert_eq!(
        db.count("SELECT count(*) FROM site_results WHERE site_id = 'S2'"),
        0
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT site_id) FROM site_results"),
        3
    );
    // The letter carries the curve file's text, so the re-run uses the same curves.
    let payload = db.scalar("SELECT payload::text FROM dead_letters WHERE job = 'site-risk-batch'");
    assert!(
        payload.contains("river_flood,commercial,700,0.6"),
        "{payload}"
    );
    let reprocess = run(support::job(
        &db.url,
        env!("CARGO_BIN_EXE_dlq-reprocess"),
        &[],
    ));
    assert_eq!(reprocess.code, 0, "{}", reprocess.all_output());
    assert_eq!(reprocess.summary()["tasks_done"], 1);
    let exp = expected();
    for e in exp["site_results"].as_array().unwrap() {
        if e["site_id"] != "S2" {
            continue;
        }
        let got = value(
            &db,
            "S2",
            e["scenario"].as_str().unwrap(),
            e["risk_type"].as_str().unwrap(),
            2030,
            "aal_value",
        );
        let want = e["eai_exp"].as_f64().unwrap();
        assert!(close(got, want, 1e-9), "{got} vs {want}");
    }
    // The next scheduled run resumes the plan: only the repaired chunk was
    // missing from it, and it is done now, so the run completes and records.
    let next = site_risk(&db, &["--curves", &curves, "--chunk-sites", "1"]);
    assert_eq!(next.code, 0, "{}", next.all_output());
    let last = site_risk(&db, &["--curves", &curves, "--chunk-sites", "1"]);
    assert_eq!(last.summary()["status"], "skipped", "{}", last.all_output());
}

/// Migration 0010 converts rows of the old layout (arrays on every site row,
/// stored all_hazards totals) in place: what the views show is unchanged.
#[test]
fn migrating_old_site_results_keeps_every_value_of_the_views() {
    let db = TestDb::at_version("site_migrate_from_7", 7);
    // Two sites on one grid point; risk indexes chosen exact in float4 and
    // float8 alike (cbrt(8·27·1) = 6, cbrt(27·64·1) = 12), as the old
    // layout stored the totals' as real.
    db.rows(
        "INSERT INTO sites VALUES
           ('A', 'Plant A', 35, 127, 1000000, 'KRW', 'industrial', 'steel', 2001, 4, 3, 1, 'a.csv', 2),
           ('B', 'Office B', 35.01, 127, 2000000, 'KRW', 'commercial', 'wood', 1940, 1, NULL, 1, 'a.csv', 3);
         INSERT INTO site_results (site_id, scenario, model, member, risk_type, grid_id, distance_km, e_score,
                v_score, curve_fingerprint, years, aal_rate, damage_rl10, damage_rl50, damage_rl100,
                hazard_score, risk_index, hazard_count, run_id)
         VALUES
           ('A', 'ssp585', 'M', 'r1', 'drought', 7, 1.5, 27, 1, 'f1', '{2030,2031}', '{0.001,0.002}',
            '{0.1,0.2}', '{0.3,0.4}', '{0.5,0.6}', '{8,8}', NULL, NULL, '00000000-0000-7000-8000-000000000001'),
           ('A', 'ssp585', 'M', 'r1', 'river_flood', 7, 1.5, 64, 1, 'f2', '{2030,2031}', '{0.03,0.04}',
            '{0.01,0.02}', '{0.03,0.04}', '{0.05,0.06}', '{27,27}', NULL, NULL, '00000000-0000-7000-8000-000000000001'),
           ('A', 'ssp585', 'M', 'r1', 'all_hazards', 7, 1.5, NULL, 1, NULL, '{2030,2031}', '{0.031,0.042}',
            NULL, NULL, NULL, NULL, '{12,12}', '{2,2}', '00000000-0000-7000-8000-000000000001'),
           ('B', 'ssp585', 'M', 'r1', 'drought', 7, 0.4, 27, 1, 'f3', '{2030}', '{0.25}',
            '{0.7}', '{0.8}', '{0.9}', '{8}', NULL, NULL, '00000000-0000-7000-8000-000000000001'),
           ('B', 'ssp585', 'M', 'r1', 'all_hazards', 7, 0.4, NULL, 1, NULL, '{2030}', '{0.25}',
            NULL, NULL, NULL, NULL, '{6}', '{1}', '00000000-0000-7000-8000-000000000001');",
    );
    let values = "SELECT md5(string_agg(concat_ws('|', site_id, scenario, model, member, risk_type, year, metric,
                         round(value::numeric, 9), unit, basis, grid_id, distance_km), ','
                         ORDER BY site_id, scenario, risk_type, year, metric)) FROM site_risk_values";
    let cache = "SELECT md5(string_agg(concat_ws('|', site_id, name, scenario, risk_type, year, currency,
                        round(aal_rate::numeric, 12), round(aal_value::numeric, 6), round(risk_index::numeric, 9),
                        e_score, v_score, grid_id, distance_km), ','
                        ORDER BY site_id, scenario, risk_type, year)) FROM site_aal_cache";
    let (values_before, cache_before) = (db.scalar(values), db.scalar(cache));
    let n_values = db.count("SELECT count(*) FROM site_risk_values");
    assert_eq!(n_values, 2 * 2 * 9 + 2 * 5 + 9 + 5);

    db.migrate_the_rest(7);
    assert_eq!(db.count("SELECT count(*) FROM site_risk_values"), n_values);
    assert_eq!(db.scalar(values), values_before);
    assert_eq!(db.scalar(cache), cache_before);
    // The totals are no longer stored; each hazard row has its own series.
    assert_eq!(db.count("SELECT count(*) FROM site_results"), 3);
    assert_eq!(db.count("SELECT count(*) FROM site_hazard_series"), 3);
    let total = value(&db, "A", "ssp585", "all_hazards", 2031, "aal_value");
    assert!(close(total, 0.042 * 1000000.0, 1e-12), "{total}");
    assert!(close(
        value(&db, "A", "ssp585", "all_hazards", 2031, "risk_index"),
        12.0,
        1e-12
    ));
}

/// The `probability_series` view unnested is exactly `probability_values`,
/// gaps included (a year between two merged spans is NULL in every array),
/// and the job reads it: a year copied three years on gives the same
/// values, and the gap years give none.
#[test]
fn probability_series_holds_the_years_of_probability_values_and_the_job_skips_gaps() {
    let db = with_probabilities("site_series_view");
    db.rows(&merge_sql(
        "SELECT grid_id, dataset_id, scenario, risk_type, 2033, bin_edges, cardinality(bin_probs),
                ARRAY[method], ARRAY[sample_size::smallint], bin_probs, ARRAY[return_level_10],
                ARRAY[return_level_50], ARRAY[return_level_100], ARRAY[gev_c], ARRAY[gev_loc],
                ARRAY[gev_scale], gen_random_uuid()
           FROM probability_values WHERE year = 2030",
    ));
    let series = db.count("SELECT count(*) FROM probability_series");
    assert_eq!(series, 20, "one row per grid point, dataset and hazard");
    assert_eq!(
        db.count("SELECT count(*) FROM probability_series WHERE year_count = 4 AND first_year = 2030 AND method_by_year[2] IS NULL AND method_by_year[3] IS NULL"),
        series
    );
    let unnested = "SELECT s.lat, s.lon, s.grid_id, s.scenario, s.model, s.member, s.dataset_id,
            s.risk_type, s.first_year + i - 1, s.method_by_year[i], s.gev_c_by_year[i],
            s.gev_loc_by_year[i], s.gev_scale_by_year[i], s.bin_edges,
            s.bin_probs_by_year[(i - 1) * s.bin_count + 1 : i * s.bin_count],
            s.return_level_10_by_year[i], s.return_level_50_by_year[i],
            s.return_level_100_by_year[i], s.sample_size_by_year[i]
       FROM probability_series s, generate_series(1, s.year_count) AS i
      WHERE s.method_by_year[i] IS NOT NULL";
    let values = "SELECT lat, lon, grid_id, scenario, model, member, dataset_id, risk_type, year,
            method, gev_c, gev_loc, gev_scale, bin_edges, bin_probs, return_level_10,
            return_level_50, return_level_100, sample_size FROM probability_values";
    assert_eq!(db.count(&format!("SELECT count(*) FROM ({values}) v")), 40);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM ((({values}) EXCEPT ALL ({unnested}))
                                   UNION ALL (({unnested}) EXCEPT ALL ({values}))) d"
        )),
        0
    );

    assert_eq!(import_sites(&db, &fixture("sites.csv")).code, 0);
    let done = site_risk(&db, &["--curves", &fixture_curves()]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    assert_eq!(
        db.count("SELECT count(*) FROM site_risk_values WHERE year IN (2031, 2032)"),
        0
    );
    let pairs = db.rows(
        "SELECT a.value::text, b.value::text FROM site_risk_values a
           JOIN site_risk_values b USING (site_id, scenario, model, member, risk_type, metric)
          WHERE a.year = 2030 AND b.year = 2033",
    );
    assert_eq!(
        pairs.len(),
        db.count("SELECT count(*) FROM site_risk_values WHERE year = 2030") as usize
    );
    assert!(!pairs.is_empty());
    for p in pairs {
        assert_eq!(p[0], p[1]);
    }
}
