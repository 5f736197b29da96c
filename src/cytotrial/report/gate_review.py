"""Gate review figures: one gate on every sample as small multiples, with % of parent and outlier flags.

Each panel is the parent's events of one sample in the gate's display dimensions (a 2-D histogram in log
colour, or a histogram for 1-D gates) with the gate as realised on that sample drawn on top. Panels come in the
caller's order (patient then visit), one row per patient with ``columns`` = the number of visits.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Polygon, Rectangle, StepPatch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Affine2D, Bbox, TransformedBbox

from ..gating.static import either_cut_polygon

GATE_COLOUR = "#e8590c"
OUTLIER_COLOUR = "#d00000"
MISSING_FACE = "0.88"
DENSITY_CMAP = "viridis"
BINS_2D = 64
BINS_1D = 80
PANEL_WIDTH_IN = 1.75
PANEL_HEIGHT_IN = 1.6
HEADER_IN = 0.72
FOOTER_IN = 0.5
LINE_IN = 0.17
MAX_FOOTER_LINES = 30
FOOTER_WIDTH_CHARS = 170
LEFT_IN = 0.75
RIGHT_IN = 0.15
DPI = 90
TITLE_PAD_IN = 0.035  # panel title baseline above the frame
TICK_IN = 2 / 72  # tick marks, and the gap to their labels (2 pt, 1 pt)
TICK_PAD_IN = 1 / 72


@dataclass
class ReviewPanel:
    """One sample's panel of a gate review figure.

    Attributes
    ----------
    sample_id, label
        Sample and its short panel title (e.g. "P01 W4").
    x, y
        (n,) parent events in the display dimensions, in gating units; ``y`` is None for a 1-D gate (drawn as
        a histogram). May be empty (e.g. a missing parent).
    x_name, y_name
        Display dimensions (markers or channels), keys of ``geometry`` and of the figure's ``axis_labels``.
    method
        'cuts', 'singlets', 'boundary', 'cluster', or a static 'rectangle', 'polygon' or 'ellipse' (any other
        method, e.g. 'boolean', is shown without a gate).
    geometry
        The gate in gating units. cuts: ``{dim: (keep, cut)}`` with keep 'above' or 'below' (dims not
        displayed are listed in the figure header); singlets (x = area, y = height): a band around a line,
        ``{"slope", "intercept", "half_width"}``, or a ratio band through the origin, ``{"ratio":
        "FSC-H/FSC-A", "ratio_min", "ratio_max"}``; boundary: ``{dim: (low, high)}``; cluster: an ellipse,
        ``{"mean": [x, y], "covariance": 2x2, "distance_squared": r2}`` (also 'ellipse'); rectangle: ``{dim:
        (low, high)}``; polygon: ``{"vertices": [[x, y], ...]}``. :func:`gate_geometry` converts a
        realised gate record. Empty when the gate was not placed.
    percent_of_parent
        The population as % of its parent (NaN when missing).
    status, reason
        'ok' or 'missing', and why it is missing.
    outlier, outlier_reason
        Flag from :func:`cytotrial.stats.outliers.flag_population_outliers` and its reason.
    """

    sample_id: str
    label: str
    x: np.ndarray
    y: np.ndarray | None
    x_name: str
    y_name: str | None
    method: str
    geometry: dict = field(default_factory=dict)
    percent_of_parent: float = math.nan
    status: str = "ok"
    reason: str = ""
    outlier: bool = False
    outlier_reason: str = ""


def gate_geometry(record: dict, ranges: dict[str, float] | None = None) -> dict:
    """Panel geometry (gating units) of one realised gate record of :func:`cytotrial.quantify.realised_gates`.

    Parameters
    ----------
    record
        One entry of ``gates`` (method, cuts / ratio_min, ratio_max / bounds).
    ranges
        dim -> detector range ($PnR) of the boundary gate's dimensions: its bounds are recorded in linear
        units and scatter is displayed as linear / range. Without it the bounds are returned unscaled.
    """
    method = record.get("method")
    if method == "singlets":
        keys = ("slope", "intercept", "half_width") if "slope" in record else ("ratio", "ratio_min", "ratio_max")
        return {k: record[k] for k in keys if k in record}
    if method == "cluster":
        return dict(record.get("ellipse", {}))
    if method == "boundary":
        scale = ranges or {}
        return {dim: (b["min_exclusive"] / scale.get(dim, 1.0), b["max_exclusive"] / scale.get(dim, 1.0))
                for dim, b in record.get("bounds", {}).items()}
    if method == "cuts" and record.get("combine") == "any":  # either cut: drawn as its polygon
        return {"vertices": either_cut_polygon(*record["cuts"].values())}
    if method == "cuts":
        return {dim: (c["keep"], float(c["cut"])) for dim, c in record.get("cuts", {}).items()}
    if method == "rectangle":
        box = record.get("rectangle", {})
        dims = list(record.get("dims", []))
        return {dim: (_bound(lo, -np.inf), _bound(hi, np.inf))
                for dim, lo, hi in zip(dims, box.get("min") or [None] * len(dims), box.get("max") or [None] * len(dims))}
    if method in ("polygon", "mixture"):
        return {"vertices": [list(map(float, v)) for v in record.get("polygon", {}).get("vertices", [])]}
    if method == "ellipse":
        return dict(record.get("ellipse", {}))
    return {}


def _bound(value, default: float) -> float:
    return default if value is None else float(value)


def plot_gate_review(population: str, parent: str, panels: list[ReviewPanel | None], path: str | os.PathLike,
                     *, axis_labels: dict[str, str] | None = None, columns: int = 7,
                     axis_ticks: dict[str, list[tuple[float, str]]] | None = None, title: str = "") -> Figure:
    """Write one gate's review figure (PNG, deterministic bytes: no software or date metadata); returns the Figure.

    Parameters
    ----------
    population, parent
        The gate's population and its parent (figure title).
    panels
        One per sample in display order (patient, then visit); ``None`` leaves a grid cell empty, so a patient
        with a skipped visit keeps the visit columns aligned.
    path
        Output PNG.
    axis_labels
        dim -> axis label in original units (e.g. "CD3 BV421 (logicle)"); default: the dim name.
    columns
        Panels per row (the number of visits, so that each row is a patient).
    axis_ticks
        dim -> [(position in gating units, label)], e.g. decades of the original scale on a logicle axis.
    title
        Extra line under the title (e.g. the trial or template name).

    The panels share one matplotlib Axes (a canvas in inches; an Axes per panel costs more than the rest of
    the figure): each panel's artists are drawn in its gating units through the panel's own transform and
    clipped to its frame, and carry ``gid`` "panel <i>" (i: the panel's index in ``panels``), so that they can
    be read back per panel (:func:`panel_artists`).
    """
    cells = list(panels)
    columns = max(1, int(columns))
    rows = max(1, math.ceil(len(cells) / columns))
    drawn = [p for p in cells if p is not None]
    chars = _chars_per_line(LEFT_IN + columns * PANEL_WIDTH_IN + RIGHT_IN)
    title_text, details = _header_lines(population, parent, drawn, title)
    header = (title_text, [part for line in details for part in textwrap.wrap(line, chars) or [""]])
    footer = [part for line in _footer_lines(drawn) for part in textwrap.wrap(line, chars, subsequent_indent="  ")]
    fig, canvas, boxes = _figure(rows, columns, HEADER_IN + LINE_IN * len(header[1]),
                                 FOOTER_IN + LINE_IN * len(footer))
    limits = _shared_limits(drawn)
    for index, panel in enumerate(cells):
        if panel is None:
            continue
        frame = PanelFrame(canvas, boxes[index], *_panel_limits(panel, limits), gid=f"panel {index}")
        _draw_panel(frame, panel)
        _ticks(frame, panel, axis_ticks or {}, left=index % columns == 0, bottom=_is_bottom(index, cells, columns))
    _draw_text(fig, header, footer, drawn, axis_labels=axis_labels or {})
    fig.savefig(path, format="png", metadata={"Software": None})
    return fig


def panel_artists(fig: Figure, index: int) -> dict[str, list]:
    """The artists drawn for panel ``index`` of a review figure, by kind: 'frame' (the panel's outline, a
    Rectangle from its x and y limits), 'background' (a missing panel's grey), 'image', 'patches' (gate shapes
    and histograms), 'lines' (cuts, band edges), 'texts' (notes inside), 'titles' (left: label, right: % of
    parent), 'ticks' and 'tickmarks'. Patches and lines are in the panel's gating units (an artist's data; its
    transform maps them onto the figure); texts, tick marks and the image in inches on the canvas."""
    kinds: dict[str, list] = {k: [] for k in ("frame", "background", "image", "patches", "lines", "texts", "titles",
                                              "ticks", "tickmarks")}
    for artist in [*fig.get_children(), *(a for ax in fig.axes for a in ax.get_children())]:
        gid = artist.get_gid() or ""
        if gid.split(":")[0] == f"panel {index}":
            kinds[gid.split(":")[1] if ":" in gid else "patches"].append(artist)
    return kinds


class PanelFrame:
    """One panel's place on the shared canvas: ``box`` (x0, y0, x1, y1) in inches shows the panel's ``xlim`` x
    ``ylim`` (gating units); ``transform`` maps gating units onto the canvas and ``clip`` is the box."""

    def __init__(self, canvas, box: tuple[float, float, float, float], xlim, ylim, *, gid: str):
        self.canvas, self.box, self.xlim, self.ylim, self.gid = canvas, box, tuple(xlim), tuple(ylim), gid
        x0, y0, x1, y1 = box
        scale_x, scale_y = (x1 - x0) / (xlim[1] - xlim[0]), (y1 - y0) / (ylim[1] - ylim[0])
        to_box = Affine2D().scale(scale_x, scale_y).translate(x0 - xlim[0] * scale_x, y0 - ylim[0] * scale_y)
        self.transform = to_box + canvas.transData
        self.clip = TransformedBbox(Bbox([[x0, y0], [x1, y1]]), canvas.transData)

    def add(self, artist, kind: str = "patches", *, clip: bool = True):
        """Add a patch or line drawn in gating units."""
        artist.set_transform(self.transform)
        if clip:
            artist.set_clip_box(self.clip)
        artist.set_gid(f"{self.gid}:{kind}")
        return self.canvas.figure.add_artist(artist)  # on the figure: neither data limits nor a clip path to set

    def tick_mark(self, xs: list[float], ys: list[float]) -> None:
        """A tick mark outside the frame, in inches on the canvas."""
        self.canvas.figure.add_artist(Line2D(xs, ys, color="k", lw=0.8, transform=self.canvas.transData,
                                             gid=f"{self.gid}:tickmarks"))

    def text(self, x: float, y: float, text: str, kind: str, **style):
        """Text at (x, y) in the panel's axes fraction (0-1)."""
        x0, y0, x1, y1 = self.box
        return self.canvas.figure.text(x0 + x * (x1 - x0), y0 + y * (y1 - y0), text, gid=f"{self.gid}:{kind}",
                                       transform=self.canvas.transData, **style)


