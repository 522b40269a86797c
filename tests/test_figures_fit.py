"""Every figure of hrl_core/viz/figures.py keeps its texts inside its frame at its layout width and height.

Each figure function is built from small synthetic inputs of the shapes the notebooks pass it (long verdicts,
long variant names, many legend entries), and plotly's full figure (`full_figure_for_development`, one kaleido
server for all of them) gives the computed margins, axis domains and ranges. Plotly reports no text extents, so
each text is taken as font size x 0.6 per character (an upper bound for the fonts it draws with; <sup>/<sub> at 70%)
and 1.3 font sizes per line. The checks: the title, every annotation (subplot titles included), axis title, tick
label, legend and trace text lies inside the frame; category tick labels and annotations do not overlap; plotly
never had to squeeze a plot area to its minimum to make room for automargins it could not give.
"""

import html
import re

import numpy as np
import pytest

from hrl_core.analysis import stats
from hrl_core.viz import figures

kaleido = pytest.importorskip("kaleido")
pytestmark = pytest.mark.skipif(not figures.has_chromium(), reason="static layout needs a Chromium for kaleido")

EM = 0.6  # a character's width in font sizes: an upper bound for plotly's fonts
LINE = 1.3  # plotly's line height in font sizes
SMALL = 0.7  # <sup> and <sub> are drawn at 70%
TOL = 1.0  # px

SCALE = "cpu preset, 16000 steps per run, 2 seeds"
GATE = "dreamer did not track the target speed: error 0.9 of it [0.84, 0.95], slope 0.0057 [0.0011, 0.01]"
BOTH_FAILED = (f"{GATE} and director+wr did not track the target speed: error 0.97 of it [0.93, 1], "
               "slope 0.0012 [-0.002, 0.004]")
VARIANTS = ("director: all", "director: WM+M (worker frozen)", "director: WM only (hierarchy frozen)", "dreamer: all",
            "dreamer: A+V (world model frozen)")


# ----------------------------------------------------------------------------------------------- synthetic inputs

def claim_rows() -> list[dict]:
    """The rows 07 gathers: primary and secondary, both hierarchies, a censored row, verdicts of 100-210 characters."""
    one, two_a, three = ("(1) hierarchy performs better on the training tasks",
                         "(2a) hierarchy generalizes to held-out speeds", "(3) hierarchy adapts with less fine-tuning")
    variants = "(director: WM+M (worker frozen) vs dreamer: all)"
    rows = [
        stats.claim_row(stats.Claim(one, "speed task: return / random return", family=stats.PRIMARY), [1.4, 1.6],
                        [1.1, 1.2], True, SCALE),
        stats.claim_row(stats.Claim(one, "source maze: success - random success", family=stats.PRIMARY), [0.1, 0.2],
                        [0.15, 0.05], True, SCALE),
        stats.claim_row(stats.Claim(two_a, "held-out return / random return"), [1.2, 1.3], [1.0, 1.1], False, SCALE,
                        gate=GATE),
        stats.claim_row(stats.Claim(two_a, "held-out return / random return", hierarchy="director+wr"), [1.25, 1.35],
                        [1.0, 1.1], False, SCALE, gate=BOTH_FAILED),
        stats.claim_row(stats.Claim(three, f"steps to threshold on evaluation curves {variants}",
                                    higher_is_better=False, censored=True), [300, float("inf")], [200, 250], True,
                        SCALE),
        stats.claim_row(stats.Claim(three, f"return after fine-tuning {variants}"), [0.3, 0.4], [0.2, 0.5], True,
                        SCALE),
        stats.claim_row(stats.Claim("(a) hierarchy shortens the effective horizon",
                                    "L90 of a K-step perturbation (environment steps)", higher_is_better=False),
                        [12, 16], [20, 24], True, SCALE),
        stats.claim_row(stats.Claim("(b) hierarchy composes skills zero-shot",
                                    "error after switches / own error at fixed speeds", higher_is_better=False,
                                    hierarchy="director+wr"), [1.1, 1.3], [1.2, 1.0], False, SCALE, gate=BOTH_FAILED),
    ]
    return stats.decide(rows)


