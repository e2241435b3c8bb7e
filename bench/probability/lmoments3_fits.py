#!/usr/bin/env python3
"""Fits per second of lmoments3.distr.gev.lmom_fit on 30-value samples (the Python side of the
probability micro-benchmark; the Rust side is examples/probability_fits.rs).

    .venv/bin/python bench/probability/lmoments3_fits.py [--n 10000] [--runs 3] [--out DIR]

Writes the samples the Rust side fits (DIR/samples.f64: n x 30 little-endian float64, row by row)
and lmoments3's parameters for them (DIR/params_lmoments3.f64: n x [c, loc, scale]), so both sides
fit the very same numbers and the Rust side can check its parameters on all of them. Samples: GEV
with c cycling over -0.3, -0.15, 0, 0.1, 0.2 (loc 100, scale 30), numpy default_rng(20240),
so the file is the same on every run. Prints one JSON object on stdout: fits per second of wall
time and of this thread's CPU time (the machine may be shared; CPU time leaves out waiting).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import genextreme

from lmoments3 import distr

ROOT = Path(__file__).resolve().parents[2]
SHAPES = [-0.3, -0.15, 0.0, 0.1, 0.2]
LEN = 30


def samples(n: int) -> np.ndarray:
    rng = np.random.default_rng(20240)
    out = np.empty((n, LEN))
    for i in range(n):
        out[i] = genextreme.rvs(SHAPES[i % len(SHAPES)], loc=100.0, scale=30.0, size=LEN,
                                random_state=rng)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "work" / "probability")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    x = samples(args.n)
    x.astype("<f8").tofile(args.out / "samples.f64")

    rows = list(x)  # one numpy array per sample, as a batch would hand them over
    params = np.empty((args.n, 3))
    fit = distr.gev.lmom_fit
    fit(rows[0])  # warm-up (imports, caches)
    runs, cpu_runs = [], []
    for _ in range(args.runs):
        t, c = time.perf_counter(), time.thread_time()
        for i, r in enumerate(rows):
            p = fit(r)
            params[i] = (p["c"], p["loc"], p["scale"])
        cpu_runs.append(args.n / (time.thread_time() - c))
        runs.append(args.n / (time.perf_counter() - t))
    params.astype("<f8").tofile(args.out / "params_lmoments3.f64")
    print(json.dumps({
        "impl": "lmoments3.distr.gev.lmom_fit",
        "what": "parameters only (c, loc, scale) of one 30-value sample",
        "samples": args.n,
        "fits_per_s_runs": [round(r, 1) for r in runs],
        "fits_per_s_median": round(statistics.median(runs), 1),
        "us_per_fit_median": round(1e6 / statistics.median(runs), 3),
        "fits_per_cpu_s_runs": [round(r, 1) for r in cpu_runs],
        "fits_per_cpu_s_median": round(statistics.median(cpu_runs), 1),
        "versions": {"python": platform.python_version(),
                     **{k: md.version(k) for k in ("lmoments3", "numpy", "scipy")}},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
