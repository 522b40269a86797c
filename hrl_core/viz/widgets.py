"""ipywidgets browsers for notebooks; they also build (and can be driven) headless."""

from __future__ import annotations

import io

import numpy as np


def png_bytes(image, scale: int = 3) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes, enlarged `scale` times with nearest-neighbour so pixels stay visible."""
    from PIL import Image

    image = np.asarray(image)
    if scale > 1:
        image = image.repeat(scale, 0).repeat(scale, 1)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _code_html(code, classes: int) -> str:
    """A goal code (one class index per slot) as a row of coloured cells, one hue per class."""
    cells = "".join(
        f'<span title="slot {i}: class {c}" style="display:inline-block;width:22px;height:22px;margin:1px;'
        f'line-height:22px;text-align:center;color:white;font:12px monospace;'
        f'background:hsl({int(360 * c / max(classes, 1))},65%,42%)">{c}</span>'
        for i, c in enumerate(np.asarray(code).tolist()))
    return f"<div><b>goal code</b><br>{cells}</div>"


def goal_browser(episodes: list[dict], classes: int, scale: int = 3):
    """Episode and time sliders; the current frame, the model state decoded the way goals are (the reference for
    reading a goal image), the decoded goal it pursues, the goal code and the worker's goal reward at that step.
    `episodes`: traces from `analysis.goals.split_episodes(rollout_trace(...))`."""
    import ipywidgets as w

    if not episodes or "goal_image" not in episodes[0]:
        raise ValueError("goal_browser needs Director traces with decoded goals (rollout_trace of a director run)")
    episode = w.IntSlider(0, 0, len(episodes) - 1, description="episode", continuous_update=False)
    time = w.IntSlider(0, 0, len(episodes[0]["image"]) - 1, description="time step")
    frame, state, goal = w.Image(format="png"), w.Image(format="png"), w.Image(format="png")
    code, info = w.HTML(), w.HTML()

    def show(*_):
        ep = episodes[episode.value]
        time.max = len(ep["image"]) - 1
        t = min(time.value, time.max)
        frame.value, goal.value = png_bytes(ep["image"][t], scale), png_bytes(ep["goal_image"][t], scale)
        state.value = png_bytes(ep["state_image"][t], scale)
        code.value = _code_html(ep["code"][t], classes)
        since = t - int(np.flatnonzero(ep["decision"][:t + 1])[-1]) if ep["decision"][:t + 1].any() else 0
        held = "new goal chosen at this step" if ep["decision"][t] else f"goal held for {since} steps"
        info.value = (f"<pre>step {t} of {len(ep['image']) - 1}   reward {float(ep['reward'][t]):.3f}\n"
                      f"goal reward (max-cosine) {float(ep['goal_reward'][t]):.3f}   "
                      f"distance to goal {float(ep['goal_distance'][t]):.2f}\n"
                      f"{held}</pre>")

    episode.observe(show, "value")
    time.observe(show, "value")
    show()
    panels = w.HBox([w.VBox([w.HTML(f"<b>{title}</b>"), image]) for title, image in
                     (("observation", frame), ("state, decoded like a goal", state), ("decoded goal", goal))])
    return w.VBox([w.HBox([episode, time]), panels, code, info])