def _records(steps, metrics: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"step": int(s), **{m: float(f(i) + 0.05 * rng.standard_normal()) for m, f in metrics.items()}}
            for i, s in enumerate(steps)]


def _training_runs(seed: int) -> list[dict]:
    return _records(np.linspace(0, 16000, 9), {"episode/return": lambda i: 40.0 * i}, seed)


def _diagnostics(seed: int, summed: bool) -> list[dict]:
    metrics = {metric: (lambda i, k=k: 1.0 + 0.3 * k + 0.1 * i) for lines in figures.DIRECTOR_PANELS.values()
               for k, (metric, _) in enumerate(lines)}
    metrics.pop("worker/return_scale" if not summed else "worker/return_scale_goal")
    return _records(np.linspace(0, 16000, 9), metrics, seed)


def _interval(point: float) -> dict:
    return {"iqm": point, "low": point - 0.4, "high": point + 0.5}


def _generalization_rows() -> list[dict]:
    rows = []
    for agent in ("dreamer", "director", "director+wr"):
        for seed in (0, 1):
            for speed, split in ((0.5, "ood"), (1.0, "train"), (2.0, "train"), (3.0, "ood"), (4.0, "train"),
                                 (6.0, "ood")):
                rows.append({"agent": agent, "seed": seed, "speed": speed, "split": split,
                             "mean_return": 300.0 - 30 * speed + 10 * seed})
    return rows


def _tracking_rows() -> list[dict]:
    target = np.repeat([2.0, 5.0, 1.0], 40)
    rows = []
    for agent in ("random", "dreamer", "director", "director+wr"):
        for seed in (0, 1):
            rows.append({"agent": agent, "seed": seed, "seconds_per_step": 0.025, "target": target.tolist(),
                         "velocity": (0.6 * target + 0.1 * np.sin(np.arange(len(target)))).tolist()})
    return rows


def _profiles() -> dict:
    tau = np.linspace(0.0, 2.0, 60)
    return {agent: {"thresholds": tau, "fraction": np.clip(1.0 - tau / (2 + k), 0, 1),
                    "low": np.clip(0.9 - tau / (2 + k), 0, 1), "high": np.clip(1.1 - tau / (2 + k), 0, 1)}
            for k, agent in enumerate(("dreamer", "director", "director+wr"))}


def _horizon_inputs():
    table = [{"K": k, "decisions_per_episode": int(np.ceil(500 / k)), "credit_horizon_steps": 100.0,
              "credit_horizon_decisions": 100.0 / k, "imagination_decisions": 15.0 / k} for k in (1, 2, 4, 8, 16)]
    lags = list(range(24))
    measured = {"dreamer": {"period": 1, "decisions_per_episode": 500, "l90_steps": None, "lags": lags,
                            "response": np.exp(-np.arange(24) / 30).tolist()},
                "director": {"period": 8, "decisions_per_episode": 63, "l90_steps": 12, "lags": lags,
                             "response": np.exp(-np.arange(24) / 5).tolist()},
                "director+wr": {"period": 8, "decisions_per_episode": 63, "l90_steps": 18, "lags": lags,
                                "response": np.exp(-np.arange(24) / 7).tolist()}}
    return table, measured


def _goal_episode() -> dict:
    t = np.arange(150)
    return {"reward": np.sin(t / 9).tolist(), "goal_reward": np.cos(t / 7).tolist(), "decision": (t % 8 == 0).tolist()}


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)


