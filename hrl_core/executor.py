"""Where a grid's runs execute: `local` runs them in this process one after another (the default; Ray is not even
imported), `ray` makes each run a Ray task, on a Ray started here or on a cluster.

With `ray`, a task whose worker or node dies is retried by Ray; the grids call `train_seeds(..., resume=True)`, so
the retry continues from the runs' last checkpoint. A run that raises is not retried: the grid finishes the other runs
and then raises GridFailed naming each failed run and its cause. Any node may run any run, so the runs path must be
on a file system that every node mounts at the same path; `check_shared` verifies that before a run starts.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from hrl_core.validation import check_choice, check_positive

EXECUTORS = ("local", "ray")
RETRIES = 3  # Ray reruns a task this often after its worker or node dies (each rerun resumes the run)
POLL_SECONDS = 2.0  # how often the progress bar reads the running runs' steps
LOCAL_OBJECT_STORE = 256 * 2**20  # bytes: tasks return only summaries, so a local Ray needs no large store
SHARED_CHECK_SECONDS = 300  # how long every node may take to start a worker and answer the shared-path check


class GridFailed(RuntimeError):
    """Some runs of a grid failed; `failures` maps each one's name to its cause. The other runs finished."""

    def __init__(self, failures: dict, total: int):
        self.failures = failures
        lines = "\n".join(f"  {name}: {cause}" for name, cause in failures.items())
        super().__init__(f"{len(failures)} of {total} runs failed (the others finished; run the grid again to "
                         f"retry them):\n{lines}")


class RunInterrupted(RuntimeError):
    """A run that SIGTERM stopped after it saved its checkpoint (a node draining, a preemption): Ray retries it."""


@dataclass
class Job:
    """One run of a grid: `fn(**kwargs)` in some process, with `cpus` CPUs. `logdir` and `steps` let the progress
    bar show how far the run is."""
    name: str
    fn: Callable
    kwargs: dict
    cpus: int = 1
    logdir: Path | None = None
    steps: int | None = None


@dataclass(frozen=True)
class Placement:
    """Where a grid's runs execute, validated when it is made (a bad option raises ValueError naming itself before
    anything starts): `executor` "local" or "ray"; with ray, `address` (None or "local" starts a Ray on this
    machine, "auto" joins the cluster this machine is a node of, "ray://HOST:PORT" or "HOST:PORT" a remote one) and
    `max_parallel` (the most runs at once; None: as many as the cluster has room for). `vectorize`: whether the
    seeds of one task and agent train in one process (`study.vectorized`; None: only on an accelerator)."""
    executor: str = "local"
    address: str | None = None
    max_parallel: int | None = None
    vectorize: bool | None = None

    def __post_init__(self):
        if self.vectorize is not None and not isinstance(self.vectorize, bool):
            raise ValueError(f"vectorize={self.vectorize!r} is not valid; allowed values: None, True, False")
        check_choice("executor", self.executor, EXECUTORS)
        if self.max_parallel is not None:
            check_positive("max_parallel", self.max_parallel)
        if self.executor == "local":
            for name, value in (("address", self.address), ("max_parallel", self.max_parallel)):
                if value is not None:
                    raise ValueError(f"{name}={value!r} is not valid with executor='local' (one run at a time in "
                                     "this process); it is an option of executor='ray'")
        elif not (self.address in (None, "local", "auto")
                  or re.fullmatch(r"(ray://)?[\w.-]+:\d+", str(self.address))):
            raise ValueError(f"address={self.address!r} is not valid; allowed values: None or 'local' (start a Ray "
                             "on this machine), 'auto' (the cluster this machine is a node of), 'ray://HOST:PORT' "
                             "(Ray Client) or 'HOST:PORT' (the head node's GCS)")

    @property
    def local(self) -> bool:
        return self.executor == "local"


LOCAL = Placement()


def run_jobs(jobs: list[Job], placement: Placement = LOCAL, progress: bool = True, desc: str = "runs",
             folders: Iterable = (), files: Iterable = ()) -> list:
    """Runs every job where `placement` says and returns their results in order. With `ray`, `folders` (written by
    the runs) and `files` (read by them) must be visible to every node; see the module's docstring for retries and
    failures."""
    if not isinstance(placement, Placement):
        raise TypeError(f"placement={placement!r} is not valid; it must be an hrl_core.executor.Placement")
    if placement.local:
        from tqdm.auto import tqdm

        return [job.fn(**job.kwargs) for job in tqdm(jobs, desc=desc, disable=not progress)]
    if not jobs:
        return []
    import ray

    started = not ray.is_initialized()  # a Ray the caller connected (a notebook, a test) is used as it is
    if started:
        connect(placement.address)
    try:
        check_shared(folders, files)
        return _run_on_ray(jobs, placement.max_parallel, progress, desc)
    finally:
        if started:
            ray.shutdown()


def connect(address: str | None = None) -> None:
    """Starts a Ray on this machine (address None or "local"), with the CPUs this process may use, or joins a
    cluster ("auto", "ray://HOST:PORT", "HOST:PORT")."""
    import ray

    if address in (None, "local"):
        ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), object_store_memory=LOCAL_OBJECT_STORE,
                 include_dashboard=False)
    else:
        ray.init(address=address)


