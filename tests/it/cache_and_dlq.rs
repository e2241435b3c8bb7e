//! cache-refresh and dlq-reprocess end to end, on demo data, with the real
//! binaries and a real PostgreSQL.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use climate_jobs::cache::nearest_point;
use support::{Finished, TestDb, jobctl, run, spawn, wait};

/// 60 points, 2021–2025, two scenarios, and their regions.csv (15 regions).
fn demo() -> PathBuf {
    support::demo_data("cache-demo", 60, "2021..2025", "ssp126,ssp585")
}

fn job(db: &TestDb, binary: &str, args: &[&str]) -> Command {
    support::job(&db.url, binary, args)
}

fn hazard(db: &TestDb, args: &[&str]) -> Command {
    job(db, env!("CARGO_BIN_EXE_hazard-timeseries-batch"), args)
}

fn refresh(db: &TestDb, args: &[&str]) -> Finished {
    run(job(db, env!("CARGO_BIN_EXE_cache-refresh"), args))
}

fn dlq(db: &TestDb, args: &[&str]) -> Command {
    job(db, env!("CARGO_BIN_EXE_dlq-reprocess"), args)
}

fn both_scenarios(db: &TestDb) {
    let d = demo();
    let done = run(hazard(
        db,
        &[
            "--input",
            d.join("ssp126.nc").to_str().unwrap(),
            d.join("ssp585.nc").to_str().unwrap(),
        ],
    ));
    assert_eq!(done.code, 0, "{}", done.all_output());
    let imported = run({
        let mut c = jobctl(&db.url);
        c.args(["regions", "import"]).arg(d.join("regions.csv"));
        c
    });
    assert_eq!(imported.code, 0, "{}", imported.all_output());
}

/// The cache as stored: (region, scenario, risk, year) → (grid id, value).
type Cache = BTreeMap<(String, String, String, i32), (i32, Option<String>)>;

fn cache(db: &TestDb) -> Cache {
    db.rows("SELECT region_code, scenario, risk_type, year, grid_id, value::text FROM region_hazard_cache")
        .into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap();
            ((s(0), s(1), s(2), s(3).parse().unwrap()), (s(4).parse().unwrap(), r[5].clone()))
        })
        .collect()
}

/// The same, computed by brute force: nearest point by haversine in Rust.
fn brute_force(db: &TestDb) -> Cache {
    let f = |s: &Option<String>| s.as_deref().unwrap().parse::<f64>().unwrap();
    let points: Vec<(i32, f64, f64)> = db
        .rows("SELECT id, lat, lon FROM grid_points")
        .iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                f(&r[1]),
                f(&r[2]),
            )
        })
        .collect();
    let values: BTreeMap<(i32, String, String, i32), String> = db
        .yearly_rows("SELECT grid_id, scenario, risk_type, year, value::text FROM hazard_yearly")
        .into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap();
            (
                (s(0).parse().unwrap(), s(1), s(2), s(3).parse().unwrap()),
                s(4),
            )
        })
        .collect();
    let combos: BTreeSet<(String, String, i32)> = values
        .keys()
        .map(|(_, s, r, y)| (s.clone(), r.clone(), *y))
        .collect();
    let mut out = Cache::new();
    for r in db.rows("SELECT code, lat, lon FROM regions") {
        let (id, _) = nearest_point(f(&r[1]), f(&r[2]), &points).unwrap();
        for (s, risk, y) in &combos {
            let v = values.get(&(id, s.clone(), risk.clone(), *y)).cloned();
            out.insert(
                (r[0].clone().unwrap(), s.clone(), risk.clone(), *y),
                (id, v),
            );
        }
    }
    out
}