def figure_cases() -> dict:
    """{case: a function building one figure}, every figure function of figures.py as the notebooks call it."""
    rows = claim_rows()
    alone = [{**r, "verdict": f"{r['verdict']} (uncorrected, see 07)"} for r in rows]
    table, measured = _horizon_inputs()
    agents = ("dreamer", "director", "director+wr")
    return {
        "01 learning curves": lambda: figures.curves_figure(
            {task: {agent: [_training_runs(s) for s in (0, 1)] for agent in agents}
             for task in ("walker_speed", "maze_train")},
            title="Learning curves (tiny preset, 2 seed(s), 300 steps)"),
        "01 learning curves, nothing logged": lambda: figures.curves_figure(
            {"walker_speed": {"dreamer": [[{"step": 0}]], "director": [_training_runs(0)]}},
            title="Learning curves (tiny preset, 2 seed(s), 300 steps)"),
        "01 director diagnostics": lambda: figures.director_diagnostics_figure(
            {f"{agent} s{seed}": _diagnostics(seed, agent == "director") for agent in ("director", "director+wr")
             for seed in (0, 1)}, "walker_speed: Director diagnostics"),
        "01 final return": lambda: figures.interval_figure(
            {agent: _interval(k) for k, agent in enumerate(agents)},
            "walker_speed: final training return, IQM over 2 seed(s) (95% CI)", "training-episode return"),
        "02 horizon": lambda: figures.horizon_figure(table, measured),
        "02 l90 own decisions": lambda: figures.interval_figure(
            {agent: {"point": 3.0 + k, "low": 2.0, "high": 6.0} for k, agent in enumerate(agents)},
            "L90 in own decisions (mean, range over seeds): favours the hierarchy by construction", "decisions"),
        "03 goals": lambda: figures.image_grid(
            {label: _images(8) for label in ("observation", "state, decoded", "goal, decoded", "8 steps later")},
            [f"t={t}" for t in range(0, 64, 8)], title="Manager goals decoded by the world model"),
        "03 goal reward": lambda: figures.goal_reward_figure(_goal_episode(), 8),
        "03 director diagnostics": lambda: figures.director_diagnostics_figure(
            {"director+wr seed 0": _diagnostics(0, False)}, "walker_speed: Director diagnostics (seed 0)"),
        "04 generalization": lambda: figures.generalization_figure(_generalization_rows(), (1.0, 2.0, 4.0),
                                                                   "walker_speed"),
        "04 performance profile": lambda: figures.performance_profile_figure(
            _profiles(), "held-out return / random return (tau)", "Performance profile at held-out speeds"),
        "05 fine-tuning curves": lambda: figures.curves_figure(
            {f"maze_novel ({n})": {v: [_training_runs(s) for s in (0, 1)] for v in VARIANTS}
             for n in ("colours", "layout", "both")},
            title="Fine-tuning on maze_novel from maze_train (2 seed(s))",
            thresholds={f"maze_novel ({n})": 150.0 for n in ("colours", "layout", "both")}),
        "05 returns": lambda: figures.interval_figure(
            {v: _interval(k) for k, v in enumerate(VARIANTS)},
            "maze_novel (both): evaluation return after fine-tuning", "evaluation return (IQM, 95% CI)"),
        "06 tracking": lambda: figures.tracking_figure(_tracking_rows(), 0),
        "06 intervals": lambda: figures.claim_intervals_figure(
            alone[-2:], "Composed task: hierarchy - DreamerV3 over seeds"),
        "07 claims per seed": lambda: figures.claim_seeds_figure(rows, "Each claim, seed by seed (tiny preset)"),
        "07 claims per seed, one row": lambda: figures.claim_seeds_figure(rows[2:4], "Each claim, seed by seed"),
        "07 claims": lambda: figures.claim_intervals_figure(
            rows, "hierarchy - DreamerV3 per claim (tiny preset, over seeds)"),
        "07 one claim": lambda: figures.claim_intervals_figure(rows[3:4], "hierarchy - DreamerV3 per claim"),
    }


CASES = figure_cases()


