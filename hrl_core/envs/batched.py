"""Step N environments at once over a bounded pool of worker processes, so that rendering uses every core.

Each worker hosts a contiguous block of environments and steps all of them for one message, so N environments cost
`workers` processes (and `workers` imports of the physics and rendering stack), not N. `step_async` sends the actions
and returns at once, so the caller can work (e.g. run the policy's next update) while the workers step.

Workers ignore SIGINT and SIGTERM: a Ctrl-C (or a scheduler's SIGTERM) reaches the whole process group, and the
parent alone decides how to shut down (the training loop checkpoints first); it then closes the workers.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # noqa: F401  its exit hook (terminate, then join, children) must run after ours below
import operator
import os
import pickle
import signal
import time
import traceback
import weakref
from multiprocessing import resource_tracker

import numpy as np

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_CLOSE_TIMEOUT = 5.0  # seconds all workers together get to exit cleanly before they are killed
_open = weakref.WeakSet()
# Workers ignore SIGTERM, so multiprocessing's own exit hook could wait on them forever: close them first.
atexit.register(lambda: [env.close() for env in list(_open)])

_DIED = ("an environment worker process died; a script that starts BatchedEnv must guard its entry point with "
         "`if __name__ == '__main__':` (workers are spawned)")


def _error_reply(err: BaseException) -> tuple:
    """("error", (exception, worker traceback)); the traceback is text because tracebacks do not pickle."""
    text = "".join(traceback.format_exception(err))
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:  # one that does not round-trip would fail the send or the parent's recv: keep its text
        err = RuntimeError(f"{type(err).__name__}: {err}")
    return "error", (err, text)


def _worker(conn, name, env_options):
    """Hosts one environment per entry of `env_options` and answers each message with a list, in that order."""
    for sig in _SIGNALS:  # the parent blocked these while spawning us, so none arrived before this point
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    from hrl_core.envs.registry import make_env

    envs = []
    try:
        for options in env_options:
            envs.append(make_env(name, **options))
        conn.send(("ok", (envs[0].obs_space, envs[0].act_space)))
    except Exception as err:  # report construction errors to the parent instead of dying silently
        for env in envs:
            env.close()
        conn.send(_error_reply(err))
        return
    while True:
        try:
            cmd, arg = conn.recv()
        except (EOFError, OSError):  # the parent is gone: nothing left to serve
            cmd = "close"
        if cmd == "close":
            for env in envs:
                env.close()
            conn.close()
            return
        try:
            if cmd == "reset":
                reply = ("ok", [env.reset() for env in envs])
            else:
                reply = ("ok", [env.step(action) for env, action in zip(envs, arg)])
        except Exception as err:
            reply = _error_reply(err)
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


def stack(observations: list[dict]) -> dict:
    return {k: np.stack([o[k] for o in observations]) for k in observations[0]}


def _seeds(num_envs, seed, env_seeds) -> list[int]:
    if env_seeds is None:
        return [seed + i for i in range(num_envs)]
    try:
        if any(isinstance(v, bool) for v in env_seeds):
            raise TypeError
        seeds = [operator.index(v) for v in env_seeds]
    except TypeError:  # not iterable, or an entry that is not an integer
        raise ValueError(f"env_seeds={env_seeds!r} is not valid; it must be a list of integers") from None
    if len(seeds) != num_envs:
        raise ValueError(f"env_seeds has {len(seeds)} seeds but num_envs={num_envs}; give one seed per environment")
    return seeds


def blocks(num_envs: int, workers: int) -> list[range]:
    """Contiguous blocks of environment indices, one per worker, sizes differing by at most one (the first
    `num_envs % workers` workers take one more). Contiguous, so a worker's actions are one slice of the batch and the
    workers' replies, concatenated in worker order, are already in environment order."""
    size, extra = divmod(num_envs, workers)
    starts = [w * size + min(w, extra) for w in range(workers + 1)]
    return [range(lo, hi) for lo, hi in zip(starts[:-1], starts[1:])]


