"""The house's front pages stay what a newcomer can read in an hour: the README runs before it reports, its findings
table's cells are short, and RESULTS is a reference beside its log."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lines(name: str) -> list[str]:
    return (ROOT / name).read_text().splitlines()


def test_readme_is_short_and_shows_the_main_job_first():
    readme = lines("README.md")
    assert len(readme) < 200
    assert any("make demo" in line for line in readme[:30])
    long = [i + 1 for i, line in enumerate(readme) if len(line) > 200 and not line.startswith("|")]
    assert not long, f"README lines over 200 characters outside tables: {long}"


def test_readme_findings_table_has_short_cells():
    readme = lines("README.md")
    start = next(i for i, line in enumerate(readme) if line.startswith("| claim |"))
    table = []
    for line in readme[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    cells = [c.strip() for line in table[2:] for c in line.strip().strip("|").split(" | ")]
    assert len(table) > 2 and max(map(len, cells)) <= 120


def test_results_is_a_reference_beside_its_log():
    assert len(lines("benchmarks/RESULTS.md")) < 300
    assert (ROOT / "benchmarks" / "LOG.md").exists()
    headings = {line[3:].strip().lower() for line in lines("benchmarks/LOG.md") if line.startswith("## ")}
    anchors = {"".join(c for c in h if c.isalnum() or c in " -_").replace(" ", "-") for h in headings}
    linked = [part.split(")")[0] for line in lines("benchmarks/RESULTS.md") for part in line.split("(LOG.md#")[1:]]
    missing = sorted({a for a in linked if a not in anchors})
    assert linked and not missing, f"RESULTS links to log entries that do not exist: {missing}"
