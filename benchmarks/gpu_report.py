"""What `scripts/gpu_check.sh OUT` measured, as markdown for benchmarks/RESULTS.md; works on a check that was killed
part-way (every figure it reached is in OUT/figures.jsonl).

    python benchmarks/gpu_report.py OUT

Reads OUT/figures.jsonl (one JSON line per measurement: the device, `hrl bench train` rows, `hrl bench envs` rows,
the group check), the run OUT/run (metrics.jsonl; summary.json once it stopped) and OUT/log.txt (which stages were
cut short or skipped). A stage that measured nothing shows as "not measured".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from hrl_core import rundir

# The official DreamerV3's figure at preset S (its paper's appendix): 8.6 updates/s, 34 environment frames/s, on
# one RTX 3080 Ti, walker_walk at action repeat 2 and train ratio 512.
OFFICIAL_S = {"updates_per_s": 8.6, "frames_per_s": 34, "device": "RTX 3080 Ti"}
ACTION_REPEAT = 2  # walker_walk's default here, as in the official figure


def read_lines(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; a line cut by a kill, or any other non-JSON line, is skipped."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _stages(log: Path) -> list[str]:
    """Stages that log.txt says did not finish: cut by their time limit (124, 137) or skipped."""
    notes = []
    for line in log.read_text().splitlines() if log.exists() else []:
        match = re.search(r"\] (.+?): (exit (\d+) after \d+s|skipped.*)$", line)
        if match and (match.group(3) not in (None, "0") or "skipped" in match.group(2)):
            notes.append(f"{match.group(1)}: {match.group(2)}")
    return notes


def report(out: Path) -> str:
    figures = read_lines(out / "figures.jsonl")
    device = next((r for r in figures if "backend" in r and "devices" in r), {})
    train = [r for r in figures if "updates_per_s" in r]
    envs = [r for r in figures if "single_steps_per_s" in r]
    checks = [r for r in figures if r.get("check") == "group_vs_alone"]
    lines = ["# GPU check", "",
             f"Device: {device.get('device', 'unknown')}; JAX {device.get('jax', '?')} on {device.get('backend', '?')} "
             f"({', '.join(device.get('devices', [])) or '?'})", "",
             "| preset | agent | seeds | updates/s per seed | updates/s total | policy steps/s per seed | "
             f"official DreamerV3 ({OFFICIAL_S['device']}) | compile (s) | FLOPs/update | fraction of matmul peak | "
             "peak memory (MB) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    timed = [r for r in train if "flops_per_update" not in r]
    counted = {(r["preset"], r["agent"], r["seeds"]): r for r in train if "flops_per_update" in r}
    for r in timed or [{}]:
        if not r:
            lines.append("| | | | not measured | | | | | | | |")
            continue
        flops = counted.pop((r["preset"], r["agent"], r["seeds"]), {})
        lines.append(_train_row(r, flops))
    lines += [_train_row(r, r) for r in counted.values()]  # FLOP rows without a timing-only row of their own
    rates = []
    for r in envs:
        batched = next((k for k in r if k.startswith("batched")), None)
        workers = batched.removeprefix("batched").removesuffix("_steps_per_s") if batched else "?"
        rates.append(f"{r['task']} {r.get(batched)} agent steps/s with {workers} worker processes "
                     f"({r['single_steps_per_s']} in one process)")
    lines += ["", "Environment steps/s: " + ("; ".join(rates) or "not measured")]
    run = out / "run"
    records = rundir.read_metrics(run) if rundir.last_logged_step(run) is not None else []
    # The summary is written when the run stops; absent if it was killed.
    summary = rundir.read_summary(run) if rundir.trained_steps(run) is not None else None
    last = records[-1] if records else {}
    steps = (summary or {}).get("step", last.get("step", 0))
    updates = (summary or {}).get("updates", last.get("updates", 0))
    curve = [(r["step"], round(r["episode/return"], 1)) for r in records if "episode/return" in r]
    log = (out / "log.txt").read_text() if (out / "log.txt").exists() else ""
    if (out / "run").exists() or re.search(r"\] walker_walk \S+ run: (?!exit|skipped)", log):
        lines += ["", f"Learning run (DreamerV3, walker_walk): {steps} policy steps, {updates} updates"
                  + ("" if summary else " (stopped before its summary was written)"), "",
                  "Return curve (policy step, episode return): "
                  + (", ".join(f"({s}, {v})" for s, v in curve) or "none")]
    else:
        lines += ["", "Learning run (DreamerV3, walker_walk): not run"]
    for c in checks:
        lines += ["", f"Seed in a {c['seeds']}-seed group vs alone ({c['preset']}, {c['updates']} updates, matmul "
                      f"precision {c['matmul_precision']}): largest parameter difference {c['max_abs_param_diff']:.3g} "
                      f"(parameters up to {c['max_abs_param']:.3g}){', bitwise equal' if c['bitwise_equal'] else ''}"]
    notes = _stages(out / "log.txt")
    if notes:
        lines += ["", "Stages cut short or skipped (log.txt): " + "; ".join(notes)]
    return "\n".join(lines) + "\n"


def _train_row(r: dict, flops: dict) -> str:
    official = ""
    if r["preset"] == "S" and r["agent"] == "dreamer" and r["seeds"] == 1:
        frames = r["policy_steps_per_s"] * ACTION_REPEAT
        official = (f"{OFFICIAL_S['updates_per_s']} updates/s, {OFFICIAL_S['frames_per_s']} frames/s (here "
                    f"{r['updates_per_s'] / OFFICIAL_S['updates_per_s']:.2f}x, {frames:.0f} frames/s)")
    share = ""
    if flops.get("fraction_of_peak") is not None:
        share = f"{flops['fraction_of_peak']:.1%} of {flops['matmul_peak_gflops']} GFLOP/s"
    count = f"{flops['flops_per_update']:.3g}" if flops.get("flops_per_update") else ""
    memory = r.get("peak_device_mb", r.get("peak_rss_mb"))
    return (f"| {r['preset']} | {r['agent']} | {r['seeds']} | {r['updates_per_s']} | {r['total_updates_per_s']} | "
            f"{r['policy_steps_per_s']} | {official} | {r.get('compile_s', '')} | {count} | {share} | {memory} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/gpu_report.py OUT")
    print(report(Path(sys.argv[1])), end="")