#[test]
fn cache_holds_every_region_and_combination_from_the_nearest_point() {
    let db = TestDb::migrated("cache_brute_force");
    both_scenarios(&db);
    let done = refresh(&db, &[]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let regions = db.count("SELECT count(*) FROM regions");
    let combos = db.yearly_count(
        "SELECT count(*) FROM (SELECT DISTINCT scenario, risk_type, year FROM hazard_yearly) c",
    );
    assert_eq!((regions, combos), (15, 2 * 5 * 5));
    assert_eq!(
        db.count("SELECT count(*) FROM region_hazard_cache"),
        regions * combos
    );
    assert_eq!(done.summary()["rows_written"], regions * combos);
    let got = cache(&db);
    let want = brute_force(&db);
    assert_eq!(got.len(), want.len());
    for (key, expected) in &want {
        assert_eq!(got.get(key), Some(expected), "{key:?}");
    }
    // Old generations are gone once the new one is in place.
    assert_eq!(
        db.count("SELECT count(DISTINCT generation) FROM region_hazard_cache_series"),
        1
    );
}

#[test]
fn a_reader_never_sees_a_partial_or_empty_cache_during_refreshes() {
    let db = TestDb::migrated("cache_reader");
    both_scenarios(&db);
    assert_eq!(refresh(&db, &[]).code, 0);
    let expected = db.count("SELECT count(*) FROM region_hazard_cache");
    assert_eq!(expected, 15 * 50);

    let stop = AtomicBool::new(false);
    let observations = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = db
                    .rows("SELECT count(*), count(DISTINCT refreshed_at) FROM region_hazard_cache");
                let count: i64 = r[0][0].as_deref().unwrap().parse().unwrap();
                let stamps: i64 = r[0][1].as_deref().unwrap().parse().unwrap();
                seen.push((count, stamps));
            }
            seen
        });
        for _ in 0..5 {
            let done = refresh(&db, &["--force"]);
            assert_eq!(done.code, 0, "{}", done.all_output());
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(
        observations.len() >= 20,
        "only {} reads",
        observations.len()
    );
    for (count, stamps) in &observations {
        assert_eq!(
            (*count, *stamps),
            (expected, 1),
            "a reader saw a partial, empty or mixed cache"
        );
    }
    assert_eq!(
        db.count("SELECT count(DISTINCT generation) FROM region_hazard_cache_series"),
        1
    );
}

#[test]
fn refresh_skips_when_nothing_changed_and_rebuilds_after_the_hazard_batch_rewrites() {
    let db = TestDb::migrated("cache_skip");
    both_scenarios(&db);
    assert_eq!(refresh(&db, &[]).summary()["status"], "succeeded");
    let again = refresh(&db, &[]);
    assert_eq!(again.code, 0);
    assert_eq!(
        again.summary()["status"],
        "skipped",
        "{}",
        again.all_output()
    );

    let rewrite = run(hazard(
        &db,
        &[
            "--input",
            demo().join("ssp585.nc").to_str().unwrap(),
            "--force",
        ],
    ));
    assert_eq!(rewrite.code, 0, "{}", rewrite.all_output());
    let after = refresh(&db, &[]);
    assert_eq!(
        after.summary()["status"],
        "succeeded",
        "{}",
        after.all_output()
    );

    let imported = run({
        let mut c = jobctl(&db.url);
        c.args(["regions", "import"])
            .arg(demo().join("regions.csv"));
        c
    });
    assert_eq!(imported.code, 0);
    assert_eq!(
        refresh(&db, &[]).summary()["status"],
        "succeeded",
        "a regions import changes the cache"
    );
}

/// The completeness check's failure path. A trigger on the server swallows one region's rows
/// of the next build, as a bug in the build's SQL would: the run must fail (exit 1, no dead
/// letter: re-running the task alone cannot help), name the short combinations, and leave the
/// old generation in place, unchanged; once the trigger is gone a rebuild succeeds.
#[test]
fn a_short_cache_build_fails_the_run_and_keeps_the_old_cache() {
    let db = TestDb::migrated("cache_short_build");
    both_scenarios(&db);
    assert_eq!(refresh(&db, &[]).summary()["status"], "succeeded");
    let before = cache(&db);
    let generation = db.scalar("SELECT generation FROM region_hazard_cache_state");
    let region = before.keys().next().expect("a cached row").0.clone();
    db.rows(&format!(
        "CREATE FUNCTION drop_one_region() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.region_code = '{region}' THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER short_build BEFORE INSERT ON region_hazard_cache_series
         FOR EACH ROW EXECUTE FUNCTION drop_one_region();"
    ));

    let failed = refresh(&db, &["--force"]);
    let out = failed.all_output();
    assert_eq!(failed.code, 1, "{out}");
    assert_eq!(failed.summary()["status"], "failed", "{out}");
    assert!(out.contains("cache verification failed"), "{out}");
    assert!(out.contains("the old cache is kept"), "{out}");
    // Short combinations are named with their region counts (one region missing of 15), the
    // first 20 of all 50 (2 scenarios × 5 hazards × 5 years).
    assert!(out.contains("50 combinations short, the first 20"), "{out}");
    assert!(
        out.contains("ssp126/unknown/unknown/drought/2021: 14 of 15"),
        "{out}"
    );
    assert_eq!(db.count("SELECT count(*) FROM dead_letters"), 0);
    assert_eq!(
        db.scalar("SELECT generation FROM region_hazard_cache_state"),
        generation
    );
    assert_eq!(
        cache(&db),
        before,
        "the old cache is readable and unchanged"
    );

    db.rows("DROP TRIGGER short_build ON region_hazard_cache_series");
    assert_eq!(refresh(&db, &["--force"]).summary()["status"], "succeeded");
    assert_eq!(cache(&db), before);
}

