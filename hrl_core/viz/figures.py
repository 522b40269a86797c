"""Plotly figures for the notebook series, and `save_figure` (interactive HTML, plus PNG when a Chromium exists)."""

from __future__ import annotations

import math
import re
import shutil
import textwrap
from pathlib import Path

import numpy as np

AGENT_COLOURS = {"dreamer": "#1f77b4", "director": "#d62728", "director+wr": "#ff7f0e"}
AGENT_LABELS = {"dreamer": "DreamerV3", "director": "Director", "director+wr": "Director+wr"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


# Text extents for layout: plotly measures nothing before drawing, so a figure sizes its margins, rows and line
# breaks from characters. CHAR_EM bounds a character's width in font sizes; <sup>/<sub> are drawn at SMALL of it.
CHAR_EM = 0.6
LINE_EM = 1.3
SMALL = 0.7
TITLE_SIZE = 17  # plotly's title font (1.4 x the 12 px default)
SUBPLOT_TITLE_SIZE = 16  # make_subplots' subplot titles
_BREAK = re.compile(r"<br\s*/?>", re.I)
_SMALL_LINE = re.compile(r"\s*<(sup|sub)>(.*)</\1>\s*", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def wrap(text: str, width: int) -> str:
    """`text` (plotly's pseudo-HTML) with <br> at word boundaries so that no line holds more than `width` characters.
    A line that is all <sup> or <sub> (drawn at 70%) holds width / 0.7, each of its pieces tagged again; breaks
    already there stay. A word longer than a line is left whole."""
    out = []
    for line in _BREAK.split(str(text)):
        small = _SMALL_LINE.fullmatch(line)
        tag, inner = (small.group(1), small.group(2)) if small else (None, line)
        pieces = textwrap.wrap(inner, max(1, int(width / SMALL) if tag else width), break_long_words=False,
                               break_on_hyphens=False) or [inner]
        out += [f"<{tag}>{piece}</{tag}>" for piece in pieces] if tag else pieces
    return "<br>".join(out)


def text_width(text: str, size: float) -> float:
    """An upper bound on the width in px of the widest line of `text` at font `size`."""
    widest = 0.0
    for line in _BREAK.split(str(text)):
        small = _SMALL_LINE.fullmatch(line)
        chars = len(_TAG.sub("", line))
        widest = max(widest, chars * (SMALL if small else 1.0))
    return widest * CHAR_EM * size


def text_height(text: str, size: float) -> float:
    """The height in px of `text` at font `size`: plotly sets its baselines 1.3 font sizes apart."""
    return len(_BREAK.split(str(text))) * LINE_EM * size


def _chars(px: float, size: float) -> int:
    """How many characters fit in `px` at font `size`."""
    return max(8, int(px / (CHAR_EM * size)))


def _title(text: str, width: int, top: int, below: float = 0.0, size: float = TITLE_SIZE) -> tuple[str, int]:
    """(`text` wrapped to the figure's `width`, it starts at 5% of it; the top margin that holds it above `below` px
    of subplot titles: `top`, or more when the title needs it)."""
    text = wrap(text, _chars(0.93 * width - 10, size))
    return text, max(top, math.ceil(below + text_height(text, size) + 24))


def _title_layout(text: str, top: int, height: int, below: float = 0.0, size: float = TITLE_SIZE) -> dict:
    """A layout title centred in the top margin (`top` px of a figure `height` px tall) above `below` px."""
    return {"text": text, "x": 0.05, "xanchor": "left", "xref": "container", "yref": "container",
            "y": 1 - (top - below) / 2 / height, "yanchor": "middle", "font": {"size": size}}


def _legend_width(names, size: float = 12) -> float:
    """About the width of a vertical legend of `names` (its symbol, gap and text)."""
    return max((text_width(n, size) for n in names), default=0.0) + 50


def has_chromium() -> bool:
    """True when kaleido can find a browser for static export (Debian: `apt-get install chromium`)."""
    import os

    return bool(os.environ.get("BROWSER_PATH")) or any(shutil.which(name) for name in CHROMIUM_NAMES)


def save_figure(fig, folder: str | Path, name: str, png: bool | None = None) -> list[Path]:
    """Writes NAME.html (plotly.js shared once per folder, works offline) and NAME.png when a Chromium exists."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    html = folder / f"{name}.html"
    fig.write_html(html, include_plotlyjs="directory")
    written = [html]
    if (has_chromium() if png is None else png):
        fig.write_image(folder / f"{name}.png", scale=2)
        written.append(folder / f"{name}.png")
    return written


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def mean_band(fig, x, ys, name: str, colour: str, row=None, col=None, showlegend: bool = True, dash=None):
    """Adds the mean of `ys` [runs, len(x)] as a line with a min-max band across runs."""
    import plotly.graph_objects as go

    ys = np.asarray(ys, float)
    mean, lo, hi = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
    where = {} if row is None else {"row": row, "col": col}
    if len(ys) > 1:
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                 mode="lines", fillcolor=_rgba(colour, 0.18), line={"width": 0}, hoverinfo="skip",
                                 showlegend=False, legendgroup=name), **where)
    fig.add_trace(go.Scatter(x=x, y=mean, name=f"{name} (n={len(ys)})" if len(ys) > 1 else name, mode="lines+markers",
                             line={"color": colour, "dash": dash}, legendgroup=name, showlegend=showlegend), **where)
    return fig


def resample(steps, values, grid) -> np.ndarray:
    """Values logged at irregular `steps` onto `grid` (last value carried forward; NaN before the first)."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if len(steps) == 0:
        return np.full(len(grid), np.nan)
    idx = np.searchsorted(steps, grid, side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")


def _colour(name: str, index: int) -> str:
    return AGENT_COLOURS.get(name, PALETTE[index % len(PALETTE)])


def curves_figure(panels: dict, metric: str = "episode/return", title: str = "Learning curves", points: int = 40,
                  thresholds: dict | None = None):
    """panels: {panel title: {line name: [metrics records of one run, ...]}} -> one panel each, lines overlaid with
    the mean over runs and a min-max band; `thresholds` {panel title: value} draws a dashed line there."""
    from plotly.subplots import make_subplots

    titles = list(panels)
    names = list(dict.fromkeys(name for lines in panels.values() for name in lines))
    width = max(620, 460 * len(titles))
    # A panel's share of the width left of the legend (its names with "(n=...)"), less the gaps between panels.
    panel_px = (width - 160 - _legend_width([f"{n} (n=10)" for n in names])) * 0.8 / len(titles)
    fig = make_subplots(rows=1, cols=len(titles),
                        subplot_titles=[wrap(t, _chars(panel_px + 20, SUBPLOT_TITLE_SIZE)) for t in titles])
    below = max(text_height(a.text, SUBPLOT_TITLE_SIZE) for a in fig.layout.annotations) if titles else 0.0
    shown = set()
    for col, panel in enumerate(titles, 1):
        for name, runs in panels[panel].items():
            series = [s for s in ([(r["step"], r[metric]) for r in records if metric in r] for records in runs) if s]
            if not series:
                fig.add_annotation(text=wrap(f"{name}: no {metric} logged yet", _chars(panel_px, 12)), showarrow=False,
                                   row=1, col=col, x=0.5,
                                   y=0.95 - 0.08 * names.index(name), xref="x domain", yref="y domain")
                continue
            grid = np.unique([step for s in series for step, _ in s]).astype(float)  # the steps actually logged
            if len(grid) > points:
                grid = np.linspace(grid[0], grid[-1], points)
            ys = [resample(*zip(*s), grid) for s in series]
            mean_band(fig, grid, ys, name, _colour(name, names.index(name)), 1, col, showlegend=name not in shown)
            shown.add(name)
        if thresholds and panel in thresholds:
            fig.add_hline(y=thresholds[panel], line_dash="dash", line_color="grey", row=1, col=col,
                          annotation_text="threshold", annotation_position="top left")
        fig.update_xaxes(title_text="environment steps", row=1, col=col)
    fig.update_yaxes(title_text=metric, row=1, col=1)
    title, top = _title(title, width, 100, below)
    fig.update_layout(title=_title_layout(title, top, 400, below), template="plotly_white", height=400, width=width,
                      margin={"t": top})
    return fig


# Director's diagnostics (logged as interval means by the training loop): panel -> [(metric, line name), ...].
DIRECTOR_PANELS = {
    "return scale per critic": [("manager/return_scale_ext", "M extr"), ("manager/return_scale_expl", "M expl"),
                                ("worker/return_scale_goal", "W goal"), ("worker/return_scale_extr", "W extr"),
                                ("worker/return_scale_expl", "W expl"), ("worker/return_scale", "W goal")],
    "advantage std per critic": [("manager/advantage_std_ext", "M extr"), ("manager/advantage_std_expl", "M expl"),
                                 ("worker/advantage_std_goal", "W goal"), ("worker/advantage_std_extr", "W extr"),
                                 ("worker/advantage_std_expl", "W expl")],
    "summed advantage std": [("manager/advantage_std", "manager"), ("worker/advantage_std", "worker")],
    "manager codes": [("manager/entropy", "entropy (nats)"), ("manager/distinct_codes", "distinct codes / batch")],
    "goal reach per segment": [("goal/reach", "its goal"), ("goal/reach_random", "a random goal")],
    "worker goal reward": [("worker/goal_reward", "goal reward")],
}


def director_diagnostics_figure(runs: dict, title: str = "Director diagnostics"):
    """runs: {run name: metrics records}. One panel per diagnostic against environment steps, one dash per run:
    per-critic return scale and advantage spread (is the manager's signal there?), code entropy and distinct codes
    (does the manager commit?), goal reach against a random goal's and the worker's goal reward (can the worker
    reach goals?). Per-critic panels (M: the manager's critics, W: the worker's, one per reward it has) show each
    critic's return scale and the spread of its normalised advantage. Each line is named where it is drawn, at its
    last point (run name on hover); one dash per run. Metrics a run never logged (runs from before these
    diagnostics) are left out; a run of the summed worker reward logs its one goal critic as "worker/return_scale"."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(DIRECTOR_PANELS), subplot_titles=list(DIRECTOR_PANELS))
    dashes = ("solid", "dash", "dot", "dashdot")
    for col, lines in enumerate(DIRECTOR_PANELS.values(), 1):
        drawn = set()
        for i, (metric, label) in enumerate(lines):
            for j, (run, records) in enumerate(runs.items()):
                points = [(r["step"], r[metric]) for r in records if metric in r]
                if not points or (label, run) in drawn:  # the per-reward name first, the earlier name otherwise
                    continue
                drawn.add((label, run))
                x, y = zip(*points)
                fig.add_scatter(x=x, y=y, mode="lines+text", name=f"{label} · {run}", showlegend=False,
                                text=[""] * (len(x) - 1) + [label if j == 0 else ""], textposition="top left",
                                line={"color": PALETTE[i % len(PALETTE)], "dash": dashes[j % len(dashes)]},
                                textfont={"color": PALETTE[i % len(PALETTE)], "size": 10},
                                hovertemplate=f"{label} · {run}<br>%{{x}}: %{{y:.3g}}<extra></extra>", row=1, col=col)
        fig.update_xaxes(title_text="environment steps", row=1, col=col)
    names = " · ".join(f"{dashes[j % len(dashes)]}: {run}" for j, run in enumerate(runs))
    width, below = 300 * len(DIRECTOR_PANELS) + 100, text_height("title", SUBPLOT_TITLE_SIZE)
    title, top = _title(f"{title}<br><sup>{names}</sup>", width, 90, below)
    fig.update_layout(title=_title_layout(title, top, 400, below), template="plotly_white", height=400, width=width,
                      margin={"t": top})
    return fig


def horizon_figure(table: list[dict], measured: dict):
    """Left: decisions per episode and credit horizon in decisions against K (K = 1 is flat). Right: the measured
    reward response to one replaced decision against lag, per agent, with its L90."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("decisions against manager period K",
                                                        "reward response to one replaced decision"))
    ks = [row["K"] for row in table]
    for key, label, dash in (("decisions_per_episode", "decisions per episode", None),
                             ("credit_horizon_decisions", "credit horizon H/K (decisions)", "dash"),
                             ("imagination_decisions", "imagined decisions (horizon/K)", "dot")):
        fig.add_trace(go.Scatter(x=ks, y=[row[key] for row in table], name=label, mode="lines+markers",
                                 line={"color": "#444", "dash": dash}), row=1, col=1)
    for i, (agent, result) in enumerate(measured.items()):
        colour = _colour(agent, i)
        fig.add_trace(go.Scatter(x=[result["period"]], y=[result["decisions_per_episode"]], mode="markers",
                                 marker={"size": 13, "color": colour, "symbol": "star"},
                                 name=f"{agent}: measured decisions per episode"), row=1, col=1)
        reach = result["l90_steps"]
        fig.add_trace(go.Scatter(x=result["lags"], y=result["response"], line={"color": colour},
                                 name=f"{agent}: |delta r| (L90 {'none' if reach is None else f'{reach} steps'})"),
                      row=1, col=2)
        if reach is not None:
            fig.add_vline(x=reach, line={"color": colour, "dash": "dot"}, row=1, col=2)
    fig.update_xaxes(type="log", tickvals=ks, title_text="K (env steps per decision)", row=1, col=1)
    fig.update_yaxes(type="log", dtick=1, title_text="decisions", row=1, col=1)
    fig.update_xaxes(title_text="lag after the decision (env steps)", row=1, col=2)
    fig.update_yaxes(title_text="mean |r_perturbed - r|", row=1, col=2)
    fig.update_layout(title="Effective horizon: flat policy vs manager", template="plotly_white", height=430,
                      width=1100)
    return fig


def generalization_figure(rows: list[dict], train_speeds=None, task: str = ""):
    """Mean return against target speed per agent (band: min-max over seeds), the training range shaded (by
    default the speeds the rows evaluate at in their training split, so the runs' own speed set) and held-out
    speeds marked with open symbols."""
    import plotly.graph_objects as go

    if train_speeds is None:
        train_speeds = sorted({r["speed"] for r in rows if r["split"] == "train"})
    fig = go.Figure()
    fig.add_vrect(x0=min(train_speeds), x1=max(train_speeds), fillcolor="#2ca02c", opacity=0.09, line_width=0,
                  annotation_text="training range", annotation_position="top left")
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    for i, agent in enumerate(agents):
        mine = [r for r in rows if r["agent"] == agent]
        speeds = np.array(sorted({r["speed"] for r in mine}))
        seeds = sorted({r["seed"] for r in mine})
        table = {(r["seed"], r["speed"]): r["mean_return"] for r in mine}
        ys = [[table.get((s, v), np.nan) for v in speeds] for s in seeds]
        mean_band(fig, speeds, ys, agent, _colour(agent, i))
        split_of = {r["speed"]: r["split"] for r in mine}
        ood = np.array([split_of[v] == "ood" for v in speeds])
        fig.add_trace(go.Scatter(x=speeds[ood], y=np.nanmean(ys, 0)[ood], mode="markers",
                                 marker={"size": 14, "symbol": "circle-open", "color": _colour(agent, i),
                                         "line": {"width": 2}}, name=f"{agent}: held-out speeds",
                                 legendgroup=agent))
    title, top = _title("Return against target speed" + (f" ({task})" if task else ""), 760, 100)
    fig.update_layout(title=_title_layout(title, top, 430), template="plotly_white", margin={"t": top},
                      xaxis_title="target speed (m/s)", yaxis_title="mean evaluation return", height=430, width=760)
    return fig


def goal_reward_figure(episode: dict, period: int):
    """The worker's goal reward and the task reward over one episode, with the manager's decisions marked."""
    import plotly.graph_objects as go

    t = np.arange(len(episode["reward"]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=episode["goal_reward"], name="goal reward (max-cosine)", line={"color": "#d62728"}))
    fig.add_trace(go.Scatter(x=t, y=episode["reward"], name="task reward", line={"color": "#1f77b4"}))
    for step in np.flatnonzero(episode["decision"]):
        fig.add_vline(x=int(step), line={"color": "#bbb", "width": 1})
    title, top = _title(f"Goal reward within each manager period (grey lines: new goals every K={period} steps)",
                        900, 100)
    fig.update_layout(title=_title_layout(title, top, 360), template="plotly_white", margin={"t": top},
                      xaxis_title="time step", yaxis_title="reward", height=360, width=900)
    return fig


def image_grid(rows: dict, columns: list, title: str = ""):
    """rows: {label: uint8 images [len(columns), H, W, 3]} -> a grid of images, one row per label."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = list(rows)
    fig = make_subplots(rows=len(labels), cols=len(columns), horizontal_spacing=0.005, vertical_spacing=0.06,
                        subplot_titles=[str(c) for c in columns] + [""] * (len(columns) * (len(labels) - 1)))
    for r, label in enumerate(labels, 1):
        for c, image in enumerate(rows[label], 1):
            fig.add_trace(go.Image(z=np.asarray(image)), row=r, col=c)
        fig.update_yaxes(title_text=label, row=r, col=1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    width, below = max(500, 110 * len(columns)), text_height("t", SUBPLOT_TITLE_SIZE)
    title, top = _title(title, width, 70, below)
    height = 130 * len(labels) + 20 + top
    fig.update_layout(title=_title_layout(title, top, height, below), template="plotly_white", height=height,
                      width=width, margin={"l": 70, "r": 10, "t": top, "b": 10})
    return fig


def interval_figure(estimates: dict, title: str, xaxis_title: str, reference: float | None = None):
    """A forest plot: one row per label in `estimates` ({label: {"point"|"iqm", "low", "high"}}), the point with its
    95% CI as a horizontal bar; `reference` (e.g. 0 for a difference, 1 for "as good as random") as a dashed line.
    Long labels (a claim's measure and verdict) wrap into a label column of at most half the width, each row as tall
    as its longest label; the whole label is on hover."""
    import plotly.graph_objects as go

    width, size, axis_size = 760, 12, 14
    labels = list(estimates)
    shown = [wrap(k, _chars(0.5 * width, size)) for k in labels]
    if len(set(shown)) < len(shown):  # labels that differ only in spacing: keep them apart as given
        shown = labels
    points = [estimates[k].get("point", estimates[k].get("iqm")) for k in labels]
    # An unbounded interval (too few seeds to reject any shift) is drawn as the point alone.
    lows = [p if estimates[k]["low"] is None else estimates[k]["low"] for k, p in zip(labels, points)]
    highs = [p if estimates[k]["high"] is None else estimates[k]["high"] for k, p in zip(labels, points)]
    colours = [_colour(k.split(":")[0].split(" ")[0], i) for i, k in enumerate(labels)]
    fig = go.Figure(go.Scatter(
        x=points, y=shown, mode="markers", marker={"size": 11, "color": colours},
        error_x={"type": "data", "symmetric": False, "array": np.subtract(highs, points),
                 "arrayminus": np.subtract(points, lows), "thickness": 2, "width": 6},
        customdata=labels, hovertemplate="%{customdata}: %{x:.3g}<extra></extra>", showlegend=False))
    if reference is not None:
        fig.add_vline(x=reference, line={"color": "#888", "dash": "dash"})
    left = math.ceil(max([text_width(k, size) for k in shown] + [40.0])) + 20
    right = 40
    axis_title = wrap(xaxis_title, _chars(width - left - right, axis_size))
    row = max([48.0] + [text_height(k, size) + 14 for k in shown])
    bottom = math.ceil(44 + text_height(axis_title, axis_size))
    title, top = _title(title, width, 70)
    height = math.ceil(top + bottom + row * len(labels))
    fig.update_layout(title=_title_layout(title, top, height), template="plotly_white", height=height, width=width,
                      xaxis={"title": {"text": axis_title, "font": {"size": axis_size}}},
                      yaxis={"autorange": "reversed", "tickfont": {"size": size}},
                      margin={"l": left, "r": right, "t": top, "b": bottom})
    return fig


def claim_intervals_figure(claims: list[dict], title: str = "Director - DreamerV3 over seeds"):
    """Each claim's difference of per-seed means (its hierarchy - DreamerV3) with its interval over seeds, labelled
    with the hierarchy (which sets the colour) and the verdict; 0 dashed."""
    estimates = {f"{c.get('hierarchy', 'director')}: {c['measure']}<br><sup>{c['verdict']}</sup>": c["difference"]
                 for c in claims if not c.get("censored")}  # a censored row's effect is a probability, on another axis
    return interval_figure(estimates, title, "hierarchy - DreamerV3 (difference of per-seed means)", reference=0.0)


def claim_seeds_figure(claims: list[dict], title: str = "Each claim, seed by seed"):
    """One panel per claim row: every run's value (its mean over speeds, mazes and episodes) as a dot, the row's
    hierarchy (Director or Director+wr) and DreamerV3 side by side, with each agent's mean as a bar; the panel title
    carries the hierarchy and the verdict. What the test
    decides on, shown whole: a reader sees how many seeds there are and how far apart they lie."""
    from plotly.subplots import make_subplots

    cols = min(3, max(1, len(claims)))
    rows = -(-len(claims) // cols)
    # In px: panels and the gaps between them; each panel title wraps to its panel's width and a little more, and
    # the gap above a row holds the tallest title and the tick labels of the row above.
    panel_w, panel_h, gap_x, title_size, font = 250, 220, 80, 13, 11
    left, right, bottom, ticks = 70, 40, 40, 26
    chars = _chars(panel_w + 40, title_size)
    titles = [wrap(f"{c['claim'].split(' ', 1)[0]} {c['measure']}", chars) + "<br>"
              + wrap(f"<sup>{c.get('hierarchy', 'director')}: {c['verdict']}</sup>", chars) for c in claims]
    above = max(text_height(t, title_size) for t in titles) + 6
    width = left + cols * panel_w + (cols - 1) * gap_x + right
    gap_y = ticks + above
    plot_h = rows * panel_h + (rows - 1) * gap_y
    title, top = _title(title, width, 0, above, round(1.4 * font))
    height = math.ceil(top + plot_h + bottom)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=gap_y / plot_h,
                        horizontal_spacing=gap_x / (width - left - right))
    fig.update_annotations(font_size=title_size)
    for i, claim in enumerate(claims):
        row, col = i // cols + 1, i % cols + 1
        finite = [v for agent in ("director", "dreamer") for v in claim[agent] if v is not None]
        ceiling = 1.1 * max(finite) if finite else 1.0  # where censored runs (None: above the budget) are drawn
        hierarchy = claim.get("hierarchy", "director")
        for agent, label, colour in (("director", AGENT_LABELS[hierarchy], AGENT_COLOURS[hierarchy]),
                                     ("dreamer", "DreamerV3", AGENT_COLOURS["dreamer"])):
            values = claim[agent]
            reached = [v for v in values if v is not None]
            if reached:
                fig.add_bar(x=[label], y=[float(np.mean(reached))], marker_color=_rgba(colour, 0.25),
                            showlegend=False, hoverinfo="skip", row=row, col=col)
            fig.add_scatter(x=[label] * len(reached), y=reached, mode="markers", showlegend=False,
                            marker={"color": colour, "size": 9, "line": {"width": 1, "color": "white"}},
                            hovertemplate=f"{label} seed: %{{y:.3g}}<extra></extra>", row=row, col=col)
            censored = len(values) - len(reached)
            if censored:
                fig.add_scatter(x=[label] * censored, y=[ceiling] * censored, mode="markers", showlegend=False,
                                marker={"color": colour, "size": 10, "symbol": "triangle-up"},
                                hovertemplate=f"{label} seed: censored (never reached)<extra></extra>", row=row,
                                col=col)
    fig.update_layout(title=_title_layout(title, top, height, above, round(1.4 * font)), template="plotly_white",
                      height=height, width=width, font={"size": font},
                      margin={"l": left, "r": right, "t": top, "b": bottom})
    return fig


def performance_profile_figure(profiles: dict, xaxis_title: str, title: str = "Performance profile"):
    """Fraction of runs x tasks scoring above tau per agent, with the CI as a band (stats.performance_profile)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, p) in enumerate(profiles.items()):
        colour = _colour(name, i)
        tau = np.asarray(p["thresholds"])
        fig.add_trace(go.Scatter(x=np.concatenate([tau, tau[::-1]]), y=np.concatenate([p["high"], p["low"][::-1]]),
                                 fill="toself", mode="lines", fillcolor=_rgba(colour, 0.18), line={"width": 0},
                                 hoverinfo="skip", showlegend=False, legendgroup=name))
        fig.add_trace(go.Scatter(x=tau, y=p["fraction"], name=name, mode="lines", line={"color": colour},
                                 legendgroup=name))
    title, top = _title(title, 700, 100)
    fig.update_layout(title=_title_layout(title, top, 400), template="plotly_white", margin={"t": top},
                      xaxis_title=wrap(xaxis_title, _chars(700 - 80 - 80 - _legend_width(profiles), 14)),
                      yaxis_title="fraction of runs with score > tau", yaxis={"range": [0, 1.02]}, height=400,
                      width=700)
    return fig


def tracking_figure(rows: list[dict], seed: int):
    """Target speed and each agent's measured velocity over one composed-task episode (run `seed`); switches as
    vertical lines. rows: study.composition_grid (each row has its seconds per agent step)."""
    import plotly.graph_objects as go

    mine = [r for r in rows if r["seed"] == seed]
    if not mine:
        raise ValueError(f"seed={seed} is not valid; allowed values: {sorted({r['seed'] for r in rows})}")
    dt = mine[0]["seconds_per_step"]
    target = np.asarray(mine[0]["target"])
    t = np.arange(len(target)) * dt
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=target, name="target", line={"color": "#222", "width": 3, "shape": "hv"}))
    for i, row in enumerate(mine):
        fig.add_trace(go.Scatter(x=t[: len(row["velocity"])], y=row["velocity"], name=row["agent"],
                                 line={"color": _colour(row["agent"], i) if row["agent"] != "random" else "#aaa",
                                       "width": 1.5}))
    for step in np.flatnonzero(np.diff(target) != 0) + 1:
        fig.add_vline(x=float(step * dt), line={"color": "#bbb", "dash": "dot"})
    title, top = _title(f"Speed tracking on the switched task (seed {seed})", 900, 100)
    fig.update_layout(title=_title_layout(title, top, 400), template="plotly_white", margin={"t": top},
                      xaxis_title="time (s)", yaxis_title="forward velocity (m/s)", height=400, width=900)
    return fig