# ----------------------------------------------------------------------------------------------- text extents

def extent(text, size: float) -> tuple[float, float]:
    """(width, height) in px of plotly pseudo-HTML `text` at font `size`: an upper bound on its width."""
    lines = re.split(r"<br\s*/?>", str(text), flags=re.I)
    widest, height = 0.0, len(lines) * LINE * size
    if re.fullmatch(r"\s*<(sup|sub)>.*</\1>\s*", lines[-1], flags=re.I | re.S):
        height -= 0.4 * size  # baselines stay 1.3 font sizes apart; a small last line is raised and ends higher
    for line in lines:
        width, scale = 0.0, 1.0
        for part in re.split(r"(<[^>]*>)", line):
            if part.startswith("<"):
                tag = part.strip("</> ").split(" ")[0].lower()
                if tag in ("sup", "sub"):
                    scale = 1.0 if part.startswith("</") else SMALL
                continue
            width += len(html.unescape(part)) * scale
        widest = max(widest, width)
    return widest * EM * size, height


class Layout:
    """Pixel geometry of a full figure: frame, computed margins, axis domains and data coordinates."""

    def __init__(self, full):
        self.full = full
        lay = full.layout
        self.width, self.height = lay.width, lay.height
        margin = (lay.computed or {}).get("margin") or lay.margin.to_plotly_json()
        self.l, self.r, self.t, self.b = (margin[k] for k in "lrtb")
        self.pw, self.ph = self.width - self.l - self.r, self.height - self.t - self.b
        self.axes = {key: getattr(lay, key) for key in lay.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", key)}

    def axis(self, ref: str):
        """`ref` as a trace or annotation names it ("x", "y2", "x3 domain") -> its layout axis."""
        name = ref.split(" ")[0]
        return self.axes[f"{name[0]}axis{name[1:]}"]

    def span(self, letter: str, domain) -> tuple[float, float]:
        """A domain (fractions of the plot area) -> px, left to right or top to bottom."""
        d0, d1 = domain
        if letter == "x":
            return self.l + d0 * self.pw, self.l + d1 * self.pw
        return self.t + (1 - d1) * self.ph, self.t + (1 - d0) * self.ph

    def categories(self, ref: str) -> list:
        letter = ref[0]
        seen = []
        for trace in self.full.data:
            if (getattr(trace, f"{letter}axis", None) or letter) != ref or not hasattr(trace, letter):
                continue
            values = getattr(trace, letter)
            for v in ([] if values is None else values):
                if v not in seen:
                    seen.append(v)
        return seen

    def data_px(self, ref: str, value) -> float:
        """A data value on axis `ref` -> px."""
        ax = self.axis(ref)
        if ax.type == "category":
            value = self.categories(ref).index(value) if value in self.categories(ref) else float(value)
        elif ax.type == "log":
            value = np.log10(value)
        lo, hi = ax.range
        frac = (float(value) - lo) / (hi - lo)
        a, b = self.span(ref[0], ax.domain)
        return a + frac * (b - a) if ref[0] == "x" else b - frac * (b - a)

    def position(self, letter: str, ref: str, value) -> float:
        """A position given in `ref` coordinates ("container", "paper", "x2 domain", "y") -> px."""
        if ref == "container":
            return value * self.width if letter == "x" else (1 - value) * self.height
        if ref in ("paper", None):
            return self.span(letter, (value, value))[0]
        if ref.endswith(" domain"):
            return self._domain_px(letter, ref, value)
        return self.data_px(ref, value)

    def _domain_px(self, letter: str, ref: str, value: float) -> float:
        a, b = self.span(letter, self.axis(ref).domain)
        return a + value * (b - a) if letter == "x" else b - value * (b - a)


def _box(x: float, y: float, w: float, h: float, xanchor: str, yanchor: str):
    x0 = {"left": x, "center": x - w / 2, "right": x - w}[xanchor]
    y0 = {"top": y, "middle": y - h / 2, "bottom": y - h}[yanchor]
    return (x0, y0, x0 + w, y0 + h)


def _auto(anchor: str, value: float, letter: str, data_ref: bool) -> str:
    """Plotly's "auto" anchor of a text placed in paper or domain coordinates: by the third it lies in."""
    if anchor != "auto":
        return anchor
    if data_ref:
        return "center" if letter == "x" else "middle"
    low, mid, high = ("left", "center", "right") if letter == "x" else ("bottom", "middle", "top")
    return low if value <= 1 / 3 else high if value >= 2 / 3 else mid


def text_boxes(geo: Layout) -> list[tuple[str, tuple, bool]]:
    """Every text of the figure as (what, (x0, y0, x1, y1) in px from the top left, may it overlap others?)."""
    lay, boxes = geo.full.layout, []
    font = lay.font.size

    title = lay.title
    if title.text and not title.text.startswith("Click to enter"):  # plotly's placeholder when there is none
        w, h = extent(title.text, title.font.size)
        x = geo.position("x", title.xref, title.x)
        xanchor = _auto(title.xanchor, title.x, "x", False)
        if title.y in (None, "auto"):  # the first baseline on the middle of the top margin, later lines below it
            box = _box(x, geo.t / 2 - title.font.size, w, h, xanchor, "top")
        else:
            yanchor = title.yanchor if title.yanchor not in (None, "auto") else ("top" if title.y >= 0.5 else "bottom")
            y = geo.position("y", title.yref, title.y) + (title.pad.t if yanchor == "top" else -title.pad.b)
            box = _box(x, y, w, h, xanchor, yanchor)
        boxes.append((f"title {title.text!r}", box, False))

    for ann in lay.annotations:
        if not ann.text or ann.visible is False:
            continue
        w, h = extent(ann.text, ann.font.size)
        x, y = geo.position("x", ann.xref, ann.x), geo.position("y", ann.yref, ann.y)
        xdata = ann.xref not in ("paper", None) and not ann.xref.endswith("domain")
        ydata = ann.yref not in ("paper", None) and not ann.yref.endswith("domain")
        box = _box(x + (ann.xshift or 0), y - (ann.yshift or 0), w, h, _auto(ann.xanchor, ann.x, "x", xdata),
                   _auto(ann.yanchor, ann.y, "y", ydata))
        boxes.append((f"annotation {ann.text!r}", box, False))

    for key, ax in geo.axes.items():
        letter, ref = key[0], key[0] + key[5:]
        if not ax.visible:
            continue
        a, b = geo.span(letter, ax.domain)
        other = geo.axis(ax.anchor) if ax.anchor and ax.anchor != "free" else None
        base = (geo.span("y", other.domain)[1] if letter == "x" else geo.span("x", other.domain)[0]) if other else (
            geo.height - geo.b if letter == "x" else geo.l)
        # An automargin axis on the plot area's outer edge got the margin plotly measured its labels and title to
        # need (unless the plot area was squeezed, checked apart): across the axis, those extents are plotly's.
        edge = ax.automargin and other is not None and other.domain[0] == 0
        tick = ax.tickfont.size if ax.tickfont and ax.tickfont.size else font
        labels = tick_labels(geo, ref, ax) if ax.showticklabels else []
        band = 0.0  # how far the tick labels reach from the axis line
        for text, pos in labels:
            w, h = extent(text, tick)
            gap = (ax.ticklen or 0) * (ax.ticks == "outside") + 2
            if letter == "x":
                box = _box(pos, base + gap, w, h, "center", "top")
                band = max(band, gap + h)
            else:
                box = _box(base - gap, pos, w, h, "right", "middle")
                band = max(band, gap + w)
            boxes.append((f"{key} tick label {text!r}", _within(box, geo, letter, edge), ax.type != "category"))
        title = ax.title.text if ax.title else None
        if title and not title.startswith("Click to enter"):  # plotly's placeholder for an untitled axis: not drawn
            size = ax.title.font.size or font
            w, h = extent(title, size)
            if letter == "x":
                box = _box((a + b) / 2, base + band + 4, w, h, "center", "top")
            else:  # drawn rotated: its text runs along the axis
                box = _box(base - band - 4, (a + b) / 2, h, w, "right", "middle")
            boxes.append((f"{key} title {title!r}", _within(box, geo, letter, edge), False))

    for trace in geo.full.data:
        mode = getattr(trace, "mode", None) or ""
        if "text" not in mode or trace.text is None:
            continue
        size = (trace.textfont.size if trace.textfont and trace.textfont.size else font)
        position = trace.textposition if isinstance(trace.textposition, str) else "middle center"
        vertical, horizontal = (position.split(" ") + ["center"])[:2]
        for x, y, text in zip(trace.x, trace.y, np.broadcast_to(np.asarray(trace.text, object), len(trace.x))):
            if not text:
                continue
            w, h = extent(text, size)
            px, py = geo.data_px(trace.xaxis or "x", x), geo.data_px(trace.yaxis or "y", y)
            box = _box(px, py, w, h, {"left": "right", "right": "left"}.get(horizontal, "center"),
                       {"top": "bottom", "bottom": "top"}.get(vertical, "middle"))
            boxes.append((f"text {text!r} of {trace.name!r}", box, True))

    legend = legend_box(geo)
    if legend:
        boxes.append(("legend", legend, True))
    return boxes


def _within(box, geo: Layout, letter: str, trusted: bool):
    """`box` moved inside the frame across an x (`letter`) or y axis when plotly sized that margin (`trusted`)."""
    if not trusted:
        return box
    x0, y0, x1, y1 = box
    if letter == "x":
        shift = min(0.0, geo.height - y1)
        return (x0, y0 + shift, x1, y1 + shift)
    shift = max(0.0, -x0)
    return (x0 + shift, y0, x1 + shift, y1)


def _tick_text(value: float) -> str:
    for bound, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.3g}{suffix}"
    return f"−{abs(value):.3g}" if value < 0 else f"{value:.3g}"


