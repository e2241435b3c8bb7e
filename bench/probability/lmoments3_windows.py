#!/usr/bin/env python3
"""lmoments3 over the same windows probability-batch fits (bench/probability/e2e.sh).

    python bench/probability/lmoments3_windows.py SERIES.csv [--window 30] [--min-years 20] [--runs 3]

SERIES.csv: `grid_id,risk_type,first_year,{v1,v2,...}` (psql COPY of hazard_results; NULL =
missing year). Every year of every series gets the window probability-batch takes
(`probability::window_years`: `window` years around it, moved inside the series' span; missing
years dropped; at least `min_years` values), and `lmoments3.distr.gev.lmom_fit` fits it. Only the
fits are timed (loading and window building are not). stdout: one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
import warnings

import numpy as np
from lmoments3 import distr

warnings.filterwarnings("ignore")


def window_years(first: int, last: int, target: int, n: int) -> tuple[int, int]:
    if last - first < n:
        return first, last
    start = target - n // 2
    end = start + n - 1
    if start < first:
        start, end = first, first + n - 1
    elif end > last:
        end, start = last, last - n + 1
    return start, end


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("series")
    ap.add_argument("--window", type=int, default=30)
    ap.add_argument("--min-years", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    windows = []
    with open(args.series, newline="") as fh:
        for grid_id, risk_type, first_year, values in csv.reader(fh):
            vals = [None if v == "NULL" else float(v) for v in values.strip("{}").split(",")]
            first = int(first_year)
            present = [(first + i, v) for i, v in enumerate(vals) if v is not None]
            if not present:
                continue
            lo, hi = present[0][0], present[-1][0]
            for year in range(lo, hi + 1):
                s, e = window_years(lo, hi, year, args.window)
                w = np.array([v for y, v in present if s <= y <= e])
                if len(w) >= args.min_years:
                    windows.append(w)
    fit = distr.gev.lmom_fit
    runs, failed = [], 0
    for _ in range(args.runs):
        failed = 0
        t = time.perf_counter()
        for w in windows:
            try:
                fit(w)
            except Exception:  # constant windows: lmoments3 raises; the batch calls them degenerate
                failed += 1
        runs.append(time.perf_counter() - t)
    print(json.dumps({"tool": "lmoments3.distr.gev.lmom_fit", "windows": len(windows),
                      "failed": failed, "seconds_runs": [round(r, 3) for r in runs],
                      "median_seconds": round(statistics.median(runs), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
