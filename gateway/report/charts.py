"""The report's charts, drawn by matplotlib and returned as SVG text to embed inline.

SVG keeps the HTML self-contained and sharp on paper; text is drawn as paths in the
bundled DejaVu Sans (full Vietnamese coverage), so a chart looks the same in any browser
and in the PDF. Output is deterministic (no date, fixed id salt), so two runs over the
same journal give the same file. The functions take plain numbers and labels only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PALETTE = ("#1f5fa8", "#d9822b", "#2e8b57", "#a23b72", "#6a5acd", "#8c6d31", "#3b8ea5",
           "#c0392b")
INK, GRID, MUTED = "#1d2733", "#d5dbe3", "#6b7785"
OK_GREEN, WARN_AMBER = "#2e8b57", "#e0a526"
TICKS_S = (1, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)

plt.rcParams.update({
    "font.family": "DejaVu Sans", "font.size": 8.5, "axes.edgecolor": GRID,
    "axes.labelcolor": INK, "xtick.color": MUTED, "ytick.color": MUTED, "text.color": INK,
    "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "alarm-report",
    "svg.fonttype": "path",
})


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), scaled by CSS to its box."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1', text, count=1)


def per_day(days: int, series: Sequence[tuple[str, Sequence[int]]], ylabel: str,
            xlabel: str) -> str:
    """Stacked bars: ``series`` is ``(label, count per day)`` for each group (ward)."""
    fig, ax = plt.subplots(figsize=(7.2, 2.3))
    x = list(range(1, days + 1))
    bottom = [0] * days
    for n, (label, counts) in enumerate(series):
        ax.bar(x, counts, bottom=bottom, width=0.72, label=label,
               color=PALETTE[n % len(PALETTE)], linewidth=0)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_xlim(0.4, days + 0.6)
    ax.set_xticks(x)
    ax.tick_params(axis="x", labelsize=7, length=0)
    ax.set_ylim(0, max([*bottom, 1]) + 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    if series:
        ax.legend(loc="upper left", frameon=False, ncol=min(4, len(series)), fontsize=8)
    return to_svg(fig)


def response_strips(rows: Sequence[tuple[str, Sequence[float], float | None, float | None]],
                    xlabel: str, duration: Any) -> str:
    """One row per step: every alarm as a dot (seconds, log scale), the median as a bar
    and the 90th percentile as a dashed tick. ``duration(s)`` labels the axis."""
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(rows) + 0.8))
    for n, (_label, values, median, p90) in enumerate(rows):
        y = len(rows) - 1 - n
        pts = [max(v, 1.0) for v in values]
        jitter = [((k * 37) % 11 - 5) / 30 for k in range(len(pts))]
        ax.scatter(pts, [y + j for j in jitter], s=16, color=PALETTE[n % len(PALETTE)],
                   alpha=0.75, linewidths=0, zorder=3)
        if median is not None:
            ax.plot([max(median, 1.0)] * 2, [y - 0.32, y + 0.32], color=INK, linewidth=2.2,
                    zorder=4)
        if p90 is not None:
            ax.plot([max(p90, 1.0)] * 2, [y - 0.32, y + 0.32], color=INK, linewidth=1,
                    linestyle=(0, (2, 1.5)), zorder=4)
    ax.set_xscale("log")
    ax.set_xlim(0.8, max([*(max(r[1], default=1) for r in rows), 600]) * 1.6)
    ax.set_xticks([t for t in TICKS_S if t <= ax.get_xlim()[1]])
    ax.set_xticklabels([("≤ " if t == 1 else "") + duration(t) for t in TICKS_S
                        if t <= ax.get_xlim()[1]])
    ax.minorticks_off()
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in reversed(rows)])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(xlabel)
    return to_svg(fig)


def drill_calendar(year: int, month: int, days: int,
                   rows: Sequence[tuple[str, dict[int, bool]]], ok_label: str,
                   noack_label: str) -> str:
    """Wards down, days across: a filled square for each day with a drill (green when
    the police acknowledged it, amber when not); weekends shaded."""
    fig, ax = plt.subplots(figsize=(7.2, 0.42 * max(len(rows), 1) + 0.9))
    for d in range(1, days + 1):
        if date(year, month, d).weekday() >= 5:
            ax.axvspan(d - 0.5, d + 0.5, color="#f1f3f6", zorder=0, linewidth=0)
    for n, (_label, marks) in enumerate(rows):
        y = len(rows) - 1 - n
        ax.scatter(range(1, days + 1), [y] * days, s=28, marker="s", facecolors="none",
                   edgecolors=GRID, linewidths=0.8, zorder=2)
        for day, acked in sorted(marks.items()):
            ax.scatter([day], [y], s=70, marker="s", color=OK_GREEN if acked else WARN_AMBER,
                       zorder=3)
    ax.set_xlim(0.4, days + 0.6)
    ax.set_xticks(range(1, days + 1))
    ax.tick_params(axis="x", labelsize=7, length=0)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in reversed(rows)])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.scatter([], [], s=50, marker="s", color=OK_GREEN, label=ok_label)
    ax.scatter([], [], s=50, marker="s", color=WARN_AMBER, label=noack_label)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False,
              fontsize=8)
    return to_svg(fig)