#[test]
fn regions_import_rejects_bad_rows_by_line_and_imports_nothing() {
    let db = TestDb::migrated("regions_bad");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bad-regions-{}.csv", std::process::id()));
    std::fs::write(
        &file,
        "code,name,lat,lon\nA,ok,35,127\nB,bad,95,127\nC,worse,35,east\n",
    )
    .unwrap();
    let done = run({
        let mut c = jobctl(&db.url);
        c.args(["regions", "import"]).arg(&file);
        c
    });
    assert_eq!(done.code, 65, "{}", done.all_output());
    assert!(
        done.stderr.contains("line 3: lat 95 is outside -90..90"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("line 4: lon \"east\" is not a number"),
        "{}",
        done.stderr
    );
    assert_eq!(db.count("SELECT count(*) FROM regions"), 0);
}

#[test]
fn dlq_reprocess_resolves_a_failed_hazard_chunk_and_the_table_equals_a_clean_run() {
    let clean = TestDb::migrated("dlq_clean");
    let db = TestDb::migrated("dlq_repair");
    let input = demo().join("ssp126.nc");
    let args = ["--input", input.to_str().unwrap(), "--chunk-points", "16"];
    assert_eq!(run(hazard(&clean, &args)).code, 0);

    let mut failing = hazard(&db, &args);
    failing.env("CLIMATE_JOBS_FAULT", "fail-task=1");
    assert_eq!(run(failing).code, 3);
    let reprocess = run(dlq(&db, &[]));
    assert_eq!(reprocess.code, 0, "{}", reprocess.all_output());
    assert_eq!(reprocess.summary()["tasks_done"], 1);
    assert_eq!(db.scalar("SELECT status FROM dead_letters"), "resolved");
    let table = "SELECT md5(string_agg(g.lat || ',' || g.lon || ',' || scenario || ',' || risk_type || ',' || year || ',' || value || ',' || score, ';'
                     ORDER BY g.lat, g.lon, scenario, risk_type, year))
                   FROM hazard_yearly h JOIN grid_points g ON g.id = h.grid_id";
    assert_eq!(db.yearly_scalar(table), clean.yearly_scalar(table));
    // The chunk is done now, so the next batch run finds nothing left and vouches for the input.
    let next = run(hazard(&db, &args));
    assert_eq!(next.summary()["tasks_skipped"], 4, "{}", next.all_output());
    assert_eq!(db.count("SELECT count(*) FROM input_files"), 1);
}

#[test]
fn two_reprocess_runs_started_together_never_run_a_letter_twice() {
    let db = TestDb::migrated("dlq_together");
    let mut c = jobctl(&db.url);
    c.env(
        "CLIMATE_JOBS_FAULT",
        "fail-task=0,fail-task=1,fail-task=2,fail-task=3,fail-task=4,fail-task=5",
    )
    .args(["canary", "--tasks", "8", "--task-duration", "1ms"]);
    assert_eq!(run(c).code, 3);
    assert_eq!(
        db.count("SELECT count(*) FROM dead_letters WHERE status = 'pending'"),
        6
    );

    let a = spawn(dlq(&db, &["--concurrency", "2"]));
    let b = spawn(dlq(&db, &["--concurrency", "2"]));
    let (a, b) = (wait(a.0, a.1), wait(b.0, b.1));
    assert_eq!(
        (a.code, b.code),
        (0, 0),
        "{}\n{}",
        a.all_output(),
        b.all_output()
    );
    // Every execution of a letter is a chunk of a dlq-reprocess run.
    let executions = db.rows(
        "SELECT chunk_key, count(*) FROM run_chunks WHERE job = 'dlq-reprocess' AND state = 'done' GROUP BY chunk_key ORDER BY chunk_key",
    );
    assert_eq!(executions.len(), 6, "{executions:?}");
    assert!(
        executions.iter().all(|r| r[1].as_deref() == Some("1")),
        "{executions:?}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM dead_letters WHERE status = 'resolved'"),
        6
    );
}