def _chars_per_line(width_in: float, fontsize: float = 8.5) -> int:
    """Characters of text that fit across the figure (average glyph ~0.55 em), so lines are wrapped, not cut."""
    return max(30, int((width_in - 0.3) * 72 / (0.55 * fontsize)))


def _figure(rows: int, columns: int, header_in: float, footer_in: float):
    """The figure, its one canvas Axes (data units: inches from the lower left corner, no axis drawn) and the
    panels' boxes (x0, y0, x1, y1, inches) in reading order, spaced as a subplot grid (wspace 0.1, hspace 0.3)."""
    width = LEFT_IN + columns * PANEL_WIDTH_IN + RIGHT_IN
    height = header_in + rows * PANEL_HEIGHT_IN + footer_in
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    canvas = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    canvas.set_axis_off()
    canvas.set_xlim(0.0, width)
    canvas.set_ylim(0.0, height)
    cell_w = (width - LEFT_IN - RIGHT_IN) / (columns + 0.1 * (columns - 1))
    cell_h = (height - header_in - footer_in) / (rows + 0.3 * (rows - 1))
    boxes = []
    for index in range(rows * columns):
        row, column = divmod(index, columns)
        x0 = LEFT_IN + column * cell_w * 1.1
        y1 = height - header_in - row * cell_h * 1.3
        boxes.append((x0, y1 - cell_h, x0 + cell_w, y1))
    return fig, canvas, boxes