def tick_labels(geo: Layout, ref: str, ax) -> list[tuple[str, float]]:
    """(label, px along the axis) of the axis' tick labels: every category, else its explicit tick values, else the
    two ends of its range (the widest labels a numeric axis can show)."""
    if ax.type == "category":
        return [(str(c), geo.data_px(ref, c)) for c in geo.categories(ref)]
    lo, hi = sorted(ax.range)
    if ax.tickvals is not None:
        values = [v for v in ax.tickvals if lo <= (np.log10(v) if ax.type == "log" else v) <= hi]
        texts = list(ax.ticktext) if ax.ticktext is not None else [_tick_text(v) for v in values]
        return list(zip(texts, [geo.data_px(ref, v) for v in values]))
    if ax.type == "log":
        ends = [10 ** np.floor(hi), 10 ** np.ceil(lo)]
        ends = [v for v in ends if lo <= np.log10(v) <= hi] or [10 ** hi]
    else:
        step = 10 ** np.floor(np.log10(max(hi - lo, 1e-12))) / 2
        ends = [np.ceil(lo / step) * step, np.floor(hi / step) * step]
    return [(_tick_text(v), geo.data_px(ref, v)) for v in ends]


def legend_box(geo: Layout):
    """The legend's box when one is drawn: entries one a line (vertical) at its position."""
    lay = geo.full.layout
    entries = [t.name for t in geo.full.data if getattr(t, "showlegend", False) and lay.showlegend is not False
               and t.name is not None]
    if not entries:
        return None
    leg = lay.legend
    size = (leg.font.size if leg.font and leg.font.size else lay.font.size)
    widths = [extent(name, size)[0] for name in entries]
    x = geo.position("x", leg.xref or "paper", leg.x)
    if leg.orientation == "h":
        w, h = min(sum(widths) + 50 * len(entries), geo.width), LINE * size + 10  # plotly wraps wider legends
    else:
        w, h = max(widths) + 50, len(entries) * max(LINE * size, 19) + 10
        if leg.xref != "container" and leg.x >= 1 and (leg.xanchor or "left") == "left":
            w = min(w, geo.width - x)  # right of the plot: plotly widened the right margin to the legend it measured
    y = geo.position("y", leg.yref or "paper", leg.y)
    return _box(x, y, w, h, _auto(leg.xanchor or "left", leg.x, "x", False), _auto(leg.yanchor, leg.y, "y", False))


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > TOL and min(a[3], b[3]) - max(a[1], b[1]) > TOL


