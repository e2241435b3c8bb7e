//! Fits per second of `probability` on 30-value samples: the Rust side of the probability
//! micro-benchmark (bench/probability; not a test, nothing here asserts on time).
//!
//! ```sh
//! .venv/bin/python bench/probability/lmoments3_fits.py          # writes the samples + params
//! cargo run --release --example probability_fits -- [samples.f64] [runs]
//! ```
//!
//! Reads the samples the Python side wrote (n × 30 little-endian f64) and times, per run, one
//! full [`Fitter::fit_into`] per sample with the `river_flood` configuration (GEV path: sort,
//! L-moments, parameters, 7 bin probabilities, 3 return levels), plus the parameter fit alone
//! ([`gev::fit_sorted`] on a pre-sorted copy, the work `lmom_fit` does). When
//! `params_lmoments3.f64` is next to the samples, it also reports the largest relative
//! difference of the parameters from lmoments3's over all samples. Prints one JSON object:
//! fits per second of wall time and of this thread's CPU time.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use climate_jobs::probability::{Fitted, Fitter, Method, default_config, gev};

const LEN: usize = 30;

fn read_f64s(path: &PathBuf) -> std::io::Result<Vec<f64>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            f64::from_le_bytes(a)
        })
        .collect())
}

/// CPU time of this thread, in seconds: on a shared, loaded machine wall time also counts the
/// time the thread waited for a core, CPU time only the work (reported beside wall time).
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid, exclusive pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/work/probability/samples.f64"));
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let data = read_f64s(&path)?;
    if data.is_empty() || data.len() % LEN != 0 {
        return Err(format!(
            "{}: not a whole number of {LEN}-value samples",
            path.display()
        )
        .into());
    }
    let n = data.len() / LEN;
    let config = default_config("river_flood").ok_or("no river_flood config")?;

    let mut fitter = Fitter::new();
    let mut out = Fitted::default();
    // Warm-up, and the per-sample results for the parameter check.
    let mut params = Vec::with_capacity(n);
    for s in data.chunks_exact(LEN) {
        fitter.fit_into(s, &config, &mut out)?;
        if out.method != Method::Gev {
            return Err(format!("sample fitted as {}, not GEV", out.method).into());
        }
        params.push(out.params.ok_or("GEV without parameters")?);
    }

    let mut full = Vec::with_capacity(runs);
    let mut full_cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t, c) = (Instant::now(), thread_cpu_s());
        for s in data.chunks_exact(LEN) {
            fitter.fit_into(black_box(s), &config, &mut out)?;
            black_box(&out);
        }
        full_cpu.push(n as f64 / (thread_cpu_s() - c));
        full.push(n as f64 / t.elapsed().as_secs_f64());
    }

    let mut sorted = data.clone();
    for s in sorted.chunks_exact_mut(LEN) {
        s.sort_unstable_by(f64::total_cmp);
    }
    let mut params_only = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        for s in sorted.chunks_exact(LEN) {
            black_box(gev::fit_sorted(black_box(s)).ok());
        }
        params_only.push(n as f64 / t.elapsed().as_secs_f64());
    }

    // The same work as `lmom_fit`: sort the sample, L-moments, parameters.
    let mut sort_and_params = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        for s in data.chunks_exact(LEN) {
            black_box(fitter.gev_params(black_box(s)).ok());
        }
        sort_and_params.push(n as f64 / t.elapsed().as_secs_f64());
    }

    let reference = path.with_file_name("params_lmoments3.f64");
    let max_rel_err = match read_f64s(&reference) {
        Ok(r) if r.len() == 3 * n => {
            let mut worst = 0.0_f64;
            for (p, w) in params.iter().zip(r.chunks_exact(3)) {
                for (g, w) in [(p.c, w[0]), (p.loc, w[1]), (p.scale, w[2])] {
                    if g != w {
                        worst = worst.max((g - w).abs() / w.abs().max(f64::MIN_POSITIVE));
                    }
                }
            }
            Some(worst)
        }
        _ => None,
    };

    let round = |x: f64| (x * 10.0).round() / 10.0;
    let json = serde_json::json!({
        "impl": "climate_jobs::probability::Fitter::fit_into (GEV, river_flood config)",
        "what": "sort + L-moments + parameters + 7 bin probabilities + 3 return levels of one 30-value sample",
        "samples": n,
        "fits_per_s_runs": full.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "fits_per_s_median": round(median(&full)),
        "ns_per_fit_median": round(1e9 / median(&full)),
        "fits_per_cpu_s_runs": full_cpu.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "fits_per_cpu_s_median": round(median(&full_cpu)),
        "params_only_fits_per_s_runs": params_only.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "params_only_fits_per_s_median": round(median(&params_only)),
        "sort_and_params_fits_per_s_runs": sort_and_params.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "sort_and_params_fits_per_s_median": round(median(&sort_and_params)),
        "max_rel_param_diff_vs_lmoments3": max_rel_err,
    });
    println!("{json}");
    Ok(())
}