def _is_bottom(index: int, cells: list, columns: int) -> bool:
    """True when no panel is drawn below this one (its x tick labels are shown)."""
    return all(cells[j] is None for j in range(index + columns, len(cells), columns))


def _shared_limits(panels: list[ReviewPanel]) -> dict[str, tuple[float, float]]:
    """Axis limits per display dim, shared by all panels: 0.2-99.8 % of all events, widened to the gates."""
    values: dict[str, list[np.ndarray]] = {}
    for panel in panels:
        for name, data in ((panel.x_name, panel.x), (panel.y_name, panel.y)):
            if name is not None and data is not None:
                values.setdefault(name, []).append(np.asarray(data, dtype=float).ravel())
    limits = {}
    for name, parts in values.items():
        data = np.concatenate(parts)
        data = data[np.isfinite(data)]
        lo, hi = (np.quantile(data, [0.002, 0.998]) if data.size else (0.0, 1.0))
        lines = [v for p in panels for v in _gate_positions(p, name)]
        if lines:
            lo, hi = min(lo, min(lines)), max(hi, max(lines))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.04 * (hi - lo)
        limits[name] = (float(lo - pad), float(hi + pad))
    return limits


def _gate_positions(panel: ReviewPanel, dim: str) -> list[float]:
    """Finite gate coordinates of one dim that should stay inside the axes (cuts, finite bounds)."""
    if panel.method == "cuts" and dim in panel.geometry:
        return [float(panel.geometry[dim][1])]
    if panel.method in ("boundary", "rectangle") and dim in panel.geometry:
        return [float(v) for v in panel.geometry[dim] if np.isfinite(v)]
    return []


