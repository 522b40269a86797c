"""A study's runs as one value: `Grid` names every (task, agent, seed) run under one runs folder, trained at one
preset, at RUNS/TASK-AGENT-sSEED (`rundir.run_path`). The study's procedures take a Grid (what runs) and a
`executor.Placement` (where they execute), each validated once, when it is made."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from pathlib import Path

from hrl_core.config import AGENTS, PRESETS
from hrl_core.envs.registry import TASKS
from hrl_core.rundir import require_run, run_path
from hrl_core.validation import check_choice, check_non_negative


def _names(option: str, value, allowed) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names:
        raise ValueError(f"{option}=[] is not valid; name at least one (allowed values: {', '.join(allowed)})")
    for name in names:
        check_choice(option, name, allowed)
    if len(set(names)) != len(names):
        raise ValueError(f"{option}={list(names)!r} is not valid; each may be named once")
    return names


@dataclass(frozen=True)
class Grid:
    """Every (task, agent, seed) run under `runs` at `preset`. `tasks` and `agents` take one name or several,
    `seeds` one non-negative integer or several; each is stored as a tuple. A bad value raises ValueError naming
    the parameter and what it accepts, before anything runs."""
    runs: Path
    tasks: tuple[str, ...]
    agents: tuple[str, ...]
    seeds: tuple[int, ...]
    preset: str = "tiny"

    def __post_init__(self):
        seeds = (self.seeds,) if isinstance(self.seeds, numbers.Integral) else tuple(self.seeds)
        seeds = tuple(int(s) if isinstance(s, numbers.Integral) and not isinstance(s, bool) else s for s in seeds)
        if not seeds:
            raise ValueError("seeds=[] is not valid; name at least one non-negative integer")
        for seed in seeds:
            check_non_negative("seeds", seed)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds={list(seeds)!r} is not valid; each seed may be named once")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("runs", Path(self.runs))
        set_("tasks", _names("tasks", self.tasks, TASKS))
        set_("agents", _names("agents", self.agents, AGENTS))
        set_("seeds", seeds)
        check_choice("preset", self.preset, PRESETS)

    @property
    def task(self) -> str:
        """The grid's one task, for a procedure that reads one task's runs."""
        if len(self.tasks) != 1:
            raise ValueError(f"this grid has tasks {list(self.tasks)}; this step reads one task's runs: pass "
                             "grid.only(task=...)")
        return self.tasks[0]

    def only(self, task: str | None = None, agents=None, seeds=None) -> Grid:
        """The same runs folder and preset with one task, or other agents or seeds."""
        changes = {"tasks": task, "agents": agents, "seeds": seeds}
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def path(self, task: str, agent: str, seed: int) -> Path:
        return run_path(self.runs, task, agent, seed)

    def require(self, task: str, agent: str, seed: int, notebook: str = "01_train") -> Path:
        """The run's folder; MissingRun (naming `notebook`, which writes it) when it does not exist."""
        return require_run(self.runs, task, agent, seed, notebook)

    def cells(self) -> list[tuple[str, str, int]]:
        """Every (task, agent, seed), tasks outermost, then agents."""
        return [(t, a, s) for t in self.tasks for a in self.agents for s in self.seeds]
