#!/usr/bin/env python3
"""Summarise one bench/hazard/run.sh run (standard library only).

    python3 bench/hazard/summarize.py bench/work/raw-STAMP bench/results

Reads the raw files run.sh left (TAG.time from /usr/bin/time -v, TAG.out whose last line is the
tool's JSON, meta.json), takes the median of the repetitions, writes
RESULTS/hazard-DATE.json, appends a Markdown table to RESULTS/README.md and prints it.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

TARGET_SPEEDUP = {1000: 20.0, 5000: 25.0}  # issue 10; other sizes: 20
TARGET_FLOOR_RATIO = 1.3
TARGET_RSS_MB = 300.0


def parse_time(path: Path) -> dict:
    text = path.read_text()

    def field(label: str) -> str:
        m = re.search(re.escape(label) + r".*?: (.+)", text)
        if not m:
            raise ValueError(f"{path}: no '{label}'")
        return m.group(1).strip()

    wall = 0.0
    for part in field("Elapsed (wall clock) time").split(":"):
        wall = wall * 60 + float(part)
    return {
        "wall_s": round(wall, 3),
        "user_s": float(field("User time (seconds)")),
        "sys_s": float(field("System time (seconds)")),
        "peak_rss_mb": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
        "exit": int(field("Exit status")),
    }


def last_json(path: Path) -> dict | None:
    for line in reversed(path.read_text().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return None


def fmt_list(xs) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def main() -> int:
    raw, results = Path(sys.argv[1]), Path(sys.argv[2])
    meta = json.loads((raw / "meta.json").read_text())
    runs: dict[str, list[dict]] = {}
    for t in sorted(raw.glob("*.time")):
        tag = t.name[: -len(".time")]
        m = re.fullmatch(r"(xclim|job|floor)-p(\d+)(?:-c(\d+))?-r(\d+)", tag)
        if not m:
            continue
        tool, points, conc, rep = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        rec = {"rep": rep, **parse_time(t), "report": last_json(raw / f"{tag}.out")}
        cpu_file = raw / f"{tag}.server_cpu_ms"
        if cpu_file.exists():
            rec["server_cpu_s"] = int(cpu_file.read_text().strip()) / 1000
        rows_file = raw / f"{tag}.rows"
        if rows_file.exists():
            rec["rows_in_table"] = int(rows_file.read_text().strip())
        key = f"{tool}-p{points}" + (f"-c{conc}" if conc else "")
        runs.setdefault(key, []).append(rec)

    def summary(key: str) -> dict | None:
        rs = runs.get(key)
        if not rs:
            return None
        rs.sort(key=lambda r: r["rep"])
        s = {
            "runs": rs,
            "wall_s": [r["wall_s"] for r in rs],
            "median_wall_s": med([r["wall_s"] for r in rs]),
            "median_peak_rss_mb": med([r["peak_rss_mb"] for r in rs]),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "median_cpu_s": med([r["user_s"] + r["sys_s"] for r in rs]),
        }
        if all("server_cpu_s" in r for r in rs):
            s["median_server_cpu_s"] = med([r["server_cpu_s"] for r in rs])
        inner = [r["report"].get("seconds") for r in rs if r["report"] and "seconds" in r["report"]]
        if inner:
            s["median_seconds_reported"] = med(inner)
        if key.startswith("job"):
            s["median_duration_ms_reported"] = med([r["report"]["duration_ms"] for r in rs])
            s["rows_written"] = [r["report"].get("rows_written") for r in rs]
        if key.startswith("floor"):
            s["median_read_s"] = med([r["report"]["read_seconds"] for r in rs])
            s["median_copy_s"] = med([r["report"]["copy_seconds"] for r in rs])
            s["median_compute_s"] = med([r["report"].get("compute_seconds", 0.0) for r in rs])
            s["rows"] = [r["report"]["rows"] for r in rs]
        if key.startswith("xclim"):
            s["median_load_s"] = med([r["report"]["load_seconds"] for r in rs])
            s["versions"] = rs[0]["report"].get("versions")
            s["blas"] = rs[0]["report"].get("blas")
        return s

    sizes = sorted({int(re.search(r"-p(\d+)", k).group(1)) for k in runs})
    out = {**meta, "targets": {"xclim_over_job_min": {str(k): v for k, v in TARGET_SPEEDUP.items()},
                               "job_over_floor_max": TARGET_FLOOR_RATIO,
                               "peak_rss_mb_max": TARGET_RSS_MB},
           "sizes": {}}
    for n in sizes:
        size: dict = {"xclim": summary(f"xclim-p{n}"), "floor": summary(f"floor-p{n}"), "job": {}}
        for c in meta["concurrency"]:
            size["job"][str(c)] = summary(f"job-p{n}-c{c}")
        jobs = {c: j for c, j in size["job"].items() if j}
        best_c = min(jobs, key=lambda c: jobs[c]["median_wall_s"])
        best = jobs[best_c]
        ratios: dict = {"headline_concurrency": int(best_c)}
        if size["xclim"]:
            ratios["xclim_indices_over_job"] = round(size["xclim"]["median_seconds_reported"] / best["median_wall_s"], 2)
            ratios["xclim_process_over_job"] = round(size["xclim"]["median_wall_s"] / best["median_wall_s"], 2)
        if size["floor"]:
            ratios["job_over_floor"] = round(best["median_wall_s"] / size["floor"]["median_wall_s"], 3)
            ratios["job_over_read_compute"] = round(best["median_wall_s"] / size["floor"]["median_compute_s"], 3)
        ratios["job_peak_rss_mb_max"] = max(j["max_peak_rss_mb"] for j in jobs.values())
        size["ratios"] = ratios
        out["sizes"][str(n)] = size

    results.mkdir(parents=True, exist_ok=True)
    json_path = results / f"hazard-{meta['date']}.json"
    json_path.write_text(json.dumps(out, indent=2) + "\n")

    # The human table.
    def srv(s: dict) -> str:
        v = s.get("median_server_cpu_s")
        return "—" if v is None else f"{v:.2f}"

    def pts(n: int) -> str:
        return f"{n:,}"

    years = meta["years"].replace("..", "–")
    lines = [
        f"## hazard-timeseries-batch, {meta['date']} (commit {meta['commit']})",
        "",
        f"{meta['machine']['nproc']} cores, {meta['machine']['cpu']}, {meta['software']['postgres']} "
        f"(throw-away cluster, fsync off), {meta['software']['rustc']}. One scenario, daily "
        f"{years}, file in the page cache. Every figure is the median of {meta['reps']} runs "
        f"(round-robin); wall time measured outside the process (`/usr/bin/time -v`). "
        f"Load average before: {meta['load_average']['before']}; after: {meta['load_average']['after']}. "
        f"Raw figures: `{json_path.name}`.",
        "",
        "| points | measurement | median wall (s) | runs (s) | CPU (s) | Postgres CPU (s) | peak RSS (MB) |",
        "|---:|---|---:|---|---:|---:|---:|",
    ]
    for n in sizes:
        size = out["sizes"][str(n)]
        x = size["xclim"]
        if x:
            lines.append(
                f"| {pts(n)} | xclim {x['versions'].get('xclim')}: five indices (load {x['median_load_s']:.2f} s not counted) "
                f"| **{x['median_seconds_reported']:.2f}** | {fmt_list(r['report']['seconds'] for r in x['runs'])} "
                f"| — | — | {x['median_peak_rss_mb']:.0f} |"
            )
            lines.append(
                f"| {pts(n)} | xclim whole process (import + load + indices) | {x['median_wall_s']:.2f} "
                f"| {fmt_list(x['wall_s'])} | {x['median_cpu_s']:.2f} | — | {x['median_peak_rss_mb']:.0f} |"
            )
        else:
            lines.append(
                f"| {pts(n)} | xclim: not run (XCLIM_MAX_POINTS): it loads the whole file, so RSS grows "
                f"with it (1.6 GB at 1,000 points) | — | | | | |"
            )
        for c, j in size["job"].items():
            if not j:
                continue
            head = " (headline)" if int(c) == size["ratios"]["headline_concurrency"] else ""
            lines.append(
                f"| {pts(n)} | job end to end, `--concurrency {c}`{head} | **{j['median_wall_s']:.2f}** "
                f"| {fmt_list(j['wall_s'])} | {j['median_cpu_s']:.2f} | {srv(j)} | {j['median_peak_rss_mb']:.0f} |"
            )
        f = size["floor"]
        if f:
            lines.append(
                f"| {pts(n)} | floor: read + compute {f['median_compute_s']:.2f} s (read alone {f['median_read_s']:.2f} s) + COPY {f['median_copy_s']:.2f} s of {f['rows'][0]:,} series rows "
                f"| **{f['median_wall_s']:.2f}** | {fmt_list(f['wall_s'])} | {f['median_cpu_s']:.2f} | {srv(f)} | {f['median_peak_rss_mb']:.0f} |"
            )
    lines += ["", "| target | " + " | ".join(f"{pts(n)} points" for n in sizes) + " |",
              "|---|" + "---:|" * len(sizes)]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    row_speed = ["xclim / job ≥ " + " / ".join(f"{TARGET_SPEEDUP.get(n, 20.0):.0f}×" for n in sizes)]
    row_floor, row_rss = ["job / floor (read + compute + COPY) ≤ 1.3×"], ["job peak RSS < 300 MB"]
    row_rc = ["job / read + compute alone"]
    for n in sizes:
        r = out["sizes"][str(n)]["ratios"]
        if "xclim_indices_over_job" in r:
            v = r["xclim_indices_over_job"]
            row_speed.append(f"{v:.1f}× ({verdict(v >= TARGET_SPEEDUP.get(n, 20.0))}; whole process {r['xclim_process_over_job']:.1f}×)")
        else:
            row_speed.append("— (xclim not run)")
        if "job_over_floor" in r:
            v = r["job_over_floor"]
            row_floor.append(f"{v:.2f}× ({verdict(v <= TARGET_FLOOR_RATIO)})")
            row_rc.append(f"{r['job_over_read_compute']:.2f}×")
        else:
            row_floor.append("—")
            row_rc.append("—")
        v = r["job_peak_rss_mb_max"]
        row_rss.append(f"{v:.0f} MB, max of all runs ({verdict(v < TARGET_RSS_MB)})")
    for row in (row_speed, row_floor, row_rc, row_rss):
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Ratios use the headline job (the faster concurrency at that size) and the medians; "
        "xclim / job compares xclim's index computation alone (its file load excluded) with the "
        "job's whole process wall time, which includes reading the file and writing Postgres. "
        "CPU = user + system time of the measured process; Postgres CPU = CPU time of the server "
        "backends the run caused (other processes, not in the wall-clock CPU column)."
    )
    table = "\n".join(lines) + "\n"

    readme = results / "README.md"
    if not readme.exists():
        readme.write_text(
            "# Recorded benchmark results\n\n"
            "Appended by the benchmark scripts (`bench/hazard/run.sh`); the JSON files next to this "
            "one hold every raw figure. Newest last.\n"
        )
    with readme.open("a") as fh:
        fh.write("\n" + table)
    print(table)
    print(f"written: {json_path} and {readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
