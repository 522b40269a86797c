"""The study's findings: the claim rows (analysis/stats.claim_row) that notebooks 02, 04, 05 and 06 write into their
metrics.json, gathered into one table and `findings.md` (notebook 07 and `hrl notebooks` write it)."""

from __future__ import annotations

import json
from pathlib import Path

# Notebook -> what it tests; each writes its claim rows under "claims" (or a single one under "claim").
SOURCES = {
    "02_horizon_analysis": "(a) hierarchy shortens the effective horizon",
    "04_generalization": "(b) hierarchy generalizes to held-out speeds",
    "05_finetune_ablation": "(c) hierarchy adapts with less fine-tuning",
    "06_composition": "(b) hierarchy composes skills zero-shot",
}


def collect(out: str | Path) -> tuple[list[dict], list[str]]:
    """(claim rows, each with its notebook, in series order; notebooks whose metrics are missing)."""
    rows, missing = [], []
    for notebook in SOURCES:
        path = Path(out) / notebook / "metrics.json"
        if not path.exists():
            missing.append(notebook)
            continue
        metrics = json.loads(path.read_text())
        claims = metrics.get("claims") or ([metrics["claim"]] if "claim" in metrics else [])
        rows += [{**claim, "notebook": notebook} for claim in claims]
    return rows, missing


def document(rows: list[dict], missing: list[str], title: str) -> str:
    """findings.md: the table (values are IQM [95% CI]), what each verdict means, and what was not run."""
    from hrl_core.analysis import stats

    lines = [f"# {title}", "", stats.findings_markdown(rows) if rows else "No claim was evaluated.", "",
             "Values: interquartile mean over seeds (and pooled speeds or mazes) [95% stratified-bootstrap CI]. "
             f'A verdict is "{stats.SUPPORTED}" or "{stats.CONTRADICTED}" only when both agents learned (the '
             "notebook's stated threshold) and the CI of Director - DreamerV3 excludes 0; otherwise it is "
             f'"{stats.INCONCLUSIVE}".', ""]
    if rows:
        lines += ["Sources: " + ", ".join(sorted({f"notebooks/{r['notebook']}.ipynb" for r in rows})) + ".", ""]
    if missing:
        lines += ["Not run (no metrics.json): " + ", ".join(missing) + ".", ""]
    return "\n".join(lines)


def write(out: str | Path, title: str) -> Path:
    rows, missing = collect(out)
    path = Path(out) / "findings.md"
    path.write_text(document(rows, missing, title))
    return path
