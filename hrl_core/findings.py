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
    """(claim rows, each with its notebook, in series order, decided together: Holm across all of them; notebooks
    whose metrics are missing)."""
    from hrl_core.analysis import stats

    rows, missing = [], []
    for notebook in SOURCES:
        path = Path(out) / notebook / "metrics.json"
        if not path.exists():
            missing.append(notebook)
            continue
        metrics = json.loads(path.read_text())
        claims = metrics.get("claims") or ([metrics["claim"]] if "claim" in metrics else [])
        rows += [{**claim, "notebook": notebook} for claim in claims]
    return stats.decide(rows), missing


def document(rows: list[dict], missing: list[str], title: str) -> str:
    """findings.md: the table (per-seed values, the test across seeds, Holm across all rows), what each verdict
    means, and what was not run."""
    from hrl_core.analysis import stats

    lines = [f"# {title}", "", stats.findings_markdown(rows) if rows else "No claim was evaluated.", "",
             "Each run is one number (its mean over speeds, mazes and episodes); the per-seed values are listed. "
             "p: two-sided exact permutation test of the difference in means across seeds; in brackets, Holm-"
             "corrected across the rows of this table that were tested. A verdict is "
             f'"{stats.SUPPORTED}" or "{stats.CONTRADICTED}" only when the corrected p < {stats.ALPHA} and both '
             "agents passed the gate on the skill the claim starts from, checked before the treatment; "
             f'"{stats.UNTESTABLE}" when no arrangement of so few seeds can reach {stats.ALPHA}; '
             f'"{stats.NOT_LEARNED}" when an agent failed the gate. The interval is a percentile bootstrap over '
             "seeds (below 5 seeds a group, about their range). Steps to a threshold are censored for runs that "
             "never reach it (listed as censored): that row is tested on ranks, censored runs tying above every "
             "run that reached it, and its effect is P(Director better).", ""]
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