#[test]
fn a_letter_that_keeps_failing_backs_off_longer_each_time_then_is_dead() {
    let db = TestDb::migrated("dlq_dead");
    let mut c = jobctl(&db.url);
    c.env("CLIMATE_JOBS_FAULT", "fail-task=0").args([
        "canary",
        "--tasks",
        "1",
        "--task-duration",
        "1ms",
    ]);
    assert_eq!(run(c).code, 3);
    let mut waits = Vec::new();
    for attempt in 2..=4 {
        // Due now or soon: wait until it is.
        assert!(support::wait_until(Duration::from_secs(10), || {
            db.count("SELECT count(*) FROM dead_letters WHERE next_attempt_at <= now()") == 1
        }));
        let mut c = dlq(&db, &["--max-attempts", "4", "--backoff", "300ms"]);
        c.env("CLIMATE_JOBS_FAULT", "fail-task=0");
        let done = run(c);
        assert_eq!(done.code, 3, "{}", done.all_output());
        let row = &db.rows(
            "SELECT attempts, status, extract(epoch FROM next_attempt_at - updated_at) * 1000 FROM dead_letters",
        )[0];
        assert_eq!(row[0].as_deref(), Some(attempt.to_string().as_str()));
        if attempt < 4 {
            assert_eq!(row[1].as_deref(), Some("pending"));
            waits.push(row[2].as_deref().unwrap().parse::<f64>().unwrap());
        } else {
            assert_eq!(row[1].as_deref(), Some("dead"));
        }
    }
    // 300 ms base: the first wait is in [150, 300] ms, the second in [300, 600].
    assert!((150.0..=300.5).contains(&waits[0]), "{waits:?}");
    assert!(
        waits[1] >= waits[0] && (300.0..=600.5).contains(&waits[1]),
        "{waits:?}"
    );
    // A dead letter is not run again, and stays listed.
    let idle = run(dlq(&db, &[]));
    assert_eq!(idle.summary()["tasks_total"], 0);
    let listed = run({
        let mut c = jobctl(&db.url);
        c.args(["dlq", "list", "--status", "dead"]);
        c
    });
    assert!(listed.stdout.contains("canary-00000"), "{}", listed.stdout);
    // An operator can redrive it.
    let id = db.scalar("SELECT id FROM dead_letters");
    let redriven = run({
        let mut c = jobctl(&db.url);
        c.args(["dlq", "redrive", &id]);
        c
    });
    assert_eq!(redriven.code, 0, "{}", redriven.all_output());
    assert_eq!(run(dlq(&db, &[])).summary()["tasks_done"], 1);
    assert_eq!(db.scalar("SELECT status FROM dead_letters"), "resolved");
}