def _panel_limits(panel: ReviewPanel, limits: dict) -> tuple[tuple[float, float], tuple[float, float]]:
    """The panel's x and y limits: the shared limits of its dims; 0-1.1 for a histogram's scaled counts."""
    return limits.get(panel.x_name, (0.0, 1.0)), (limits.get(panel.y_name, (0.0, 1.0)) if panel.y is not None
                                                  else (0.0, 1.1))


def _draw_panel(frame: PanelFrame, panel: ReviewPanel) -> None:
    missing = panel.status != "ok"
    if missing:
        frame.add(Rectangle((frame.xlim[0], frame.ylim[0]), frame.xlim[1] - frame.xlim[0],
                            frame.ylim[1] - frame.ylim[0], facecolor=MISSING_FACE, edgecolor="none",
                            zorder=-1), "background")  # under the canvas and so under the events' image
    x = np.asarray(panel.x, dtype=float).ravel()
    if panel.y is None:
        _histogram(frame, x, missing)
    else:
        _density(frame, x, np.asarray(panel.y, dtype=float).ravel(), missing=missing)
    if not missing and panel.geometry:
        _draw_gate(frame, panel)
    _annotate(frame, panel)


def _density(frame: PanelFrame, x: np.ndarray, y: np.ndarray, *, missing: bool) -> None:
    """2-D histogram of the events, log colour scale normalised per panel (empty bins left blank)."""
    ok = np.isfinite(x) & np.isfinite(y)
    counts, _, _ = np.histogram2d(x[ok], y[ok], bins=BINS_2D, range=(frame.xlim, frame.ylim))
    masked = np.ma.masked_less(counts.T, 1)
    if masked.count():
        x0, y0, x1, y1 = frame.box
        frame.canvas.imshow(masked, origin="lower", extent=(x0, x1, y0, y1), aspect="auto", interpolation="nearest",
                            cmap="Greys" if missing else DENSITY_CMAP, norm=LogNorm(1, max(2.0, float(counts.max()))),
                            alpha=0.5 if missing else 1.0, gid=f"{frame.gid}:image")


def _histogram(frame: PanelFrame, x: np.ndarray, missing: bool) -> None:
    """Histogram of the events scaled to a peak of 1."""
    x = x[np.isfinite(x)]
    counts, edges = np.histogram(x, bins=BINS_1D, range=frame.xlim)
    heights = counts / counts.max() if counts.max() > 0 else counts.astype(float)
    colour = "0.6" if missing else "#3b528b"
    frame.add(StepPatch(heights, edges, fill=True, color=colour, alpha=0.35, linewidth=0))
    frame.add(StepPatch(heights, edges, fill=False, color=colour, linewidth=0.8))