def check_shared(folders: Iterable = (), files: Iterable = ()) -> None:
    """Raises ValueError unless every live Ray node reads a marker file that this process writes into each of
    `folders`, and sees each of `files`: runs write their folders on whichever node runs them, and the driver and
    later runs read them back."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    markers = []
    try:
        for folder in map(Path, folders):
            folder.mkdir(parents=True, exist_ok=True)
            marker = folder.absolute() / f".hrl-shared-check-{token}"
            marker.write_text(token)
            markers.append(str(marker))
        expected = [(m, token) for m in markers] + [(str(Path(f).absolute()), None) for f in files]
        nodes = [n for n in ray.nodes() if n["Alive"]]
        reader = ray.remote(_unreadable)
        refs = [reader.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(expected) for n in nodes]
        try:
            answers = ray.get(refs, timeout=SHARED_CHECK_SECONDS)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"not every Ray node answered the shared-path check within {SHARED_CHECK_SECONDS} s "
                               "(a node that cannot start a worker: is the project installed there?)") from None
    finally:
        for marker in markers:
            Path(marker).unlink(missing_ok=True)
    missing = [f"node {n['NodeManagerAddress']} cannot read {path}" for n, paths in zip(nodes, answers)
               for path in paths]
    if missing:
        raise ValueError(f"the runs path is not visible to every Ray node ({'; '.join(missing)}): put the runs on "
                         "a file system that every node mounts at the same path (NFS or similar; see README, "
                         "'Running on a cluster')")


def _unreadable(expected: list) -> list[str]:
    """The paths of `expected` (path, content or None) that this node cannot read as expected."""
    bad = []
    for path, content in expected:
        try:
            ok = Path(path).read_text() == content if content is not None else Path(path).exists()
        except OSError:
            ok = False
        if not ok:
            bad.append(path)
    return bad


def _call(fn: Callable, kwargs: dict):
    """The Ray task: one run, or one group of seeds. Training returns summaries marked interrupted when SIGTERM
    stopped it after saving its checkpoints; raising RunInterrupted lets Ray retry it, and the retry resumes."""
    import hrl_core

    hrl_core.enable_compilation_cache()  # a Ray worker is a fresh process
    result = fn(**kwargs)
    for summary in result if isinstance(result, list) else [result]:
        if isinstance(summary, dict) and summary.get("interrupted"):
            raise RunInterrupted(f"stopped by a signal at step {summary.get('step')}")
    return result


def _absolute(kwargs: dict) -> dict:
    """Paths (alone, in lists, or as dict keys: a group's run folders) made absolute: a Ray worker's working folder
    is not this process's."""
    def absolute(value):
        if isinstance(value, Path):
            return value.absolute()
        if isinstance(value, dict):
            return {absolute(k): v for k, v in value.items()}
        return [absolute(v) for v in value] if isinstance(value, list) else value
    return {k: absolute(v) for k, v in kwargs.items()}


def _run_on_ray(jobs: list[Job], max_parallel: int | None, progress: bool, desc: str) -> list:
    import ray
    from tqdm.auto import tqdm

    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0  # a run uses one GPU where the cluster has them
    # A run asks for one CPU per environment worker, but never more than the largest node has (it would never start).
    largest = max(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])
    task = ray.remote(_call)
    waiting, running = list(enumerate(jobs)), {}
    results, failures = [None] * len(jobs), {}
    try:
        with tqdm(total=len(jobs), desc=desc, disable=not progress, unit="run") as bar:
            while waiting or running:
                while waiting and (max_parallel is None or len(running) < max_parallel):
                    index, job = waiting.pop(0)
                    options = dict(num_cpus=min(job.cpus, largest), num_gpus=gpus, max_retries=RETRIES,
                                   retry_exceptions=[RunInterrupted], name=job.name)
                    running[task.options(**options).remote(job.fn, _absolute(job.kwargs))] = index
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                for ref in done:
                    index = running.pop(ref)
                    try:
                        results[index] = ray.get(ref)
                    except ray.exceptions.RayError as err:  # the run raised, or its worker died RETRIES + 1 times
                        failures[jobs[index].name] = _cause(err)
                    bar.update()
                bar.set_postfix_str(_steps(jobs[i] for i in running.values()), refresh=True)
    except KeyboardInterrupt:
        for ref in running:  # a cluster would otherwise go on with them; each checkpoints on its way out
            ray.cancel(ref)
        raise
    if failures:
        raise GridFailed(failures, len(jobs))
    return results


def _cause(err) -> str:
    import ray

    if isinstance(err, ray.exceptions.RayTaskError) and err.cause is not None:
        return f"{type(err.cause).__name__}: {err.cause}"
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"


def _steps(jobs: Iterable[Job]) -> str:
    """"name step/steps" for each unfinished job that has logged a step."""
    from hrl_core.rundir import last_logged_step

    parts = []
    for job in jobs:
        step = last_logged_step(job.logdir) if job.logdir is not None else None
        if step is not None and (job.steps is None or step < job.steps):
            parts.append(f"{job.name} {step}/{job.steps}")
    return ", ".join(parts)
