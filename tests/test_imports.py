"""The package's import structure: no import cycle (module-level or inside functions), no import that points back up
its layers, and importing it does no work (environment worker processes import it without JAX)."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hrl_core"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """{module: the package's modules it imports}, read from the sources: every import statement, at module level
    or inside a function. `from hrl_core.x import y` names module hrl_core.x.y when that is a module, else
    hrl_core.x."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                            for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "hrl_core.commands" in graph["hrl_core.cli"]  # the graph sees imports (a sanity check of the reader)
    assert "hrl_core.rundir" in graph["hrl_core.evaluate"]  # ... including those inside functions
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# The package's layers, bottom up: a module imports only from its own layer or those below (so a plotting helper
# never reaches into training, nor an environment into the agents). A name covers its submodules unless a longer
# name places them; the package's root is its own name only.
LAYERS = [
    ("base", ["hrl_core", "hrl_core.validation", "hrl_core.gpu", "hrl_core.checkpoint", "hrl_core.replay",
              "hrl_core.cpu_study", "hrl_core.analysis", "hrl_core.analysis.stats", "hrl_core.envs.base",
              "hrl_core.envs.frames", "hrl_core.envs.rendering"]),
    ("environments and networks", ["hrl_core.envs", "hrl_core.config", "hrl_core.conv", "hrl_core.nets",
                                   "hrl_core.world_model", "hrl_core.batches"]),
    ("agents", ["hrl_core.agents"]),
    ("runs", ["hrl_core.rundir", "hrl_core.learned", "hrl_core.grid", "hrl_core.group", "hrl_core.evaluate",
              "hrl_core.train", "hrl_core.executor", "hrl_core.analysis.horizon", "hrl_core.analysis.composition",
              "hrl_core.analysis.goals"]),
    ("study", ["hrl_core.claims", "hrl_core.calibration", "hrl_core.findings", "hrl_core.study", "hrl_core.series",
               "hrl_core.bench", "hrl_core.viz"]),
    ("interface", ["hrl_core.commands", "hrl_core.cli", "hrl_core.__main__"]),
]


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the longest name that covers `module` (None: no layer places it)."""
    best, depth = None, -1
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            covers = module == name or (name != "hrl_core" and module.startswith(name + "."))
            if covers and name.count(".") > depth:
                best, depth = i, name.count(".")
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
                  for m, targets in graph.items() for t in targets if layer_of(t) > layer_of(m))


def test_every_module_has_a_layer_and_no_import_points_back_up():
    graph = import_graph()
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert not unplaced, f"place these modules in tests/test_imports.py's LAYERS: {unplaced}"
    assert upward_imports(graph) == []


def test_the_layer_check_finds_an_import_that_points_up():
    graph = {"hrl_core.envs.maze": {"hrl_core.agents.director"}, "hrl_core.agents.director": {"hrl_core.nets"}}
    assert upward_imports(graph) == ["hrl_core.envs.maze (environments and networks) imports "
                                     "hrl_core.agents.director (agents)"]


def test_importing_the_package_and_its_environments_does_no_work():
    """`import hrl_core` loads neither JAX nor the physics, and leaves JAX's configuration alone; what an
    environment worker runs (the registry building and stepping a task) loads no JAX."""
    code = ("import sys, hrl_core, hrl_core.envs\n"
            "assert 'jax' not in sys.modules and 'dm_control' not in sys.modules, 'imported at import time'\n"
            "env = hrl_core.envs.make_env('walker_walk')\n"
            "env.reset()\n"
            "env.close()\n"
            "assert 'jax' not in sys.modules, 'an environment imported JAX'\n"
            "import jax\n"
            "assert not jax.config.jax_compilation_cache_dir\n"
            "assert hrl_core.enable_compilation_cache() == jax.config.jax_compilation_cache_dir\n")
    env = {"HRL_JAX_CACHE": "/tmp/hrl-test-jax-cache", "MUJOCO_GL": "egl", "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_a_runs_record_reads_without_jax():
    """rundir (spec, metrics, summary, evaluations, analyses) needs no JAX; the learned state (hrl_core/learned.py)
    does."""
    code = ("import sys\nfrom hrl_core import rundir\n"
            "assert 'jax' not in sys.modules and 'orbax' not in sys.modules, 'the record imported JAX'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr


def test_environment_seed_offsets_are_named_once_and_distinct():
    """Each use of a run (the evaluation curve, final evaluations, the horizon measure, the gate) plays its own
    episodes: the offsets live in envs/seeds.py alone, distinct and far above any run's training seeds."""
    from hrl_core.envs import seeds

    offsets = [seeds.CURVE_OFFSET, seeds.EVALUATION_OFFSET, seeds.HORIZON_OFFSET, seeds.GATE_OFFSET]
    assert len(set(offsets)) == 4 and min(offsets) >= 10_000
    literal = [f"{p.relative_to(PACKAGE)}" for p in PACKAGE.rglob("*.py") if p.name != "seeds.py"
               and any(f"seed + {v:_}" in p.read_text() or f"seed + {v}" in p.read_text() for v in offsets)]
    assert not literal, f"these modules write a seed offset out instead of naming it from envs/seeds.py: {literal}"