class BatchedEnv:
    """`num_envs` copies of one task; `parallel=False` keeps them in this process.

    Environment i has seed `env_seeds[i]` when given (then `seed` is unused), else `seed + i`. With `parallel`, the
    environments are split into contiguous blocks over `workers` processes (default: one per core, at most one per
    environment; see `blocks`). reset(), step(actions) and step_wait() return observation dicts with a leading batch
    axis in environment order. `step_async(actions)` starts a step and returns at once; `step_wait()` finishes it.
    `workers` is the number of worker processes (0 in process).
    """

    def __init__(self, name: str, num_envs: int, seed: int = 0, parallel: bool = True, workers: int | None = None,
                 env_seeds: list[int] | None = None, **options):
        from hrl_core.envs.registry import make_env
        from hrl_core.validation import check_positive

        check_positive("num_envs", num_envs)
        if workers is not None:
            check_positive("workers", workers)
        self.seeds = _seeds(num_envs, seed, env_seeds)
        self.num_envs, self.parallel = num_envs, parallel
        self._pending = False  # a step_async awaits its step_wait
        self._actions = None  # in process: the actions of that pending step
        self._closed = False
        if not parallel:
            self.workers = 0
            self._envs = [make_env(name, seed=s, **options) for s in self.seeds]
            self.obs_space, self.act_space = self._envs[0].obs_space, self._envs[0].act_space
            return
        self.workers = min(workers or os.cpu_count() or 1, num_envs)
        self._blocks = blocks(num_envs, self.workers)
        ctx = mp.get_context("spawn")  # fork is unsafe once JAX or GL threads exist in the parent
        self._conns, self._procs = [], []
        _open.add(self)
        # Spawned workers inherit the blocked mask, so a signal during their start-up cannot kill them (a signal
        # for this process stays pending until the unblock); _worker ignores and unblocks them. The resource
        # tracker is started first because its start unblocks these signals.
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for block in self._blocks:
                env_options = [{**options, "seed": self.seeds[i]} for i in block]
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, name, env_options), daemon=True)
                proc.start()
                child.close()  # keep only the worker's copy, so a dead worker reads as EOF here
                self._conns.append(parent)
                self._procs.append(proc)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        self.obs_space, self.act_space = self._gather()[0]

    def _gather(self) -> list:
        """One reply from every worker. All are read before any error is raised, so no worker is left blocked on a
        reply nobody reads; then the first error (in environment order) closes everything and is raised."""
        replies, failure = [], None
        for conn in self._conns:
            try:
                status, payload = conn.recv()
            except (EOFError, ConnectionResetError) as err:
                status, payload = "died", err
            if status == "ok":
                replies.append(payload)
            elif failure is None:
                failure = (status, payload)
        if failure is not None:
            self.close()
            status, payload = failure
            if status == "died":
                raise RuntimeError(_DIED) from payload
            err, text = payload
            err.add_note(f"raised in an environment worker process:\n{text}")
            raise err
        return replies

    def _send(self, messages) -> None:
        for conn, message in zip(self._conns, messages):
            try:
                conn.send(message)
            except OSError as err:  # BrokenPipeError: the worker is gone
                self.close()
                raise RuntimeError(_DIED) from err

    def _check_ready(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(f"{what} on a closed BatchedEnv")
        if self._pending:
            raise RuntimeError(f"{what} while a step_async() is pending; call step_wait() first")

    def reset(self) -> dict:
        self._check_ready("reset()")
        if not self.parallel:
            return stack([env.reset() for env in self._envs])
        self._send([("reset", None)] * self.workers)
        return stack([obs for reply in self._gather() for obs in reply])

    def step_async(self, actions) -> None:
        """Sends one action per environment and returns at once; step_wait() returns the observations."""
        self._check_ready("step_async()")
        # A copy, so that in process too a caller may reuse its buffer before step_wait (workers get a pickled copy).
        actions = np.array(actions, copy=True)
        if actions.ndim == 0 or len(actions) != self.num_envs:
            raise ValueError(f"actions must have one row per environment (num_envs={self.num_envs}), "
                             f"got shape {actions.shape}")
        if self.parallel:
            self._send([("step", actions[block.start:block.stop]) for block in self._blocks])
        else:
            self._actions = actions
        self._pending = True

    def step_wait(self) -> dict:
        """The observations of the pending step_async(), in environment order."""
        if not self._pending:
            raise RuntimeError("step_wait() without a pending step_async()")
        self._pending = False
        if not self.parallel:
            actions, self._actions = self._actions, None
            return stack([env.step(a) for env, a in zip(self._envs, actions)])
        return stack([obs for reply in self._gather() for obs in reply])

    def step(self, actions) -> dict:
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        if self._closed:
            return
        self._closed, self._pending, self._actions = True, False, None
        if not self.parallel:
            for env in self._envs:
                env.close()
            return
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except OSError:
                pass
        deadline = time.monotonic() + _CLOSE_TIMEOUT
        for conn, proc in zip(self._conns, self._procs):
            # A worker may still be sending a reply nobody will read (a step_async without step_wait, or a failed
            # step): read and drop it, else a reply larger than the pipe's buffer blocks the worker till the kill.
            while proc.is_alive() and time.monotonic() < deadline:
                try:
                    if conn.poll(0.05):
                        conn.recv()
                except (EOFError, OSError):  # the worker closed its end: it is exiting
                    proc.join(timeout=max(0.0, deadline - time.monotonic()))
                    break
            if proc.is_alive():
                proc.kill()  # terminate() sends SIGTERM, which workers ignore
            proc.join()
            conn.close()
        self._conns, self._procs = [], []
        _open.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
