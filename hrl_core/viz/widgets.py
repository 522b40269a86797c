"""ipywidgets browsers for notebooks; they also build (and can be driven) headless."""

from __future__ import annotations

import base64
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


def goal_browser(episodes: list[dict], classes: int, scale: int = 3, dreamer=None):
    """Episode and time sliders; the current frame, the model state decoded the way goals are (the reference for
    reading a goal image), the decoded goal it pursues, the goal code and the worker's goal reward at that step.
    `episodes`: traces from `analysis.goals.split_episodes(rollout_trace(...))`. With `dreamer` (an
    `analysis.goals.GoalDreamer` of the same run), the goal-space explorer follows below, tied to the sliders."""
    import ipywidgets as w

    if not episodes or "goal_image" not in episodes[0]:
        raise ValueError("goal_browser needs Director traces with decoded goals (rollout_trace of a director run)")
    episode = w.IntSlider(0, 0, len(episodes) - 1, description="episode", continuous_update=False)
    time = w.IntSlider(0, 0, len(episodes[0]["image"]) - 1, description="time step")
    frame, state, goal = w.Image(format="png"), w.Image(format="png"), w.Image(format="png")
    code, info = w.HTML(), w.HTML()
    for widget, name in ((episode, "episode"), (time, "time"), (frame, "observation"), (state, "state"),
                         (goal, "goal"), (code, "code"), (info, "info")):
        widget.add_class(f"hrl-browser-{name}")  # stable handles for the browser test

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
    parts = [w.HBox([episode, time]), panels, code, info]
    if dreamer is not None:
        parts += [w.HTML("<hr><b>Goal-space explorer</b>"), goal_explorer(dreamer, episodes, episode, time, scale)]
    return w.VBox(parts)


def _strip_html(frames, rewards, scale: int, columns: int) -> str:
    """Imagined frames in rows of `columns`, each captioned with its step and goal reward."""
    cells = "".join(
        f'<figure style="margin:1px;text-align:center;font:11px monospace">'
        f'<img src="data:image/png;base64,{base64.b64encode(png_bytes(f, scale)).decode()}" '
        f'width="{64 * scale}" height="{64 * scale}"><figcaption>+{i + 1}: {r:.2f}</figcaption></figure>'
        for i, (f, r) in enumerate(zip(frames, np.asarray(rewards).tolist())))
    return (f'<div class="hrl-strip" style="display:grid;grid-template-columns:repeat({columns},auto);'
            f'justify-content:start">{cells}</div>')


def goal_explorer(dreamer, episodes: list[dict], episode, time, scale: int = 3, columns: int = 8, seed: int = 0):
    """The goal space of a Director run: one selector per goal slot, buttons for a random code and for the code the
    manager chose at the browser's current step, the decoded goal (updated as the code changes), and "dream": the
    worker pursuing that goal in the world model from the state at the current step, for `dreamer.steps` steps,
    shown as a strip of decoded imagined frames captioned with the goal reward (max-cosine, the worker's reward).
    `episode` and `time` are the browser's sliders; the computation lives in `analysis.goals.GoalDreamer`."""
    import ipywidgets as w

    from hrl_core.analysis.goals import trace_latent

    rng = np.random.default_rng(seed)
    slots = [w.Dropdown(options=list(range(dreamer.classes)), description=f"slot {i}",
                     layout=w.Layout(width="110px"), style={"description_width": "40px"})
             for i in range(dreamer.codes)]
    random_button, manager_button = w.Button(description="random code"), w.Button(description="manager's code")
    dream_button = w.Button(description="dream", button_style="primary", icon="cloud")
    goal = w.Image(format="png", layout=w.Layout(width=f"{64 * scale}px"))  # unstretched by the VBox
    strip, info = w.HTML(), w.HTML()
    for widget, name in ((random_button, "random"), (manager_button, "manager"), (dream_button, "dream"),
                         (goal, "goal"), (strip, "strip"), (info, "info"), *((s, "slot") for s in slots)):
        widget.add_class(f"hrl-explorer-{name}")
    busy = []  # non-empty while set_code changes several slots: decode once, not once per slot

    def current():
        ep = episodes[episode.value]
        return ep, min(time.value, len(ep["image"]) - 1)

    def task_now():
        ep, t = current()
        return ep["task"][t] if "task" in ep else None

    def code_now():
        return np.array([s.value for s in slots])

    def show_goal(*_):
        if not busy:
            ep, t = current()  # a context-conditioned goal is decoded from the state at this step
            context = ep["deter"][t] if dreamer.agent.cfg.goal_context else None
            goal.value = png_bytes(dreamer.goal_image(code_now(), task_now(), context), scale)
            strip.value = ""  # a dream belongs to the code it was made with
            info.value = f"<pre>code {code_now().tolist()}: press dream to imagine the worker pursuing it</pre>"

    def set_code(code):
        busy.append(True)
        try:
            for slot, value in zip(slots, np.asarray(code).tolist()):
                slot.value = int(value)
        finally:
            busy.clear()
        show_goal()

    def dream(*_):
        ep, t = current()
        info.value = "<pre>dreaming...</pre>"
        out = dreamer.dream(trace_latent(ep, t), code_now(), task_now(), seed)
        strip.value = _strip_html(out["frames"], out["goal_reward"], max(1, scale - 1), columns)
        reward = out["goal_reward"]
        info.value = (f"<pre>dreamed {dreamer.steps} steps from episode {episode.value}, step {t}, code "
                      f"{code_now().tolist()}\ngoal reward (max-cosine): first {reward[0]:.3f}   last "
                      f"{reward[-1]:.3f}   max {reward.max():.3f}</pre>")

    for slot in slots:
        slot.observe(show_goal, "value")
    episode.observe(show_goal, "value")  # another episode: its own task vector and start states
    random_button.on_click(lambda _: set_code(dreamer.random_code(rng)))
    manager_button.on_click(lambda _: set_code(current()[0]["code"][current()[1]]))
    dream_button.on_click(dream)
    set_code(current()[0]["code"][current()[1]])
    panel = w.VBox([w.HTML("<b>goal of this code, decoded</b>"), goal])
    box = w.VBox([w.HBox(slots, layout=w.Layout(flex_flow="row wrap")),
                  w.HBox([random_button, manager_button, dream_button]), panel, info, strip])
    box.add_class("hrl-goal-explorer")
    return box
