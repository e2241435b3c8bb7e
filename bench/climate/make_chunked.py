#!/usr/bin/env python3
"""Rewrite a demo file (contiguous float32 tasmax/tasmin/pr on (time, lat, lon)) chunked along
time as (ntime, 1, 1) with zlib, the layout station-like data often come in.

    make_chunked.py PLAIN.nc OUT.nc [complevel]

Every other variable and attribute is copied unchanged; values are identical.
"""

import sys

import netCDF4
import numpy as np


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    level = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w", format="NETCDF4") as b:
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()})
        for name, d in a.dimensions.items():
            b.createDimension(name, len(d))
        data_vars = [n for n, v in a.variables.items() if v.dimensions[:1] == ("time",) and v.ndim == 3]
        for name, v in a.variables.items():
            kw = {}
            if name in data_vars:
                nt = len(a.dimensions["time"])
                kw = {"zlib": True, "complevel": level, "shuffle": True, "chunksizes": (nt, 1, 1)}
            fill = v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None
            w = b.createVariable(name, v.dtype, v.dimensions, fill_value=fill, **kw)
            w.setncatts({k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"})
            w.set_auto_maskandscale(False)
            v.set_auto_maskandscale(False)
            if name not in data_vars:
                w[:] = v[:]
                continue
            nlat = v.shape[1]
            step = max(1, 20_000_000 // (v.shape[0] * v.shape[2]))  # ~80 MB per block
            for r in range(0, nlat, step):
                w[:, r : r + step, :] = np.asarray(v[:, r : r + step, :])
    return 0


if __name__ == "__main__":
    sys.exit(main())
