"""The ledger's documents as PDF: the Intune-shaped table and a subject's right-of-access export.

Its own module, imported by russet/apple/documents.py only when a PDF is made: fpdf2 (pure
Python, maintained, no system libraries) costs ~22 MB of memory that a server worker serving
devices never needs. Its core fonts speak Latin-1, so other characters are replaced by "?" in
the PDF (the JSON export keeps them).
"""

from __future__ import annotations

from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.documents import COLOURS, cell_text
from russet.apple.reference import SERVICE_LABELS
from russet.apple.report import TABLE_COLUMNS


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
    rows = [[cell_text(r, key) for key, _ in TABLE_COLUMNS] + [r["note"]] for r in report["rows"]]
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
