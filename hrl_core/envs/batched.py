"""Step N environments at once, each in its own worker process so that rendering uses every core.

Workers ignore SIGINT and SIGTERM: a Ctrl-C (or a scheduler's SIGTERM) reaches the whole process group, and the
parent alone decides how to shut down (the training loop checkpoints first); it then closes the workers.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # noqa: F401  its exit hook (terminate, then join, children) must run after ours below
import signal
import weakref
from multiprocessing import resource_tracker

import numpy as np

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_open = weakref.WeakSet()
# Workers ignore SIGTERM, so multiprocessing's own exit hook could wait on them forever: close them first.
atexit.register(lambda: [env.close() for env in list(_open)])


def _worker(conn, name, options):
    for sig in _SIGNALS:  # the parent blocked these while spawning us, so none arrived before this point
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    from hrl_core.envs import make_env

    try:
        env = make_env(name, **options)
        conn.send(("ok", (env.obs_space, env.act_space)))
    except Exception as err:  # report construction errors to the parent instead of dying silently
        conn.send(("error", err))
        return
    while True:
        try:
            cmd, arg = conn.recv()
        except (EOFError, OSError):  # the parent is gone: nothing left to serve
            cmd = "close"
        if cmd == "close":
            env.close()
            conn.close()
            return
        try:
            reply = ("ok", env.reset() if cmd == "reset" else env.step(arg))
        except Exception as err:
            reply = ("error", err)
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


def stack(observations: list[dict]) -> dict:
    return {k: np.stack([o[k] for o in observations]) for k in observations[0]}


class BatchedEnv:
    """N copies of one task with seeds seed, seed+1, ...; `parallel=False` keeps them in this process.

    reset() and step(actions) return observation dicts with a leading batch axis.
    """

    def __init__(self, name: str, num_envs: int, seed: int = 0, parallel: bool = True, **options):
        from hrl_core.envs import make_env
        from hrl_core.validation import check_positive

        check_positive("num_envs", num_envs)
        self.num_envs, self.parallel = num_envs, parallel
        if not parallel:
            self._envs = [make_env(name, seed=seed + i, **options) for i in range(num_envs)]
            self.obs_space, self.act_space = self._envs[0].obs_space, self._envs[0].act_space
            return
        ctx = mp.get_context("spawn")  # fork is unsafe once JAX or GL threads exist in the parent
        self._conns, self._procs = [], []
        _open.add(self)
        # Spawned workers inherit the blocked mask, so a signal during their start-up cannot kill them (a signal
        # for this process stays pending until the unblock); _worker ignores and unblocks them. The resource
        # tracker is started first because its start unblocks these signals.
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for i in range(num_envs):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, name, {**options, "seed": seed + i}), daemon=True)
                proc.start()
                child.close()  # keep only the worker's copy, so a dead worker reads as EOF here
                self._conns.append(parent)
                self._procs.append(proc)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        spaces = [self._receive(c) for c in self._conns]
        self.obs_space, self.act_space = spaces[0]

    def _receive(self, conn):
        try:
            status, payload = conn.recv()
        except EOFError as err:
            self.close()
            raise RuntimeError("an environment worker process died; a script that starts BatchedEnv must guard its "
                               "entry point with `if __name__ == '__main__':` (workers are spawned)") from err
        if status == "error":
            self.close()
            raise payload
        return payload

    def reset(self) -> dict:
        if not self.parallel:
            return stack([env.reset() for env in self._envs])
        for conn in self._conns:
            conn.send(("reset", None))
        return stack([self._receive(c) for c in self._conns])

    def step(self, actions) -> dict:
        actions = np.asarray(actions)
        if not self.parallel:
            return stack([env.step(a) for env, a in zip(self._envs, actions)])
        for conn, action in zip(self._conns, actions):
            conn.send(("step", action))
        return stack([self._receive(c) for c in self._conns])

    def close(self) -> None:
        if not self.parallel:
            for env in self._envs:
                env.close()
            return
        for conn, proc in zip(self._conns, self._procs):
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=5)
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
