//! `src/probability` against the reference fixtures in tests/fixtures/probability (produced by
//! tools/fixtures/make_probability_fixtures.py with lmoments3, scipy and numpy): GEV parameters
//! within 1e-6 relative of `lmoments3.distr.gev.lmom_fit`, bin probabilities within 1e-6
//! absolute and return levels within 1e-6 relative of scipy / numpy, every bins vector summing
//! to 1 within 1e-9, no NaN; and window selection identical to the fixture's.

use std::path::{Path, PathBuf};

use climate_jobs::probability::{
    FitMethod, Fitted, Fitter, Method, ProbabilityConfig, RETURN_PERIODS, default_config,
    fit_window, window, window_years,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probability")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("fixture file");
    serde_json::from_str(&text).expect("fixture json")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN)) // null marks a missing (NaN) value
        .collect()
}

fn rel_err(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        (got - want).abs() / want.abs().max(f64::MIN_POSITIVE)
    }
}

fn method_of(name: &str) -> Method {
    match name {
        "gev" => Method::Gev,
        "empirical" => Method::Empirical,
        "degenerate" => Method::Degenerate,
        "empirical_fallback" => Method::EmpiricalFallback,
        other => panic!("unknown method {other}"),
    }
}

fn assert_sane(name: &str, f: &Fitted) {
    let sum: f64 = f.bin_probs.iter().sum();
    assert!((sum - 1.0).abs() <= 1e-9, "{name}: bins sum to {sum}");
    assert!(
        f.bin_probs
            .iter()
            .all(|p| p.is_finite() && (0.0..=1.0).contains(p)),
        "{name}: {:?}",
        f.bin_probs
    );
    assert!(f.return_levels.iter().all(|z| z.is_finite()), "{name}");
    if let Some(p) = f.params {
        assert!(
            p.c.is_finite() && p.loc.is_finite() && p.scale > 0.0,
            "{name}"
        );
    }
}

#[test]
fn fits_match_lmoments3_scipy_and_numpy() {
    let doc = load("expected.json");
    assert_eq!(floats(&doc["return_periods"]), RETURN_PERIODS.to_vec());
    let fixtures = doc["fixtures"].as_array().expect("fixtures");
    assert!(fixtures.len() >= 30, "{} fixtures", fixtures.len());
    let (mut max_param, mut max_prob, mut max_level) = (0.0_f64, 0.0_f64, 0.0_f64);
    let mut worst = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for fx in fixtures {
        let name = fx["name"].as_str().expect("name");
        let method = match fx["method"].as_str() {
            Some("gev") => FitMethod::Gev,
            Some("empirical") => FitMethod::Empirical,
            other => panic!("{name}: method {other:?}"),
        };
        let config = ProbabilityConfig::new(name.to_string(), method, floats(&fx["bin_edges"]))
            .expect("valid edges");
        let values = floats(&fx["values"]);
        let want = &fx["expected"];
        let got = fit_window(&values, &config).expect("fit");
        assert_sane(name, &got);

        assert_eq!(
            got.method,
            method_of(want["method"].as_str().expect("method")),
            "{name}"
        );
        seen.insert(got.method.as_str());
        assert_eq!(got.n as u64, want["n"].as_u64().expect("n"), "{name}");
        match (&got.params, want["params"].is_null()) {
            (Some(p), false) => {
                let w = &want["params"];
                for (g, key) in [(p.c, "c"), (p.loc, "loc"), (p.scale, "scale")] {
                    let e = rel_err(g, w[key].as_f64().expect("param"));
                    // c == 0 (Gumbel branch) must be exactly 0 as in lmoments3.
                    assert!(
                        e <= 1e-6,
                        "{name}: {key} = {g}, lmoments3 {} ({e:e})",
                        w[key]
                    );
                    if e > max_param {
                        max_param = e;
                        worst = format!("{name}.{key}");
                    }
                }
            }
            (None, true) => {}
            (g, _) => panic!("{name}: params {g:?} vs {}", want["params"]),
        }
        let wb = floats(&want["bin_probs"]);
        assert_eq!(got.bin_probs.len(), wb.len(), "{name}");
        assert_eq!(got.bin_probs.len(), config.n_bins(), "{name}");
        for (i, (g, w)) in got.bin_probs.iter().zip(&wb).enumerate() {
            let e = (g - w).abs();
            assert!(e <= 1e-6, "{name}: bin {i}: {g} vs {w}");
            max_prob = max_prob.max(e);
        }
        for (i, (g, w)) in got
            .return_levels
            .iter()
            .zip(floats(&want["return_levels"]))
            .enumerate()
        {
            let e = rel_err(*g, w);
            assert!(e <= 1e-6, "{name}: return level {i}: {g} vs {w}");
            max_level = max_level.max(e);
        }
    }
    // Every kind of result is covered by at least one fixture.
    for m in ["gev", "empirical", "degenerate", "empirical_fallback"] {
        assert!(seen.contains(m), "no fixture gives {m}");
    }
    eprintln!(
        "{} fixtures: max relative parameter error {max_param:e} ({worst}), max bin probability \
         error {max_prob:e}, max relative return-level error {max_level:e}",
        fixtures.len()
    );
}

