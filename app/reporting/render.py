"""A period's report as HTML (a page body for the web app, or a whole document), CSV and PDF.

The HTML shows each breakdown as an accessible SVG chart (``app.reporting.charts``) with its numbers in a
table. The CSV has one line per figure: section, label, value. The PDF (fpdf2, pure Python; its built-in
Helvetica, so nothing is fetched at run time) draws the same bar charts and tables for printing the annual
report; characters Helvetica lacks are replaced.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from activities.working_days import long_date
from app.reporting import charts
from app.reporting.figures import Count, Report

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True
)
_ENV.filters["day"] = long_date


def _days(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:g} working day{'' if value == 1 else 's'}"


def summary(r: Report) -> list[tuple[str, str]]:
    """The headline figures, labelled, in the order every format shows them."""
    return [
        ("Alerts raised", str(r.raised)),
        ("Collective alerts raised", str(r.collective_alerts)),
        ("Resolved", str(r.resolved)),
        ("Median time to resolution", _days(r.median_working_days)),
        ("90th percentile time to resolution", _days(r.p90_working_days)),
        (
            "Resolved within the stage timescales",
            f"{r.resolved_within_stage_timescales} ({r.share(r.resolved_within_stage_timescales)})",
        ),
        (
            "Resolved within the total limit",
            f"{r.resolved_within_total_limit} ({r.share(r.resolved_within_total_limit)})",
        ),
        ("Escalated to the next stage", str(r.escalated)),
        ("Stages bypassed", str(r.bypassed)),
        ("Extensions approved", str(r.extended)),
        ("Extensions declined", str(r.extensions_declined)),
        ("Referred to CAFCASS", str(r.referred_to_cafcass)),
        ("Withdrawn", str(r.withdrawn)),
        ("Every stage exhausted", str(r.exhausted)),
        ("Stage deadlines passed", str(r.stage_deadlines_passed)),
        ("Breaches of the total limit", str(r.breaches)),
        ("Compliments (good practice notes)", str(r.compliments)),
        ("Outstanding at the end of the period", str(r.outstanding_at_end)),
        ("Median age of those outstanding", _days(r.outstanding_median_age)),
        ("Oldest outstanding", _days(r.outstanding_oldest_age)),
    ]


def _bars(chart_id: str, title: str, rows: list[Count]) -> Markup:
    return charts.bar_chart(chart_id, title, [(c.label, c.count) for c in rows])


def trend_chart(r: Report) -> Markup:
    periods = [t.period for t in r.trend]
    return charts.line_chart(
        "trend-chart",
        f"Trend over the {len(periods)} periods to {r.period}",
        periods,
        [
            ("Raised", [t.raised for t in r.trend]),
            ("Resolved", [t.resolved for t in r.trend]),
            ("Breaches", [t.breaches for t in r.trend]),
            ("Outstanding at end", [t.outstanding_at_end for t in r.trend]),
        ],
    )


def report_body(r: Report) -> Markup:
    """The report's sections for a page whose heading names it (the web app's page)."""
    html = _ENV.get_template("report_body.html").render(
        r=r, summary=summary(r), chart=_bars_from_rows, trend_chart=trend_chart(r)
    )
    return Markup(html)


def _bars_from_rows(chart_id: str, title: str, rows: list[Count]) -> Markup:
    return _bars(chart_id, title, rows)


def report_html(r: Report) -> str:
    """The report as a whole HTML document (``escalate report --format html``)."""
    return _ENV.get_template("report_document.html").render(r=r, body=report_body(r))


def report_csv(r: Report) -> str:
    """One line per figure: section, label, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "label", "value"])
    writer.writerow(["report", "title", r.title])
    writer.writerow(["report", "period", r.period_key])
    writer.writerow(["report", "first day", r.first_day.isoformat()])
    writer.writerow(["report", "last day", r.last_day.isoformat()])
    for label, value in _raw_summary(r):
        writer.writerow(["summary", label, value])
    for section, rows in _sections(r):
        for c in rows:
            writer.writerow([section, c.label, c.count])
    for t in r.trend:
        for name in ("raised", "resolved", "breaches", "outstanding_at_end"):
            writer.writerow([f"trend {name.replace('_', ' ')}", t.period, getattr(t, name)])
    return out.getvalue()


