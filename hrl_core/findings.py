"""The study's findings: the claim rows (analysis/stats.claim_row, built in hrl_core/claims.py) that notebooks 02,
04, 05 and 06 write into their metrics.json, decided within their families (Holm within the pre-registered primary
family and within the secondary one) and written as `findings.md` (notebook 07 and `hrl notebooks` write it). The
notebooks' own verdicts are uncorrected; these are the study's."""

from __future__ import annotations

import json
from pathlib import Path

# Notebook -> what it tests; each writes its claim rows under "claims" (or a single one under "claim").
SOURCES = {
    "02_horizon_analysis": "(a) hierarchy shortens the effective horizon (secondary)",
    "04_generalization": "(1) training tasks: the speed task; (2a) held-out speeds; retention (secondary)",
    "05_finetune_ablation": "(1) training tasks: the source maze; (2b) novel maze zero-shot; (3) fine-tuning",
    "06_composition": "hierarchy composes skills zero-shot (secondary)",
}


def collect(out: str | Path) -> tuple[list[dict], list[str]]:
    """(claim rows, each with its notebook, in series order, decided within their families: Holm across every row
    of a family, whichever notebook wrote it; notebooks whose metrics are missing)."""
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

    lines, gates = [f"# {title}", ""], {}  # gate notes numbered once across both tables
    if not rows:
        lines += ["No claim was evaluated.", ""]
    for family, text in ((stats.PRIMARY, "Primary family: one row per claim of the study, pre-registered "
                          "(hrl_core/claims.py, PRIMARY_ROWS), Holm across these rows"),
                         (stats.SECONDARY, "Secondary family: director+wr, the mechanisms and the second measures, "
                          "Holm across these rows")):
        members = [r for r in rows if r.get("family", stats.PRIMARY) == family]
        if members:
            lines += [f"## {text}", "", stats.findings_markdown(members, gates=gates), ""]
    lines += ["Each run is one number (its mean over speeds, mazes and episodes); the per-seed values are listed. "
             "p: two-sided exact permutation test of the difference in means across seeds; in brackets, Holm-"
             "corrected within the row's family, over the rows of the family that were tested. A verdict is "
             f'"{stats.SUPPORTED}" or "{stats.CONTRADICTED}" only when the corrected p < {stats.ALPHA} and both '
             "agents passed the gate on the skill the claim starts from, checked before the treatment; "
             f'"{stats.UNTESTABLE}" when even complete separation of every row of its family could not pass Holm '
             f'at {stats.ALPHA}; "{stats.NOT_LEARNED}" when an agent failed the gate (its note under the table '
             "says how; a row that its seed counts could not decide either way says so too). The interval is the "
             "exact permutation test inverted (every shift it does not reject; unbounded where it cannot reject). "
             "Steps to a threshold are censored for runs that "
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
