"""The environment interface every task shares.

Observations are dicts: `image` (64x64x3 uint8), `task` (float32 vector, only when the task is conditioned by
vector), `proprio` (float32 vector, where the task has it), and the step flags `reward`, `is_first`, `is_last`,
`is_terminal`. `reset()` returns a first observation (reward 0, is_first True); `step()` after a last step starts a
new episode and ignores the action, so a batch of environments can be stepped blindly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Space:
    shape: tuple
    dtype: type
    low: float | None = None
    high: float | None = None


FLAG_KEYS = ("reward", "is_first", "is_last", "is_terminal")


def flags(reward: float, first: bool, last: bool, terminal: bool) -> dict:
    return {"reward": np.float32(reward), "is_first": first, "is_last": last, "is_terminal": terminal}


class Env:
    """Base class: subclasses set `obs_space`, `act_space` and implement `_reset()` and `_step(action)`."""

    obs_space: dict[str, Space]
    act_space: Space
    description: str = ""

    def __init__(self):
        self._done = True

    def reset(self) -> dict:
        self._done = False
        return self._reset()

    def step(self, action) -> dict:
        if self._done:
            return self.reset()
        action = np.clip(np.asarray(action, np.float32), self.act_space.low, self.act_space.high)
        obs = self._step(action)
        self._done = bool(obs["is_last"])
        return obs

    def close(self) -> None:
        pass

    def _reset(self) -> dict:
        raise NotImplementedError

    def _step(self, action) -> dict:
        raise NotImplementedError
