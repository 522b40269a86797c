"""Orbax checkpoints of a run: the agent's state, the replay buffers, and the loop's counters (JSON)."""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 2):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                                 enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, replay_state: dict | None, meta: dict) -> None:
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        if replay_state is not None:
            items["replay"] = ocp.args.StandardSave(replay_state)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)
        self.manager.wait_until_finished()

    def restore_meta(self, step: int | None = None) -> dict:
        step = self.latest_step() if step is None else step
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, state_template, replay_template=None, step: int | None = None):
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
        items = {"state": ocp.args.StandardRestore(abstract), "meta": ocp.args.JsonRestore()}
        if replay_template is not None:
            items["replay"] = ocp.args.StandardRestore(replay_template)
        out = self.manager.restore(step, args=ocp.args.Composite(**items))
        return out["state"], out.get("replay") if replay_template is not None else None, out["meta"]

    def close(self) -> None:
        self.manager.close()
