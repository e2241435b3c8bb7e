//! The hazard indices against xclim 0.62 on the reference fixtures (tests/fixtures/hazard,
//! produced by tools/fixtures/make_hazard_fixtures.py): counts identical, amounts within 1e-4
//! relative, and no value exactly where xclim gives NaN.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use climate_jobs::climate::{ClimateFile, VariableNames, annual_indices};
use climate_jobs::hazard::{IndexKind, Variable, default_hazards};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hazard")
}

struct Expected {
    lat: f64,
    lon: f64,
    value: Option<f64>,
}

/// file → (point, risk_type, year) → expected row.
fn expected() -> BTreeMap<String, BTreeMap<(usize, String, i32), Expected>> {
    let text = std::fs::read_to_string(fixtures().join("expected.csv")).expect("expected.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("file,point,lat,lon,risk_type,year,value"),
        "expected.csv header"
    );
    let mut out: BTreeMap<String, BTreeMap<_, _>> = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "bad line {line}");
        let row = Expected {
            lat: f[2].parse().unwrap(),
            lon: f[3].parse().unwrap(),
            value: (!f[6].is_empty()).then(|| f[6].parse().unwrap()),
        };
        let key = (
            f[1].parse().unwrap(),
            f[4].to_owned(),
            f[5].parse().unwrap(),
        );
        let prev = out.entry(f[0].to_owned()).or_default().insert(key, row);
        assert!(prev.is_none(), "duplicate row {line}");
    }
    out
}

#[test]
fn matches_xclim_on_every_fixture() {
    let hazards = default_hazards();
    let expected = expected();
    assert!(
        expected
            .keys()
            .filter(|f| f.contains("time_chunked"))
            .count()
            == 2,
        "the two time-chunked fixtures are listed"
    );
    assert!(
        expected.len() >= 5,
        "fixture files listed: {}",
        expected.len()
    );
    let (mut compared, mut with_value, mut empty) = (0, 0, 0);
    let mut failures = Vec::new();
    for (file, rows) in &expected {
        let path = fixtures().join(file);
        let nc = ClimateFile::open(&path, &VariableNames::default(), &Variable::ALL)
            .unwrap_or_else(|e| panic!("{e}"));
        if file.contains("time_chunked") {
            // These exist to check the direct chunk reader: it must be the one reading them.
            for var in Variable::ALL {
                assert!(
                    nc.reads_stored_chunks_directly(var),
                    "{file}: {var} is not read through the direct chunk reader"
                );
            }
        }
        let got = annual_indices(&nc, &hazards, 0..nc.points().len(), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut ours: BTreeMap<(usize, String, i32), f64> = BTreeMap::new();
        for r in &got {
            let key = (r.point, hazards[r.hazard].risk_type.to_string(), r.year);
            assert!(
                ours.insert(key, r.value).is_none(),
                "duplicate output {r:?}"
            );
        }
        for (key, exp) in rows {
            compared += 1;
            let (point, risk, year) = key;
            let (lat, lon) = nc.points()[*point];
            assert_eq!(
                (lat, lon),
                (exp.lat, exp.lon),
                "{file} point {point} coordinates"
            );
            let hazard = hazards
                .iter()
                .find(|h| h.risk_type == risk.as_str())
                .unwrap();
            let got = ours.remove(key);
            match (exp.value, got) {
                (None, None) => empty += 1,
                (Some(e), Some(g)) => {
                    with_value += 1;
                    let ok = match hazard.index {
                        IndexKind::MaxNDayAmount { .. } => {
                            (g - e).abs() <= 1e-4 * e.abs().max(f64::MIN_POSITIVE)
                        }
                        _ => g == e,
                    };
                    if !ok {
                        failures.push(format!(
                            "{file} p{point} {risk} {year}: xclim {e}, ours {g}"
                        ));
                    }
                }
                (e, g) => failures.push(format!(
                    "{file} p{point} {risk} {year}: xclim {e:?}, ours {g:?}"
                )),
            }
        }
        // Anything left is a value xclim does not have at all.
        for ((point, risk, year), v) in ours {
            failures.push(format!(
                "{file} p{point} {risk} {year}: not in expected.csv, ours {v}"
            ));
        }
    }
    eprintln!("compared {compared} rows: {with_value} values, {empty} empty (NaN in xclim)");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(with_value > 0 && empty > 0);
}