def problems(full) -> list[str]:
    """What lies outside the frame, and which texts run into each other, in words ([] when the figure fits)."""
    geo = Layout(full)
    out = []
    lay = full.layout
    if geo.pw <= (lay.minreducedwidth or 64) + TOL or geo.ph <= (lay.minreducedheight or 64) + TOL:
        out.append(f"plot area squeezed to {geo.pw:.0f} x {geo.ph:.0f} px: automargins could not be given")
    boxes = text_boxes(geo)
    for what, (x0, y0, x1, y1), _ in boxes:
        if x0 < -TOL or y0 < -TOL or x1 > geo.width + TOL or y1 > geo.height + TOL:
            out.append(f"{what} lies at x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f} px, outside the "
                       f"{geo.width} x {geo.height} frame")
    fixed = [(what, box) for what, box, loose in boxes if not loose]
    for i, (what, box) in enumerate(fixed):
        for other, box2 in fixed[i + 1:]:
            if _overlap(box, box2):
                out.append(f"{what} runs into {other}")
    return out


# ----------------------------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def full_figure():
    """Figure -> its full figure, with one kaleido server (one browser start) for the whole module."""
    started = hasattr(kaleido, "start_sync_server")
    if started:
        kaleido.start_sync_server()
    try:
        import warnings

        def compute(fig):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "kopts ignored when using a server"
                return fig.full_figure_for_development(warn=False)
        yield compute
    finally:
        if started:
            kaleido.stop_sync_server()


