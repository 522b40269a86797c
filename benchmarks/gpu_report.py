"""The rows `scripts/gpu_check.sh OUT` measured, as markdown for benchmarks/RESULTS.md.

    python benchmarks/gpu_report.py OUT

Reads OUT/device.txt, OUT/flops_*.json, OUT/train_*.json, OUT/envs.json and the run OUT/run (metrics.jsonl,
summary.json); a stage that did not finish shows as "not measured" with the reason in OUT/log.txt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _rows(value) -> list[dict]:
    return [] if value is None else value if isinstance(value, list) else [value]


def report(out: Path) -> str:
    device = (out / "device.txt").read_text().strip().splitlines() if (out / "device.txt").exists() else []
    lines = ["# GPU check", "", f"Device: {device[-1] if device else 'unknown'}", "",
             "| preset | agent | seeds | updates/s per seed | updates/s total | policy steps/s per seed | "
             "fraction of matmul peak | peak memory (MB) |", "|---|---|---|---|---|---|---|---|"]
    for path in sorted(out.glob("train_*.json")):
        flops = {r["seeds"]: r for r in _rows(_read_json(out / path.name.replace("train_", "flops_")))}
        rows = _rows(_read_json(path))
        if not rows:
            lines.append(f"| {path.stem.removeprefix('train_')} | | | not measured (see log.txt) | | | | |")
        for r in rows:
            counted = flops.get(r["seeds"], {})
            peak = counted.get("fraction_of_peak")
            share = "" if peak is None else f"{peak:.1%} of {counted.get('matmul_peak_gflops')} GFLOP/s"
            memory = r.get("peak_device_mb", r.get("peak_rss_mb"))
            lines.append(f"| {r['preset']} | {r['agent']} | {r['seeds']} | {r['updates_per_s']} | "
                         f"{r['total_updates_per_s']} | {r['policy_steps_per_s']} | {share} | {memory} |")
    envs = _read_json(out / "envs.json")
    rates = []
    for r in (envs or {}).get("envs", []):
        batched = next((k for k in r if k.startswith("batched")), None)
        workers = batched.removeprefix("batched").removesuffix("_steps_per_s") if batched else "?"
        rates.append(f"{r['task']} {r.get(batched)} steps/s with {workers} workers "
                     f"({r['single_steps_per_s']} in one process)")
    lines += ["", "Environment steps/s: " + ("; ".join(rates) or "not measured (see log.txt)")]
    metrics_path = out / "run" / "metrics.jsonl"
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()] \
        if metrics_path.exists() else []
    summary = _read_json(out / "run" / "summary.json") or {}
    curve = [(r["step"], round(r["episode/return"], 1)) for r in records if "episode/return" in r]
    lines += ["", f"Learning run (DreamerV3, walker_walk): {summary.get('step', 'no')} policy steps, "
              f"{summary.get('updates', 0)} updates", "",
              "Return curve (step, episode return): " + (", ".join(f"({s}, {v})" for s, v in curve) or "none")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/gpu_report.py OUT")
    print(report(Path(sys.argv[1])), end="")