def _raw_summary(r: Report) -> list[tuple[str, object]]:
    """The summary's figures as plain numbers (empty when there is none), for machines."""

    def plain(value: float | int | None) -> object:
        return "" if value is None else value

    return [
        ("raised", r.raised),
        ("collective alerts", r.collective_alerts),
        ("resolved", r.resolved),
        ("median working days to resolution", plain(r.median_working_days)),
        ("90th percentile working days to resolution", plain(r.p90_working_days)),
        ("resolved within the stage timescales", r.resolved_within_stage_timescales),
        ("resolved within the total limit", r.resolved_within_total_limit),
        ("escalated", r.escalated),
        ("bypassed", r.bypassed),
        ("extensions approved", r.extended),
        ("extensions declined", r.extensions_declined),
        ("referred to CAFCASS", r.referred_to_cafcass),
        ("withdrawn", r.withdrawn),
        ("exhausted", r.exhausted),
        ("stage deadlines passed", r.stage_deadlines_passed),
        ("breaches", r.breaches),
        ("compliments", r.compliments),
        ("outstanding at the end", r.outstanding_at_end),
        ("median age of those outstanding (working days)", plain(r.outstanding_median_age)),
        ("oldest outstanding (working days)", plain(r.outstanding_oldest_age)),
    ]


def _sections(r: Report) -> list[tuple[str, list[Count]]]:
    return [
        ("raised by category", r.raised_by_category),
        ("raised by track", r.raised_by_track),
        ("raised by team", r.raised_by_team),
        ("raised by child status", r.raised_by_child_status),
        ("resolved by stage", r.resolved_by_stage),
        ("outstanding by age", r.outstanding_by_age),
    ]


# --- PDF ---------------------------------------------------------------------------------------------------


_PLAIN = {
    ord(k): v for k, v in {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"'}.items()
}
_PLAIN.update({ord("\u201d"): '"', ord("\u2026"): "..."})


def _latin(text: str) -> str:
    """Helvetica covers Latin-1: typographic marks become their plain forms, anything else a '?'."""
    plain = text.translate(_PLAIN)
    return plain.encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.report_title = title
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_lang("en-GB")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("helvetica", size=8)
        self.cell(0, 6, _latin(f"{self.report_title} - page {self.page_no()}"), align="C")


def _pdf_bars(pdf: _Pdf, heading: str, rows: list[Count]) -> None:
    pdf.set_font("helvetica", style="B", size=12)
    pdf.ln(3)
    pdf.multi_cell(0, 7, _latin(heading), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    if not rows:
        pdf.cell(0, 6, "None in this period.", new_x="LMARGIN", new_y="NEXT")
        return
    top = max(c.count for c in rows) or 1
    label_w, bar_w = 95.0, 70.0
    for c in rows:
        if pdf.will_page_break(6):
            pdf.add_page()
        y = pdf.get_y()
        x = pdf.l_margin
        label = _latin(c.label if len(c.label) <= 62 else c.label[:59] + "...")
        pdf.set_xy(x, y)
        pdf.cell(label_w, 6, label)
        pdf.set_fill_color(29, 112, 184)
        width = max(bar_w * c.count / top, 0.2)
        pdf.rect(x + label_w, y + 1, width, 4, style="F")
        pdf.set_xy(x + label_w + width + 2, y)
        pdf.cell(15, 6, str(c.count))
        pdf.set_xy(x, y + 6)


def report_pdf(r: Report) -> bytes:
    """The report as a PDF: summary table, bar charts with their numbers, and the trend table."""
    pdf = _Pdf(f"{r.title}: {r.period}")
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=16)
    pdf.multi_cell(0, 9, _latin(f"{r.title}: {r.period}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    where = f": {', '.join(r.authorities)}" if r.authorities else ""
    pdf.multi_cell(
        0,
        6,
        _latin(f"{long_date(r.first_day)} to {long_date(r.last_day)}{where}."),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    with pdf.table(col_widths=(120, 60), text_align=("LEFT", "RIGHT"), first_row_as_headings=True) as table:
        table.row(["Figure", "Value"])
        for label, value in summary(r):
            table.row([_latin(label), _latin(value)])
    for heading, rows in (
        ("Alerts raised by category", r.raised_by_category),
        ("Alerts raised by track", r.raised_by_track),
        ("Alerts raised by team", r.raised_by_team),
        ("Alerts raised by the child's status", r.raised_by_child_status),
        ("Resolved at each stage", r.resolved_by_stage),
        ("Outstanding at the end of the period, by age", r.outstanding_by_age),
    ):
        _pdf_bars(pdf, heading, rows)
    pdf.ln(4)
    pdf.set_font("helvetica", style="B", size=12)
    pdf.cell(0, 7, "Trend against the previous periods", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    with pdf.table(first_row_as_headings=True, text_align="LEFT") as table:
        table.row(["Period", "Raised", "Resolved", "Breaches", "Outstanding at the end"])
        for t in r.trend:
            table.row([t.period, str(t.raised), str(t.resolved), str(t.breaches), str(t.outstanding_at_end)])
    return bytes(pdf.output())