def _draw_gate(frame: PanelFrame, panel: ReviewPanel) -> None:
    geometry, has_y = panel.geometry, panel.y is not None
    if panel.method == "singlets" and has_y:
        _draw_band(frame, geometry, panel.x_name)
    elif panel.method in ("cluster", "ellipse") and has_y and "mean" in geometry:
        _draw_ellipse(frame, geometry)
    elif panel.method in ("polygon", "mixture") and has_y and geometry.get("vertices"):
        for face, edge in ((GATE_COLOUR, "none"), ("none", GATE_COLOUR)):
            frame.add(Polygon(geometry["vertices"], closed=True, facecolor=face, edgecolor=edge,
                              alpha=0.12 if face != "none" else 1.0, lw=1.3))
    elif panel.method in ("boundary", "rectangle"):
        everything = (-np.inf, np.inf)
        _draw_box(frame, geometry.get(panel.x_name, everything),
                  geometry.get(panel.y_name, everything) if has_y else everything, lines=False)
    elif panel.method == "cuts":
        _draw_box(frame, _kept_interval(geometry.get(panel.x_name)),
                  _kept_interval(geometry.get(panel.y_name) if has_y else None), lines=True,
                  cut_x=panel.x_name in geometry, cut_y=has_y and panel.y_name in geometry)


def _kept_interval(cut: tuple[str, float] | None) -> tuple[float, float]:
    if cut is None:
        return (-np.inf, np.inf)
    keep, value = cut
    return (float(value), np.inf) if keep == "above" else (-np.inf, float(value))


def _draw_box(frame: PanelFrame, xs, ys, *, lines: bool, cut_x: bool = False, cut_y: bool = False) -> None:
    """Shade and outline the kept rectangle (clipped to the panel); with ``lines`` the cuts span the panel."""
    (left, right), (low, high) = frame.xlim, frame.ylim
    x0, x1 = max(xs[0], left), min(xs[1], right)
    y0, y1 = max(ys[0], low), min(ys[1], high)
    if lines:
        if cut_x:
            x = xs[0] if np.isfinite(xs[0]) else xs[1]
            frame.add(Line2D([x, x], [low, high], color="k", lw=0.7, ls=(0, (3, 2))), "lines")
        if cut_y:
            y = ys[0] if np.isfinite(ys[0]) else ys[1]
            frame.add(Line2D([left, right], [y, y], color="k", lw=0.7, ls=(0, (3, 2))), "lines")
    if x1 > x0 and y1 > y0:
        frame.add(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=GATE_COLOUR, alpha=0.12, edgecolor="none"))
        frame.add(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor="none", edgecolor=GATE_COLOUR, lw=1.3))


def _draw_band(frame: PanelFrame, geometry: dict, x_name: str) -> None:
    """Singlet band between two lines: y = intercept + slope x +/- half_width, or y = r x for the two ratio
    limits (through the origin); the band is shaded."""
    xs = np.array([min(0.0, frame.xlim[0]), frame.xlim[1]])
    if "slope" in geometry:
        centre = float(geometry["intercept"]) + float(geometry["slope"]) * xs
        edges = [centre - float(geometry["half_width"]), centre + float(geometry["half_width"])]
    else:
        slopes = [float(geometry["ratio_min"]), float(geometry["ratio_max"])]
        if str(geometry.get("ratio", "")).split("/")[0] == x_name:  # x / y is the ratio: y = x / r
            slopes = [1.0 / r if r > 0 else np.inf for r in slopes[::-1]]
        edges = [r * xs for r in slopes]
    if not np.all(np.isfinite(edges)):
        return
    band = np.column_stack([np.r_[xs, xs[::-1]], np.r_[edges[0], edges[1][::-1]]])
    frame.add(Polygon(band, closed=True, facecolor=GATE_COLOUR, alpha=0.12, edgecolor="none"))
    for edge in edges:
        frame.add(Line2D(xs, edge, color=GATE_COLOUR, lw=1.3), "lines")


