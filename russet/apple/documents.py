"""The ledger's documents for people: the Intune-shaped table as text, CSV and PDF, its chart as
inline SVG, and a subject's right-of-access export as PDF.

The PDFs are drawn by russet/apple/pdf.py, imported when one is made: fpdf2 costs a server
process ~22 MB of memory that serving devices never needs.
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.reference import SERVICE_LABELS
from russet.apple.report import TABLE_COLUMNS

# One colour per service, for the chart (SVG and PDF alike).
COLOURS = {"apns": "#b5523b", "abm": "#3b6fb5", "vpp": "#4f9a4f", "activationlock": "#8a5db5"}


def cell_text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if key in ("first", "last"):
        return str(value)[:19].replace("T", " ")
    return str(value)


def table_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([title for _, title in TABLE_COLUMNS] + ["Note", "Russet fields"])
    for row in report["rows"]:
        writer.writerow(
            [cell_text(row, key) for key, _ in TABLE_COLUMNS] + [row["note"], " ".join(row["russet_fields"])]
        )
    return out.getvalue()


def table_text(report: dict[str, Any], width: int = 48) -> str:
    """A plain-text rendering (used-for cut to `width`), then the summary and retention."""
    shown = [
        {
            key: (cell_text(r, key) if key != "used_for" else _cut(r["used_for"], width))
            for key, _ in TABLE_COLUMNS
        }
        for r in report["rows"]
    ]
    widths = {key: max([len(title)] + [len(r[key]) for r in shown]) for key, title in TABLE_COLUMNS}
    lines = ["  ".join(title.ljust(widths[key]) for key, title in TABLE_COLUMNS).rstrip()]
    lines.append("  ".join("-" * widths[key] for key, _ in TABLE_COLUMNS))
    for r in shown:
        lines.append("  ".join(r[key].ljust(widths[key]) for key, _ in TABLE_COLUMNS).rstrip())
    lines.append("")
    lines.append("differs: " + ", ".join(f"{name} {count}" for name, count in report["summary"].items()))
    lines.append(f"reference: {report['reference']}")
    for p in report["retention"]:
        kept = f"{p['detail_days']} days of detail" if p["detail_days"] is not None else "detail until pruned"
        lines.append(
            f"retention {p['service']}: {kept}; {p['detail_rows']} detail rows, {p['counted_rows']} counted"
        )
    return "\n".join(lines) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def chart_geometry(timeline: list[dict[str, Any]], *, width: int = 760, height: int = 220) -> dict[str, Any]:
    """Stacked bars of exchanges per day and service: rectangles, labels and legend, in SVG
    coordinates (the console's template draws them; `chart_svg` makes a standalone SVG)."""
    services = list(SERVICE_NAMES)
    left, bottom, top = 48, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max([sum(d[s] for s in services) for d in timeline] + [1])
    step = plot_w / max(len(timeline), 1)
    bar = round(max(step * 0.8, 1.0), 1)
    bars, labels = [], []
    for i, day in enumerate(timeline):
        x = round(left + i * step, 1)
        y = float(top + plot_h)
        for s in services:
            n = day[s]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            bars.append(
                {
                    "x": x,
                    "y": round(y, 1),
                    "w": bar,
                    "h": round(h, 1),
                    "fill": COLOURS[s],
                    "title": f"{day['day']} {SERVICE_LABELS[s]}: {n}",
                }
            )
        last = len(timeline) - 1
        if i in (0, last) or (len(timeline) > 10 and i % 7 == 0 and last - i >= 4):
            labels.append({"x": x, "y": top + plot_h + 14, "text": day["day"][5:]})
    legend = [
        {"x": left + 150 * i, "y": height + 6, "fill": COLOURS[s], "text": SERVICE_LABELS[s]}
        for i, s in enumerate(services)
    ]
    return {
        "width": width,
        "height": height + 20,
        "axis": {"x1": left, "x2": left + plot_w, "y": top + plot_h, "top": top + 8, "left": left - 4},
        "peak": peak,
        "bars": bars,
        "labels": labels,
        "legend": legend,
    }


def chart_svg(timeline: list[dict[str, Any]], *, width: int = 760, height: int = 220) -> str:
    """The chart as a standalone SVG document (no script)."""
    g = chart_geometry(timeline, width=width, height=height)
    a = g["axis"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{g["width"]}" height="{g["height"]}" '
        f'viewBox="0 0 {g["width"]} {g["height"]}" role="img" aria-label="Ledger rows per day and service">',
        f'<line x1="{a["x1"]}" y1="{a["y"]}" x2="{a["x2"]}" y2="{a["y"]}" stroke="#888"/>',
        f'<text x="{a["left"]}" y="{a["top"]}" text-anchor="end" font-size="10">{g["peak"]}</text>',
        f'<text x="{a["left"]}" y="{a["y"]}" text-anchor="end" font-size="10">0</text>',
    ]
    for b in g["bars"]:
        parts.append(
            f'<rect x="{b["x"]}" y="{b["y"]}" width="{b["w"]}" height="{b["h"]}" fill="{b["fill"]}">'
            f"<title>{escape(b['title'])}</title></rect>"
        )
    for t in g["labels"]:
        parts.append(f'<text x="{t["x"]}" y="{t["y"]}" font-size="10">{escape(t["text"])}</text>')
    for item in g["legend"]:
        parts.append(f'<rect x="{item["x"]}" y="{item["y"]}" width="10" height="10" fill="{item["fill"]}"/>')
        parts.append(
            f'<text x="{item["x"] + 14}" y="{item["y"] + 9}" font-size="10">{escape(item["text"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- PDF -------------------------------------------------------------------------------------------


def table_pdf(report: dict[str, Any]) -> bytes:
    """The Intune-shaped table as PDF (see russet/apple/pdf.py)."""
    from russet.apple import pdf  # fpdf, ~22 MB, only in a process that makes a PDF

    return pdf.table_pdf(report)


def subject_pdf(export: dict[str, Any]) -> bytes:
    """A subject's right-of-access export as PDF (see russet/apple/pdf.py)."""
    from russet.apple import pdf  # fpdf, ~22 MB, only in a process that makes a PDF

    return pdf.subject_pdf(export)
