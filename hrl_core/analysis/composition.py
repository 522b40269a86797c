"""The composability test: agents trained on fixed target speeds, run zero-shot on a target that switches.

On `walker_speed_switch` the target follows a schedule (2 -> 5 -> 1 m/s by default) within one episode. Per
episode this module records the target, the measured forward velocity, the reward and, for Director, the manager's
codes, then measures:

    tracking error   mean |velocity - target| (m/s) over each segment that starts at a switch;
    settle steps     steps from a switch until |velocity - target| <= tolerance x target holds for `hold`
                     consecutive steps (the segment's length when it never does: censored at the segment's end);
                     the default tolerance, 0.5, is the speed reward's margin, where the move reward is half;
    fixed-speed error the same run's mean |velocity - target| in episodes whose target stays at one speed, over
                     exactly the steps of each segment that follows a switch (same start states): what tracking
                     costs without a switch, so that error after switches / fixed-speed error measures what
                     switching itself costs, apart from how well the run tracks any speed;
    code change rate (Director) the fraction of manager decisions whose code differs from the previous decision's,
                     in a window of `window` steps after each switch and everywhere else. A manager that composes
                     skills should change its goals when the task changes, so the rate after switches is higher.
"""

from __future__ import annotations

import numpy as np


def switch_rollouts(agent, state, env, episodes: int, seed: int = 0, policy: str = "eval") -> list[dict]:
    """Whole episodes on a switch task; per episode arrays target, velocity, reward (T,) and, for Director, code
    (T, slots) and decision (T,). Step t holds the observation at t and the policy's output for it."""
    from hrl_core.evaluate import run_episodes

    rows = []

    def record(obs, action, aux):
        rows.append({"first": bool(obs["is_first"]), "target": env.target_speed, "velocity": env.velocity,
                     "reward": float(obs["reward"]),
                     **{k: np.asarray(aux[k])[0] for k in ("code", "decision") if k in aux}})

    run_episodes(agent, state, env, episodes, seed, policy, record)
    starts = [i for i, r in enumerate(rows) if r["first"]] + [len(rows)]
    out = []
    for a, b in zip(starts[:-1], starts[1:]):
        episode = rows[a:b]
        out.append({k: np.array([r[k] for r in episode]) for k in episode[0] if k != "first"})
    return out


def switch_steps(target) -> np.ndarray:
    """Steps at which the target differs from the step before."""
    target = np.asarray(target, dtype=np.float64)
    return np.flatnonzero(np.diff(target) != 0) + 1


def settle_steps(velocity, target: float, tolerance: float = 0.5, hold: int = 10) -> int:
    """Steps until |velocity - target| <= tolerance x target holds for `hold` steps in a row; len(velocity) (the
    censored value) when it never does."""
    inside = np.abs(np.asarray(velocity, dtype=np.float64) - target) <= tolerance * abs(target)
    run = 0
    for t, ok in enumerate(inside):
        run = run + 1 if ok else 0
        if run >= hold:
            return t - hold + 1
    return len(inside)


def tracking(episode: dict, tolerance: float = 0.5, hold: int = 10) -> list[dict]:
    """One row per segment that starts at a switch: target, error (mean |v - target|), settle steps, settled."""
    target, velocity = np.asarray(episode["target"]), np.asarray(episode["velocity"])
    bounds = list(switch_steps(target)) + [len(target)]
    rows = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        goal = float(target[start])
        settle = settle_steps(velocity[start:end], goal, tolerance, hold)
        rows.append({"step": int(start), "end": int(end), "target": goal, "previous": float(target[start - 1]),
                     "error": float(np.mean(np.abs(velocity[start:end] - goal))),
                     "settle_steps": int(settle), "settled": settle < end - start})
    return rows


def fixed_speed_error(switched: list[dict], fixed: dict) -> float:
    """Mean |velocity - target| of the fixed-speed episodes `fixed` {speed: [episodes at that constant target]},
    over the steps of every segment of the `switched` episodes that starts at a switch, at that segment's target."""
    errors = []
    for episode in switched:
        for segment in tracking(episode):
            if segment["target"] not in fixed:
                raise ValueError(f"no fixed-speed episodes at {segment['target']} m/s; have {sorted(fixed)}")
            errors += [np.mean(np.abs(np.asarray(f["velocity"][segment["step"]:segment["end"]]) - segment["target"]))
                       for f in fixed[segment["target"]]]
    return float(np.mean(errors)) if errors else float("nan")


def code_change_rate(episode: dict, window: int) -> dict:
    """Director: fraction of manager decisions that change the code, within `window` steps after a switch and
    elsewhere; {"after_switch", "elsewhere", "decisions_after", "decisions_elsewhere"} (rates NaN when no decision
    falls in a region). The first decision of the episode has no previous code and is not counted."""
    if "code" not in episode:
        raise ValueError("the episode has no manager codes: code change rate is defined for Director only")
    decisions = np.flatnonzero(np.asarray(episode["decision"]))
    codes = np.asarray(episode["code"]).reshape(len(episode["code"]), -1)[decisions]
    changed = np.any(codes[1:] != codes[:-1], axis=-1)
    steps = decisions[1:]
    near = np.zeros(len(steps), bool)
    for s in switch_steps(episode["target"]):
        near |= (steps >= s) & (steps < s + window)

    def rate(mask):
        return float(changed[mask].mean()) if mask.any() else float("nan")
    return {"after_switch": rate(near), "elsewhere": rate(~near), "decisions_after": int(near.sum()),
            "decisions_elsewhere": int((~near).sum())}


def summarize(episodes: list[dict], tolerance: float = 0.5, hold: int = 10, window: int | None = None) -> dict:
    """Means over episodes and switches: return, tracking error, settle steps, fraction settled, and for Director
    (when `window` is given) the code change rates."""
    segments = [row for ep in episodes for row in tracking(ep, tolerance, hold)]
    out = {"return": float(np.mean([ep["reward"].sum() for ep in episodes])),
           "error": float(np.mean([r["error"] for r in segments])) if segments else float("nan"),
           "settle_steps": float(np.mean([r["settle_steps"] for r in segments])) if segments else float("nan"),
           "settled": float(np.mean([r["settled"] for r in segments])) if segments else float("nan")}
    if window is not None and all("code" in ep for ep in episodes):
        rates = [code_change_rate(ep, window) for ep in episodes]
        out["code_change_after_switch"] = float(np.nanmean([r["after_switch"] for r in rates]))
        out["code_change_elsewhere"] = float(np.nanmean([r["elsewhere"] for r in rates]))
    return out
