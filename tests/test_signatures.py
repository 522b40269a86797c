"""The package's functions stay readable at their call sites: none takes more than MAX_PARAMETERS parameters (a
study's runs travel as a `grid.Grid`, where they execute as an `executor.Placement`, a claim's fixed parts as a
`stats.Claim`)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hrl_core"
MAX_PARAMETERS = 10


def parameter_counts(source: str) -> dict[str, int]:
    """{function name: its parameters}, every def in `source` at any depth; self and cls are not counted, *args and
    **kwargs are."""
    counts = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x is not None]
            counts[f"{node.name}:{node.lineno}"] = len([n for n in names if n not in ("self", "cls")])
    return counts


def test_no_function_takes_more_than_ten_parameters():
    long = {f"{path.relative_to(PACKAGE.parent)}:{name}": n for path in sorted(PACKAGE.rglob("*.py"))
            for name, n in parameter_counts(path.read_text()).items() if n > MAX_PARAMETERS}
    assert not long, f"functions over {MAX_PARAMETERS} parameters: {long}"


def test_the_count_sees_every_kind_of_parameter():
    source = "class A:\n    def f(self, a, /, b, *args, c, d=1, **kwargs):\n        def g(x): pass\n"
    assert parameter_counts(source) == {"f:2": 6, "g:3": 1}
