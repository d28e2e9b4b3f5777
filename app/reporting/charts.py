"""Accessible SVG charts, drawn on the server (no script, no inline style: the pages' content security
policy allows neither): a horizontal bar chart and a trend line chart.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and described by a ``<desc>`` that states
every value, so a screen reader hears the figures; the page also shows the same numbers in a table beside
it. Colours are GOV.UK Frontend's, with text contrast above 4.5:1; series differ by line pattern and marker
shape as well as colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BLUE = "#1d70b8"
TEXT = "#0b0c0c"
GREY = "#505a5f"
SERIES = (("#1d70b8", ""), ("#00703c", "6 3"), ("#d4351c", "2 3"), ("#4c2c92", "8 3 2 3"))
"""(colour, dash pattern) of each trend series."""
LABEL_WIDTH = 340
BAR_WIDTH = 300
ROW = 24


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def bar_chart(chart_id: str, title: str, rows: Sequence[tuple[str, int]], unit: str = "") -> Markup:
    """Horizontal bars, one per (label, value), labelled with their value."""
    top = max([v for _, v in rows] + [1])
    height = ROW * max(len(rows), 1) + 8
    width = LABEL_WIDTH + BAR_WIDTH + 60
    described = "; ".join(f"{label}: {value}{unit}" for label, value in rows) or "no figures"
    parts = [
        f'<svg class="app-chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(described)}</desc>',
    ]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * ROW
        length = round(BAR_WIDTH * value / top)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end" font-size="14" fill="{TEXT}" '
            f'font-family="Arial, sans-serif">{escape(_cut(label, 40))}</text>'
        )
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" height="{ROW - 8}" fill="{BLUE}"/>'
        )
        parts.append(
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 16}" font-size="14" fill="{TEXT}" '
            f'font-family="Arial, sans-serif">{value}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    chart_id: str, title: str, periods: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]
) -> Markup:
    """One line per (name, values over ``periods``), with a legend and axis labels."""
    width, height = 720, 260
    left, right, top_pad, bottom = 48, 40, 16, 56
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = max([v for _, values in series for v in values] + [1])
    step = plot_w / max(len(periods) - 1, 1)
    described = "; ".join(
        f"{name}: " + ", ".join(f"{p} {v}" for p, v in zip(periods, values, strict=True))
        for name, values in series
    )
    parts = [
        f'<svg class="app-chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(described)}</desc>',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
        f'stroke="{GREY}"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="{GREY}"/>',
    ]
    for tick in (0, top // 2, top):
        y = top_pad + plot_h - plot_h * tick / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 5:.1f}" text-anchor="end" font-size="13" fill="{TEXT}" '
            f'font-family="Arial, sans-serif">{tick}</text>'
        )
    for i, period in enumerate(periods):
        x = left + i * step
        parts.append(
            f'<text x="{x:.1f}" y="{top_pad + plot_h + 18}" text-anchor="middle" font-size="13" '
            f'fill="{TEXT}" font-family="Arial, sans-serif">{escape(period)}</text>'
        )
    for n, (name, values) in enumerate(series):
        colour, dash = SERIES[n % len(SERIES)]
        points = " ".join(
            f"{left + i * step:.1f},{top_pad + plot_h - plot_h * v / top:.1f}" for i, v in enumerate(values)
        )
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="3"{dashed}/>')
        for i, v in enumerate(values):
            x, y = left + i * step, top_pad + plot_h - plot_h * v / top
            if n % 2:
                parts.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>')
            else:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        lx = left + n * 150
        ly = height - 14
        parts.append(
            f'<line x1="{lx}" y1="{ly - 5}" x2="{lx + 28}" y2="{ly - 5}" stroke="{colour}" stroke-width="3"'
            f"{dashed}/>"
        )
        parts.append(
            f'<text x="{lx + 34}" y="{ly}" font-size="13" fill="{TEXT}" font-family="Arial, sans-serif">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