def test_every_figure_function_has_a_case():
    """A figure function added to figures.py gets a case here."""
    import inspect

    functions = {name for name, f in inspect.getmembers(figures, inspect.isfunction)
                 if f.__module__ == figures.__name__ and (name.endswith("_figure") or name == "image_grid")
                 and name != "save_figure"}
    used = set().union(*(set(make.__code__.co_names) & functions for make in CASES.values()))
    assert used == functions, f"no case builds {sorted(functions - used)}"


@pytest.mark.parametrize("case", list(CASES))
def test_figure_texts_lie_inside_the_frame(case, full_figure):
    fig = CASES[case]()
    assert fig.layout.width and fig.layout.height, "a figure states its size: the PNG is drawn at it"
    found = problems(full_figure(fig))
    assert not found, f"{case}:\n" + "\n".join(found)


def test_the_check_sees_labels_cut_off(full_figure):
    """The check itself: a forest plot whose long labels plotly cannot make room for fails it."""
    import plotly.graph_objects as go

    label = "director: held-out return / random return<br><sup>" + f"not learned ({BOTH_FAILED})</sup>"
    fig = go.Figure(go.Scatter(x=[0.1, 0.2], y=[label, "director: short"], mode="markers"))
    fig.update_layout(width=760, height=300, xaxis_title="hierarchy - DreamerV3 (difference of per-seed means)",
                      margin={"l": 230}, template="plotly_white")
    found = problems(full_figure(fig))
    assert any("squeezed" in p for p in found) and any("xaxis title" in p and "outside" in p for p in found)