#[test]
fn fixture_edges_are_the_default_config() {
    let doc = load("expected.json");
    let edges = doc["default_bin_edges"].as_object().expect("edges");
    assert_eq!(edges.len(), 5);
    for (risk, e) in edges {
        let c = default_config(risk).expect("default config");
        assert_eq!(c.bin_edges(), floats(e).as_slice(), "{risk}");
    }
}

#[test]
fn windows_match_the_fixture() {
    let doc = load("windows.json");
    let series = doc["series"].as_object().expect("series");
    let windows = doc["windows"].as_array().expect("windows");
    for w in windows {
        let s: Vec<(i32, f64)> = series[w["series"].as_str().expect("series name")]
            .as_array()
            .expect("pairs")
            .iter()
            .map(|p| {
                let year = p[0].as_i64().expect("year") as i32;
                (year, p[1].as_f64().unwrap_or(f64::NAN))
            })
            .collect();
        let target = w["target"].as_i64().expect("target") as i32;
        let len = w["len"].as_u64().expect("len") as usize;
        let min_years = w["min_years"].as_u64().expect("min_years") as usize;
        let what = format!("{} target {target} len {len}", w["series"]);
        let years = window_years(&s, target, len);
        let want_years = if w["years"].is_null() {
            None
        } else {
            let y = floats(&w["years"]);
            Some((y[0] as i32, y[1] as i32))
        };
        assert_eq!(years, want_years, "{what}");
        let got = window(&s, target, len, min_years);
        let want = if w["values"].is_null() {
            None
        } else {
            Some(floats(&w["values"]))
        };
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn degenerate_and_tiny_windows_never_give_nan() {
    let mut fitter = Fitter::new();
    let mut out = Fitted::default();
    for config in climate_jobs::probability::default_configs() {
        let edges = config.bin_edges().to_vec();
        let mut cases: Vec<Vec<f64>> = vec![
            vec![0.0; 30],
            vec![edges[0]; 30],
            vec![edges[edges.len() - 1] + 1.0; 20],
            vec![1.0],
            vec![1.0, 2.0],
            vec![1.0, 2.0, 2.0],
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 55.0],
            vec![f64::NAN, 3.0, f64::INFINITY, 3.0],
            vec![1e-300, 2e-300, 3e-300, 5e-300, 8e-300],
            vec![-1e200, 0.0, 1.0, 2.0, 1e200],
        ];
        // Values straddling every edge.
        cases.push(edges.iter().flat_map(|e| [e - 0.5, *e, e + 0.5]).collect());
        for values in &cases {
            let name = format!("{} {values:?}", config.risk_type());
            fitter
                .fit_into(values, &config, &mut out)
                .expect("finite values");
            assert_sane(&name, &out);
            assert_eq!(out.bin_probs.len(), config.n_bins());
            let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            if finite.iter().all(|v| *v == finite[0]) {
                assert_eq!(out.method, Method::Degenerate, "{name}");
                assert_eq!(out.return_levels, [finite[0]; 3]);
            }
        }
    }
}
