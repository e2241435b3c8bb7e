#!/usr/bin/env bash
# Probability micro-benchmark: lmoments3.distr.gev.lmom_fit vs probability::Fitter::fit_into on
# the same 10,000 30-value samples, 3 timed runs each (median), recorded in
# bench/results/probability-fits-<date>.json. Needs the .venv of
# tools/fixtures/requirements-probability.txt. Not a test: nothing asserts on time.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
py=$(.venv/bin/python bench/probability/lmoments3_fits.py --n 10000 --runs 3)
cargo build -q --release --example probability_fits
rs=$("$CARGO_TARGET_DIR"/release/examples/probability_fits bench/work/probability/samples.f64 3)
echo "$py"
echo "$rs"
mkdir -p bench/results
out="bench/results/probability-fits-$(date +%F).json"
PY="$py" RS="$rs" LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" .venv/bin/python - "$out" <<'PYEOF'
import json, os, platform, sys
py, rs = json.loads(os.environ["PY"]), json.loads(os.environ["RS"])
doc = {
    "benchmark": "bench/probability/run.sh",
    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                "loadavg_1_5_15_at_end": os.environ["LOAD"]},
    "lmoments3": py,
    "rust": rs,
    "ratio_fit_window_vs_lmom_fit_wall": round(rs["fits_per_s_median"] / py["fits_per_s_median"], 1),
    "ratio_fit_window_vs_lmom_fit_cpu": round(rs["fits_per_cpu_s_median"] / py["fits_per_cpu_s_median"], 1),
    "ratio_params_only_vs_lmom_fit_wall": round(rs["params_only_fits_per_s_median"] / py["fits_per_s_median"], 1),
    # Same work as lmom_fit (sort + L-moments + parameters): the issue's comparison.
    "ratio_sort_and_params_vs_lmom_fit_wall": round(rs["sort_and_params_fits_per_s_median"] / py["fits_per_s_median"], 1),
}
with open(sys.argv[1], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(json.dumps({k: v for k, v in doc.items() if k.startswith("ratio")}))
PYEOF
echo "recorded $out"
