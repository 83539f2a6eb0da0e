"""The ledger's documents for people: the Intune-shaped table as text, CSV and PDF, its chart as
inline SVG, and a subject's right-of-access export as PDF.

PDF with fpdf2 (pure Python, maintained, no system libraries); its core fonts speak Latin-1, so
other characters are replaced by "?" in the PDF (the JSON export keeps them).
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.reference import SERVICE_LABELS
from russet.apple.report import TABLE_COLUMNS

# One colour per service, for the chart (SVG and PDF alike).
COLOURS = {"apns": "#b5523b", "abm": "#3b6fb5", "vpp": "#4f9a4f", "activationlock": "#8a5db5"}


def _cell(row: dict[str, Any], key: str) -> str:
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
            [_cell(row, key) for key, _ in TABLE_COLUMNS] + [row["note"], " ".join(row["russet_fields"])]
        )
    return out.getvalue()


def table_text(report: dict[str, Any], width: int = 48) -> str:
    """A plain-text rendering (used-for cut to `width`), then the summary and retention."""
    shown = [
        {
            key: (_cell(r, key) if key != "used_for" else _cut(r["used_for"], width))
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


def _latin(text: Any) -> str:
    return str(text).replace("…", "...").replace("—", "-").encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self._title = title
        self.set_auto_page_break(auto=True, margin=12)
        self.set_title(_latin(title))
        self.set_creator("Russet")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, _latin(f"{self._title} - page {self.page_no()}"), align="C")


def _heading(pdf: _Pdf, text: str, size: int = 14) -> None:
    pdf.set_font("Helvetica", style="B", size=size)
    pdf.multi_cell(0, 7, _latin(text), new_x="LMARGIN", new_y="NEXT")


def _para(pdf: _Pdf, text: str, size: int = 9) -> None:
    pdf.set_font("Helvetica", size=size)
    pdf.multi_cell(0, 4.5, _latin(text), new_x="LMARGIN", new_y="NEXT")


def _grid(pdf: _Pdf, header: list[str], rows: list[list[str]], widths: tuple[float, ...]) -> None:
    pdf.set_font("Helvetica", size=7)
    with pdf.table(
        col_widths=widths,
        headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
        line_height=3.6,
        text_align="LEFT",
    ) as grid:
        line = grid.row()
        for title in header:
            line.cell(_latin(title))
        for r in rows:
            line = grid.row()
            for value in r:
                line.cell(_latin(value))


def _bars(pdf: _Pdf, timeline: list[dict[str, Any]]) -> None:
    services = list(SERVICE_NAMES)
    x0, y0, w, h = pdf.l_margin, pdf.get_y() + 2, pdf.epw, 40
    peak = max([sum(d[s] for s in services) for d in timeline] + [1])
    step = w / max(len(timeline), 1)
    for i, day in enumerate(timeline):
        y = y0 + h
        for s in services:
            if not day[s]:
                continue
            bh = h * day[s] / peak
            y -= bh
            colour = COLOURS[s]
            pdf.set_fill_color(int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
            pdf.rect(x0 + i * step, y, max(step * 0.8, 0.3), bh, style="F")
    pdf.set_draw_color(120, 120, 120)
    pdf.line(x0, y0 + h, x0 + w, y0 + h)
    pdf.set_font("Helvetica", size=7)
    pdf.set_xy(x0, y0 + h + 1)
    first, last = (timeline[0]["day"], timeline[-1]["day"]) if timeline else ("", "")
    legend = "   ".join(f"{SERVICE_LABELS[s]}" for s in services)
    pdf.cell(0, 4, _latin(f"{first} to {last}, peak {peak} rows/day. Colours: {legend}"))
    pdf.ln(6)


def table_pdf(report: dict[str, Any]) -> bytes:
    pdf = _Pdf("What Russet tells Apple")
    pdf.add_page()
    _heading(pdf, 'What Russet tells Apple - laid out as "Data Intune sends to Apple"')
    since = report.get("since") or "the beginning of the ledger"
    _para(
        pdf,
        f"Generated {report['generated_at'][:19]} UTC; counts since {since}. "
        f"Reference: {report['reference']}. "
        "Counts are ledger rows (one per field per exchange), detail and kept counts together.",
    )
    _para(pdf, "Differs: " + ", ".join(f"{k} {v}" for k, v in report["summary"].items()))
    _bars(pdf, report["timeline"])
    header = [title for _, title in TABLE_COLUMNS] + ["Note"]
    rows = [[_cell(r, key) for key, _ in TABLE_COLUMNS] + [r["note"]] for r in report["rows"]]
    _grid(pdf, header, rows, (22, 30, 70, 15, 17, 26, 26, 17, 50))
    pdf.ln(3)
    _heading(pdf, "Retention", 11)
    _grid(
        pdf,
        ["Service", "Detail kept", "Detail rows", "Counted rows", "Oldest detail", "Last applied"],
        [
            [
                p["service_name"],
                f"{p['detail_days']} days" if p["detail_days"] is not None else "until pruned",
                str(p["detail_rows"]),
                str(p["counted_rows"]),
                (p["oldest_detail"] or "")[:19],
                (p["applied_at"] or "")[:19],
            ]
            for p in report["retention"]
        ],
        (60, 30, 25, 25, 45, 45),
    )
    return bytes(pdf.output())


def subject_pdf(export: dict[str, Any]) -> bytes:
    pdf = _Pdf(f"Right of access: {export['subject']}")
    pdf.add_page()
    _heading(pdf, f"What Russet exchanged with Apple about {export['subject']}")
    _para(
        pdf,
        f"Generated {export['generated_at'][:19]} UTC. Values are never kept by Russet's ledger (only keyed "
        "fingerprints), so this lists which data were exchanged, when, with which service and why.",
    )
    _heading(pdf, "Identifiers linked to the subject", 11)
    _grid(
        pdf,
        ["Kind", "Identifier", "Known from"],
        [[i["kind"], i["value"], i["source"]] for i in export["identifiers"]],
        (40, 90, 143),
    )
    pdf.ln(2)
    _heading(pdf, "Per service", 11)
    _grid(
        pdf,
        ["Service", "Sent to Apple", "Received from Apple"],
        [[s["service_name"], str(s["sent"]), str(s["received"])] for s in export["services"]]
        or [["(nothing exchanged)", "0", "0"]],
        (120, 60, 60),
    )
    pdf.ln(2)
    _heading(pdf, f"Exchanges ({len(export['exchanges'])})", 11)
    _grid(
        pdf,
        ["When (UTC)", "Service", "Direction", "Data", "Endpoint", "Why", "Status"],
        [
            [
                e["at"][:19].replace("T", " "),
                e["service"],
                e["direction"],
                e["field"],
                e["endpoint"],
                e["purpose"],
                "" if e["status"] is None else str(e["status"]),
            ]
            for e in export["exchanges"]
        ],
        (30, 20, 18, 30, 55, 105, 15),
    )
    return bytes(pdf.output())
