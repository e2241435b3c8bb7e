#!/usr/bin/env python3
"""Benchmark (a) of issue 3: xclim computing the five hazard indices on one generated file.

    python3 -m venv .venv && .venv/bin/pip install -r tools/fixtures/requirements.txt   # same env
    .venv/bin/python bench/hazard/xclim_reference.py FILE.nc [--repeat N]

FILE.nc is the file `jobctl demo-data` writes (e.g. 1,000 points x 80 years, one scenario,
daily tasmax/tasmin/pr). The file is read with xarray's netCDF4 backend and fully load()ed into
numpy first (no dask anywhere), then the five indices are computed with the same xclim.atmos calls
as the reference fixtures (tools/fixtures/make_hazard_fixtures.py). Only the index computation is
in "seconds"; reading the file is reported separately as "load_seconds".

stdout, last line: one JSON object
    {"tool": "xclim", "seconds": ..., "peak_rss_mb": ..., "points": ..., "years": ..., ...}
Versions (xclim, numpy, ...) and the BLAS/threadpool setup go to stderr and into the JSON.

BLAS note: on some processors OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) are set on this machine
because older OpenBLAS builds compute wrong results or crash there; they slow a current numpy. The
benchmark runner should unset BOTH for this command only (never in tests or CI), e.g.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/hazard/xclim_reference.py FILE.nc

and check the "blas" field (threadpoolctl: which kernel / architecture actually runs). The JSON also
records whether either variable was set for the run ("openblas_env").

Python is only used for reference fixtures and benchmarks, never by the jobs at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=FutureWarning)


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", help="CF NetCDF file with daily tasmax, tasmin, pr")
    ap.add_argument("--repeat", type=int, default=1, help="time the computation N times, report the fastest")
    args = ap.parse_args()

    t_import = time.perf_counter()
    import numpy as np
    import netCDF4
    import xarray as xr
    import xclim
    from threadpoolctl import threadpool_info
    from xclim import atmos
    from xclim.core.units import convert_units_to
    import_seconds = time.perf_counter() - t_import

    xr.set_options(keep_attrs=True)
    t0 = time.perf_counter()
    with netCDF4.Dataset(args.path) as nc:
        calendar = getattr(nc["time"], "calendar", "standard")
    coder = xr.coders.CFDatetimeCoder(use_cftime=calendar not in ("standard", "gregorian", "proleptic_gregorian"))
    # chunks=None: plain (lazily indexed) numpy arrays, no dask; load() reads everything now.
    ds = xr.open_dataset(args.path, engine="netcdf4", decode_times=coder, chunks=None)
    ds = ds[["tasmax", "tasmin", "pr"]].load()
    load_seconds = time.perf_counter() - t0
    for v in ("tasmax", "tasmin", "pr"):
        assert not hasattr(ds[v].data, "dask"), "dask array: the benchmark must run on numpy"

    space = [d for d in ds.tasmax.dims if d != "time"]
    points = int(np.prod([ds.sizes[d] for d in space]))
    years = int(len(np.unique(ds.time.dt.year.values)))

    def compute() -> dict:
        out = {
            "extreme_heat": atmos.tx_days_above(tasmax=ds.tasmax, thresh="33 degC", op=">=", freq="YS"),
            "extreme_cold": atmos.tn_days_below(tasmin=ds.tasmin, thresh="-12 degC", op="<=", freq="YS"),
            "drought": atmos.maximum_consecutive_dry_days(pr=ds.pr, thresh="1 mm/day", freq="YS"),
            "urban_flood": convert_units_to(atmos.max_1day_precipitation_amount(pr=ds.pr, freq="YS"), "mm/day"),
            "river_flood": convert_units_to(
                atmos.max_n_day_precipitation_amount(pr=ds.pr, window=5, freq="YS"), "mm"
            ),
        }
        for k, da in out.items():  # eager already with numpy; make sure nothing is left lazy
            out[k] = da.load()
        return out

    times = []
    for _ in range(max(1, args.repeat)):
        t1 = time.perf_counter()
        res = compute()
        times.append(time.perf_counter() - t1)
    seconds = min(times)

    n_values = sum(int(da.size) for da in res.values())
    n_nan = sum(int(np.isnan(da.values).sum()) for da in res.values())
    blas = [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "num_threads")}
        for i in threadpool_info()
    ]
    versions = {
        "python": platform.python_version(),
        "xclim": xclim.__version__,
        "numpy": np.__version__,
        "xarray": xr.__version__,
        "netCDF4": netCDF4.__version__,
    }
    try:
        import bottleneck

        versions["bottleneck"] = bottleneck.__version__
    except ImportError:
        pass
    print(f"versions: {json.dumps(versions)}", file=sys.stderr)
    print(f"blas: {json.dumps(blas)}", file=sys.stderr)
    print(
        f"{args.path}: {points} points x {years} years; load {load_seconds:.2f} s, indices {seconds:.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)}); {n_values} index values, {n_nan} NaN",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "tool": "xclim",
                "seconds": round(seconds, 3),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "points": points,
                "years": years,
                "load_seconds": round(load_seconds, 3),
                "import_seconds": round(import_seconds, 3),
                "index_values": n_values,
                "index_nan": n_nan,
                "file": os.path.abspath(args.path),
                "versions": versions,
                "blas": blas,
                "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