def _draw_ellipse(frame: PanelFrame, geometry: dict) -> None:
    """Cluster gate: the ellipse {z : (z - mean)' inv(covariance) (z - mean) <= distance_squared}."""
    values, vectors = np.linalg.eigh(np.asarray(geometry["covariance"], dtype=float)[:2, :2])
    radius = np.sqrt(float(geometry["distance_squared"]) * np.clip(values, 0, None))
    angle = float(np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1])))
    centre = tuple(float(v) for v in geometry["mean"][:2])
    for face, edge in ((GATE_COLOUR, "none"), ("none", GATE_COLOUR)):
        frame.add(Ellipse(centre, 2 * radius[1], 2 * radius[0], angle=angle, facecolor=face, edgecolor=edge,
                          alpha=0.12 if face != "none" else 1.0, lw=1.3))


def _annotate(frame: PanelFrame, panel: ReviewPanel) -> None:
    """Label (left) and % of parent (right) above the panel; missing reason or outlier reason inside; the
    panel's frame (red and thick for a flagged outlier)."""
    missing = panel.status != "ok"
    colour = OUTLIER_COLOUR if panel.outlier else ("0.45" if missing else "k")
    weight = "bold" if panel.outlier else "normal"
    percent = panel.percent_of_parent
    value = "missing" if missing or not np.isfinite(percent) else _format_percent(percent)
    pad = TITLE_PAD_IN / (frame.box[3] - frame.box[1])
    frame.text(0.0, 1.0 + pad, panel.label, "titles", ha="left", va="baseline", fontsize=8, color=colour,
               fontweight=weight)
    frame.text(1.0, 1.0 + pad, value, "titles", ha="right", va="baseline", fontsize=8, color=colour,
               fontweight=weight)
    if missing:
        _inside_note(frame, panel.reason or "missing", "0.25", va="center", y=0.5)
    elif panel.outlier:
        _inside_note(frame, _short_reason(panel.outlier_reason), OUTLIER_COLOUR, va="top", y=0.97)
    outlier = panel.outlier and not missing
    frame.add(Rectangle((frame.xlim[0], frame.ylim[0]), frame.xlim[1] - frame.xlim[0], frame.ylim[1] - frame.ylim[0],
                        facecolor="none", edgecolor=OUTLIER_COLOUR if outlier else "k", lw=2.4 if outlier else 0.8),
              "frame", clip=False)


def _format_percent(percent: float) -> str:
    if percent >= 10:
        return f"{percent:.1f}%"
    return f"{percent:.2f}%" if percent >= 0.1 else f"{percent:.2g}%"


def _short_reason(reason: str) -> str:
    """In-panel form of an outlier reason: each test's name and z ('batch run012 z=+5.3'); the full reason
    goes to the figure's footer."""
    parts = []
    for part in (reason or "outlier").split(";"):
        name = part.split(":")[0].strip()
        z = re.search(r"z=[+-]?[0-9.]+", part)
        parts.append(f"{name} {z.group(0)}" if z else part.strip())
    return "\n".join(parts)


def _inside_note(frame: PanelFrame, text: str, colour: str, va: str, *, y: float) -> None:
    wrapped = "\n".join(line for paragraph in text.split("\n")
                         for line in textwrap.wrap(paragraph, width=30, max_lines=3, placeholder=" ..."))
    frame.text(0.5, y, wrapped, "texts", ha="center", va=va, fontsize=7, color=colour, linespacing=1.05,
               bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "edgecolor": "none"})


def _ticks(frame: PanelFrame, panel: ReviewPanel, axis_ticks: dict, left: bool, *, bottom: bool) -> None:
    """Ticks and their labels only on the outer panels (bottom of each column, left of each row): custom
    positions and labels per dim where given, else about three round values inside the limits."""
    for axis, name, outer in (("x", panel.x_name, bottom), ("y", panel.y_name if panel.y is not None else None, left)):
        if not outer or name is None:
            continue
        low, high = frame.xlim if axis == "x" else frame.ylim
        if name in axis_ticks:
            ticks = [t for t in axis_ticks[name] if low <= t[0] <= high]
        else:
            ticks = [(v, f"{v:g}") for v in MaxNLocator(nbins=3, prune="both").tick_values(low, high)
                     if low <= v <= high]
        for position, label in ticks:
            fraction = (position - low) / (high - low)
            x0, y0, x1, y1 = frame.box
            if axis == "x":
                x = x0 + fraction * (x1 - x0)
                frame.tick_mark([x, x], [y0, y0 - TICK_IN])
                frame.text(fraction, -(TICK_IN + TICK_PAD_IN) / (y1 - y0), label, "ticks", ha="center", va="top",
                           fontsize=6)
            else:
                y = y0 + fraction * (y1 - y0)
                frame.tick_mark([x0, x0 - TICK_IN], [y, y])
                frame.text(-(TICK_IN + TICK_PAD_IN) / (x1 - x0), fraction, label, "ticks", ha="right", va="center",
                           fontsize=6)


