"""Charts for reports, drawn with matplotlib as SVG, every piece of text in the shipped CJK font.

No pyplot: each chart is a Figure of its own (no global state, safe beside other work). Text is turned into paths
(``svg.fonttype = "path"``) from the shipped font (bot.exports.fonts), so a chart needs no font wherever it is shown
and Chinese labels never come out as boxes. A scatter of many points draws its points as one embedded image
(``rasterized``), keeping the SVG and the PDF small; axes and labels stay vector."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("svg", force=False)  # never a GUI backend: charts are files

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from bot.exports.colours import AGREE, DISAGREE, GREY, PALETTE, PASS, group_colour
from bot.exports.fonts import cjk_font_path
from consultation.opinion_map import FloatArray, IntArray

__all__ = ["AGREE", "DISAGREE", "GREY", "PALETTE", "PASS", "bars_svg", "group_colour", "opinion_map_svg"]

RASTERIZE_ABOVE = 1_500  # points
_RC: dict[Any, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "linli",
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _font(size: float) -> FontProperties:
    return FontProperties(fname=str(cjk_font_path()), size=size)


def _svg(figure: Figure) -> str:
    """The figure as SVG text, every text in the shipped font."""
    for text in figure.findobj(Text):
        text.set_fontproperties(_font(float(text.get_fontsize())))
    out = io.StringIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(out, format="svg", metadata={"Date": None}, dpi=150)
    svg = out.getvalue()
    return svg[svg.index("<svg") :]  # without the XML prolog and doctype, to be inlined in HTML


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(width, height), layout="constrained")
        return figure, figure.add_subplot()


def opinion_map_svg(
    positions: FloatArray,
    group_of: IntArray,
    group_names: Sequence[str],
    unclustered: str,
    *,
    width: float = 6.5,
    height: float = 3.6,
) -> str:
    """Participants as points, coloured by group (grey: not in a group), each group's name at its centre."""
    figure, axes = _axes(width, height)
    many = positions.shape[0] > RASTERIZE_ABOVE
    size = 6 if many else 22
    outside = group_of < 0
    if outside.any():
        axes.scatter(
            positions[outside, 0],
            positions[outside, 1],
            s=size,
            c=GREY,
            alpha=0.6,
            linewidths=0,
            label=unclustered,
            rasterized=many,
        )
    for index, name in enumerate(group_names):
        members = group_of == index
        if not members.any():
            continue
        axes.scatter(
            positions[members, 0],
            positions[members, 1],
            s=size,
            c=group_colour(index),
            alpha=0.75,
            linewidths=0,
            label=name,
            rasterized=many,
        )
        centre = positions[members].mean(axis=0)
        # The name just above the group's centre, so that it hides no point there.
        axes.annotate(
            name,
            (float(centre[0]), float(centre[1])),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=10,
            color="black",
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": group_colour(index), "alpha": 0.85},
        )
    axes.margins(0.18)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.axhline(0, color="#DDDDDD", linewidth=0.8, zorder=0)
    axes.axvline(0, color="#DDDDDD", linewidth=0.8, zorder=0)
    if group_names or outside.any():
        figure.legend(loc="outside lower center", fontsize=8, frameon=False, markerscale=1.5, ncols=6)
    return _svg(figure)


def bars_svg(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    ylabel: str = "",
    stacked: bool = False,
    width: float = 6.5,
    height: float = 2.6,
    value_range: tuple[float, float] | None = None,
) -> str:
    """Vertical bars: one group of bars per label, one bar per series (name, values, colour), side by side or
    stacked. A single series without a name has no legend."""
    figure, axes = _axes(width, height)
    count = max(len(series), 1)
    positions = list(range(len(labels)))
    bar_width = 0.8 if stacked else 0.8 / count
    bottoms = [0.0] * len(labels)
    for n, (name, values, colour) in enumerate(series):
        if stacked:
            axes.bar(positions, values, bar_width, bottom=bottoms, label=name or None, color=colour)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        else:
            offset = (n - (count - 1) / 2) * bar_width
            axes.bar([p + offset for p in positions], values, bar_width, label=name or None, color=colour)
    axes.set_xticks(positions, list(labels))
    if len(labels) > 12:
        step = max(1, len(labels) // 12)
        for index, tick in enumerate(axes.get_xticklabels()):
            tick.set_visible(index % step == 0)
    axes.tick_params(axis="x", labelsize=8)
    axes.tick_params(axis="y", labelsize=8)
    if value_range is not None:
        axes.set_ylim(*value_range)
        axes.axhline(0, color="#888888", linewidth=0.8)
    else:
        # Counts: no tick at 0.25 of a vote.
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if ylabel:
        # Above the axis, not along it: Chinese turned on its side is hard to read.
        axes.set_title(ylabel, fontsize=9, loc="left")
    if any(name for name, _, _ in series):
        figure.legend(fontsize=8, frameon=False, ncols=min(len(series), 6), loc="outside lower center")
    return _svg(figure)