/// Four datasets of one experiment (two models, two members; tests/fixtures/datasets) on one
/// grid: one cache row per region × dataset × hazard × year, each from its own dataset.
#[test]
fn cache_keeps_one_row_per_region_dataset_hazard_and_year() {
    let db = TestDb::migrated("cache_datasets");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets");
    let done = run(hazard(
        &db,
        &[
            "--input",
            fixtures.join("download1").to_str().unwrap(),
            "--input",
            fixtures.join("download2").to_str().unwrap(),
        ],
    ));
    assert_eq!(done.code, 0, "{}", done.all_output());
    let dir = std::env::temp_dir().join(format!("cache-datasets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("regions.csv");
    std::fs::write(
        &csv,
        "code,name,lat,lon\nA,North,36.9,127.4\nB,South,35.1,126.6\nC,Middle,36.1,127.0\n",
    )
    .unwrap();
    let imported = run({
        let mut c = jobctl(&db.url);
        c.args(["regions", "import"]).arg(&csv);
        c
    });
    assert_eq!(imported.code, 0, "{}", imported.all_output());
    let built = refresh(&db, &[]);
    assert_eq!(built.code, 0, "{}", built.all_output());

    let combos = db.yearly_count(
        "SELECT count(*) FROM (SELECT DISTINCT dataset_id, risk_type, year FROM hazard_yearly) c",
    );
    assert_eq!(
        db.count("SELECT count(*) FROM region_hazard_cache"),
        3 * combos
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT (model, member)) FROM region_hazard_cache"),
        4
    );
    // Each row's value is its own dataset's value at the region's nearest point.
    let points: Vec<(i32, f64, f64)> = db
        .rows("SELECT id, lat, lon FROM grid_points")
        .iter()
        .map(|r| {
            let f = |i: usize| r[i].as_deref().unwrap().parse::<f64>().unwrap();
            (f(0) as i32, f(1), f(2))
        })
        .collect();
    let (mut checked, mut with_value) = (0, 0);
    for r in db.rows(
        "SELECT c.region_code, g.lat, g.lon, c.model, c.member, c.risk_type, c.year, c.value::text,
                (SELECT h.value::text FROM hazard_values h JOIN grid_points p ON p.lat = h.lat AND p.lon = h.lon
                  WHERE p.id = c.grid_id AND h.model = c.model AND h.member = c.member
                    AND h.risk_type = c.risk_type AND h.year = c.year)
           FROM region_hazard_cache c JOIN regions g ON g.code = c.region_code",
    ) {
        let f = |i: usize| r[i].as_deref().unwrap().parse::<f64>().unwrap();
        let (nearest, _) = nearest_point(f(1), f(2), &points).unwrap();
        let grid: i64 = db.count(&format!(
            "SELECT grid_id FROM region_hazard_cache WHERE region_code = '{}' LIMIT 1",
            r[0].as_deref().unwrap()
        ));
        assert_eq!(grid, i64::from(nearest));
        assert_eq!(r[7], r[8], "{r:?}");
        checked += 1;
        with_value += i64::from(r[7].is_some());
    }
    assert_eq!(checked, 3 * combos);
    assert!(
        with_value > 3 * combos / 2,
        "{with_value} of {checked} rows have a value"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cache's bin probabilities and return levels are the region's nearest
/// point's, year by year: NULL where that point has no result for the year
/// (a `--years` subset leaves the ends out) or none at all (a scenario not
/// fitted), equal to `probability_values` everywhere else.
#[test]
fn cache_carries_the_nearest_points_probabilities_year_by_year() {
    let db = TestDb::migrated("cache_probabilities");
    both_scenarios(&db);
    let probability = |args: &[&str]| {
        let done = run(job(&db, env!("CARGO_BIN_EXE_probability-batch"), args));
        assert_eq!(done.code, 0, "{}", done.all_output());
    };
    let mismatches = "SELECT count(*) FROM region_hazard_cache c
          LEFT JOIN probability_values p
                 ON p.grid_id = c.grid_id AND p.dataset_id = c.dataset_id
                AND p.risk_type = c.risk_type AND p.year = c.year
         WHERE c.bin_probs IS DISTINCT FROM p.bin_probs
            OR c.return_level_10 IS DISTINCT FROM p.return_level_10
            OR c.return_level_50 IS DISTINCT FROM p.return_level_50
            OR c.return_level_100 IS DISTINCT FROM p.return_level_100";
    let with_probabilities = "SELECT count(*) FROM region_hazard_cache WHERE bin_probs IS NOT NULL";

    // Series spanning 2022-2024 of ssp585 only.
    probability(&[
        "--window",
        "3",
        "--min-years",
        "2",
        "--years",
        "2022..2024",
        "--scenario",
        "ssp585",
    ]);
    let built = refresh(&db, &[]);
    assert_eq!(built.code, 0, "{}", built.all_output());
    let regions = db.count("SELECT count(*) FROM regions");
    assert_eq!(db.count(mismatches), 0);
    assert_eq!(db.count(with_probabilities), regions * 5 * 3);
    assert_eq!(
        db.count("SELECT count(*) FROM region_hazard_cache WHERE bin_probs IS NOT NULL AND (scenario <> 'ssp585' OR year NOT BETWEEN 2022 AND 2024)"),
        0
    );

    // Every year of both scenarios: the series cover the cache's years
    // exactly (but a year whose window has too few values has no result).
    probability(&["--window", "3", "--min-years", "2", "--force"]);
    let rebuilt = refresh(&db, &[]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.all_output());
    assert_eq!(db.count(mismatches), 0);
    let fitted = db.count(
        "SELECT count(*) FROM region_hazard_cache c JOIN probability_values p
             ON p.grid_id = c.grid_id AND p.dataset_id = c.dataset_id
            AND p.risk_type = c.risk_type AND p.year = c.year",
    );
    assert_eq!(db.count(with_probabilities), fitted);
    assert!(fitted >= regions * 2 * 5 * 5 * 9 / 10, "{fitted}");
    assert_eq!(
        db.count("SELECT count(*) FROM region_hazard_cache_series"),
        regions * 2 * 5
    );
}

#[test]
fn migrating_a_schema_8_cache_turns_yearly_rows_into_series_keeping_every_row() {
    let db = TestDb::at_version("cache_migrate_from_8", 8);
    // Schema-8 cache rows: two generations, two regions, two datasets, two
    // hazards, 2021-2024; probabilities only for drought, missing in 2023;
    // no value at region B's point for (ssp585, heat, 2022).
    db.rows(
        "INSERT INTO datasets (id, scenario, model, member, convention) VALUES
                (1, 'ssp126', 'M-A', 'r1i1p1f1', 'CMIP6'), (2, 'ssp585', 'M-A', 'r1i1p1f1', 'CMIP6');
         INSERT INTO region_hazard_cache_state (generation, rows, source_versions, run_id)
         VALUES (8, 64, '{}', '00000000-0000-7000-8000-000000000001');
         INSERT INTO region_hazard_cache_rows (generation, region_code, scenario, risk_type, year, grid_id,
                distance_km, value, score, bin_probs, return_level_10, return_level_50, return_level_100,
                dataset_id, model, member)
         SELECT gen, reg, CASE d WHEN 1 THEN 'ssp126' ELSE 'ssp585' END, r, y,
                CASE reg WHEN 'A' THEN 3 ELSE 9 END, CASE reg WHEN 'A' THEN 1.5 ELSE 12.25 END,
                CASE WHEN reg = 'B' AND d = 2 AND r = 'heat' AND y = 2022 THEN NULL ELSE gen * 1000 + d * 100 + y - 2000 END,
                CASE WHEN reg = 'B' AND d = 2 AND r = 'heat' AND y = 2022 THEN NULL ELSE 40 + y - 2021 END,
                CASE WHEN r = 'drought' AND y <> 2023 THEN ARRAY[0.25, 0.5, 0.25 - (y - 2021) / 1e3, (y - 2021) / 1e3] END,
                CASE WHEN r = 'drought' AND y <> 2023 THEN 10 + y - 2021 END,
                CASE WHEN r = 'drought' AND y <> 2023 THEN 50 + y - 2021 END,
                CASE WHEN r = 'drought' AND y <> 2023 THEN 100 + y - 2021 END,
                d, 'M-A', 'r1i1p1f1'
           FROM generate_series(7, 8) gen, unnest(ARRAY['A', 'B']) reg, generate_series(1, 2) d,
                unnest(ARRAY['drought', 'heat']) r, generate_series(2021, 2024) y;",
    );
    let view = "SELECT count(*) || ':' || md5(string_agg(concat_ws('|', region_code, scenario, model, member, risk_type,
                       year, grid_id, distance_km, value, score, bin_probs, return_level_10, return_level_50,
                       return_level_100, refreshed_at, dataset_id, pg_typeof(year), pg_typeof(bin_probs)), ','
                       ORDER BY region_code, dataset_id, risk_type, year)) FROM region_hazard_cache";
    let before = db.scalar(view);
    assert!(before.starts_with("32:"), "{before}");
    let columns =
        "SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position)
                     FROM information_schema.columns WHERE table_name = 'region_hazard_cache'";
    let before_columns = db.scalar(columns);

    db.migrate_the_rest(8);
    assert_eq!(db.scalar(columns), before_columns);
    assert_eq!(db.scalar(view), before);
    // Both generations, one row per region, dataset and hazard.
    assert_eq!(
        db.count("SELECT count(*) FROM region_hazard_cache_series"),
        2 * 2 * 2 * 2
    );
    assert_eq!(
        db.scalar(
            "SELECT array_to_string(years, ',') || ':' || array_to_string(values_by_year, ',', 'NULL') || ':'
                    || coalesce(bin_count::text, 'NULL') || ':' || coalesce(return_level_10_by_year::text, 'NULL')
               FROM region_hazard_cache_series
              WHERE generation = 8 AND region_code = 'B' AND dataset_id = 2 AND risk_type = 'heat'"
        ),
        "2021,2022,2023,2024:8221,NULL,8223,8224:NULL:NULL"
    );
    assert_eq!(
        db.scalar(
            "SELECT bin_count || ':' || array_to_string(bin_probs_by_year[9:12], ',', 'NULL') || ':'
                    || array_to_string(return_level_100_by_year, ',', 'NULL')
               FROM region_hazard_cache_series
              WHERE generation = 8 AND region_code = 'A' AND dataset_id = 1 AND risk_type = 'drought'"
        ),
        "4:NULL,NULL,NULL,NULL:100,101,NULL,103"
    );
}