def _header_lines(population: str, parent: str, panels: list[ReviewPanel], title: str) -> tuple[str, list[str]]:
    """Title and the detail lines under it (summary, colour key, cuts not shown)."""
    n_missing = sum(p.status != "ok" for p in panels)
    n_outlier = sum(bool(p.outlier) and p.status == "ok" for p in panels)
    summary = f"{len(panels)} samples, {n_outlier} flagged as outliers, {n_missing} missing"
    density = ("colour: events per bin (log, per panel); " if any(p.y is not None for p in panels)
               else "histograms scaled to their peak; ")
    key = density + "orange: gate (kept region shaded); dashed: cut; red frame: flagged outlier; grey: missing"
    details = [f"{title} - {summary}" if title else summary, key]
    hidden = _hidden_cuts(panels)
    if hidden:
        details.append(f"also gated on (not shown): {hidden}")
    return f"Gate review: {population} (of {parent})", details


def _footer_lines(panels: list[ReviewPanel]) -> list[str]:
    """Full outlier reasons, one line per flagged sample (at most MAX_FOOTER_LINES)."""
    flagged = [p for p in panels if p.outlier and p.status == "ok"]
    lines = [f"{p.label} ({p.sample_id}): {p.outlier_reason}" if p.label != p.sample_id
             else f"{p.label}: {p.outlier_reason}" for p in flagged]
    lines = [textwrap.shorten(line, width=FOOTER_WIDTH_CHARS, placeholder=" ...") for line in lines]
    if len(lines) > MAX_FOOTER_LINES:
        lines = lines[:MAX_FOOTER_LINES - 1] + [f"... and {len(lines) - MAX_FOOTER_LINES + 1} more flagged samples"]
    return (["Flagged outliers:"] + lines) if lines else []


def _draw_text(fig, header: tuple[str, list[str]], footer: list[str], panels: list[ReviewPanel],
               *, axis_labels: dict[str, str]) -> None:
    """Title, detail lines, shared axis labels and the outlier list, placed in inches from the edges."""
    height, width = fig.get_figheight(), fig.get_figwidth()
    fig.text(0.5, 1 - 0.12 / height, header[0], ha="center", va="top", fontsize=13, fontweight="bold")
    fig.text(0.5, 1 - 0.45 / height, "\n".join(header[1]), ha="center", va="top", fontsize=8.5,
             linespacing=1.35)
    if footer:
        fig.text(LEFT_IN / width, (0.1 + LINE_IN * len(footer)) / height, "\n".join(footer), ha="left",
                 va="top", fontsize=8, linespacing=1.35, color=OUTLIER_COLOUR)
    if not panels:
        return
    first = panels[0]
    fig.supxlabel(axis_labels.get(first.x_name, first.x_name), fontsize=10,
                  y=(0.15 + LINE_IN * len(footer)) / height)
    y_label = ("events (scaled to the peak)" if first.y is None
               else axis_labels.get(first.y_name, first.y_name or ""))
    fig.supylabel(y_label, fontsize=10, x=0.1 / width)


def _hidden_cuts(panels: list[ReviewPanel]) -> str:
    """Cuts of the gate on dims that are not displayed (e.g. the third dim of a 3-D cut gate)."""
    hidden: dict[str, str] = {}
    for panel in panels:
        if panel.method != "cuts":
            continue
        for dim, (keep, _) in panel.geometry.items():
            if dim not in (panel.x_name, panel.y_name):
                hidden.setdefault(dim, f"{dim} {keep} cut")
    return ", ".join(hidden.values())
