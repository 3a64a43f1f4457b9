"""The summary report as files: CSV (UTF-8 with a byte-order mark, so Excel opens Turkish text
right), XLSX (openpyxl: the headline figures, one sheet per dimension with its bar chart, SLA
compliance by unit with its chart) and PDF (fpdf2, with the DejaVu fonts vendored beside this
module so Turkish letters print without a system font: the headline, then each dimension's
leading rows as bars). Pure: the summary in, bytes out.

openpyxl and fpdf2 are imported where a file is made, not with the module: together they are
half of reporting's start-up (0.57 of 1.1 s of imports on the 2-core machine), and a process
that never makes a file (a second reporting process, every test that starts one) never needs
them."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart

# dimension → its heading (Turkish first: the reports go to municipal staff)
DIMENSIONS = {
    "by_category": "Konu / Category",
    "by_channel": "Kanal / Channel",
    "by_district": "İlçe / District",
    "by_neighbourhood": "Mahalle / Neighbourhood",
    "by_unit": "Birim / Unit",
    "by_status": "Durum / Status",
    "by_level": "Yükseltme düzeyi / Escalation level",
    "by_read_sla": "Okunma süresi / Read deadline",
    "by_resolve_sla": "Çözüm süresi / Resolve deadline",
    "by_satisfaction": "Memnuniyet / Satisfaction",
    "by_reopen_count": "Yeniden açılma / Times reopened",
    "by_caller_type": "Başvuran / Caller",
    "by_tier": "Yönlendirme / Routing tier",
}
# the headline figures, in the order the reports show them
HEADLINE = (
    ("total", "Toplam başvuru / Applications"),
    ("concluded", "Sonuçlanan / Concluded"),
    ("open", "Açık / Open"),
    ("overdue", "Süresi geçen / Overdue"),
    ("referred", "Başka kuruma yönlendirilen / Referred"),
    ("escalated", "Üst makama çıkan / Escalated"),
    ("resolution_hours_median", "Çözüm süresi medyanı, saat / Resolution median, hours"),
    ("resolution_hours_p90", "Çözüm süresi %90, saat / Resolution p90, hours"),
    ("satisfaction_average", "Memnuniyet ortalaması (1-5) / Satisfaction average"),
)
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "pdf": "application/pdf"}
CHART_ROWS = 15  # a chart shows a dimension's leading rows; the sheet keeps them all
PDF_ROWS = 10
FONTS = Path(__file__).parent / "fonts"


def _rows(summary: dict) -> list[tuple[str, str, str, int]]:
    """`(dimension, key, name, count)` for every count of the summary."""
    rows = []
    for dimension in DIMENSIONS:
        for row in summary[dimension]:
            key = "" if row["key"] is None else str(row["key"])
            rows.append((dimension, key, row.get("name") or "", row["count"]))
    return rows


def to_csv(summary: dict) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["from", "to", "timezone", "total"])
    writer.writerow([summary["first"].isoformat(), summary["last"].isoformat(),
                     summary["timezone"], summary["total"]])
    writer.writerow([])
    writer.writerow(["dimension", "key", "name", "count"])
    writer.writerows(_rows(summary))
    return out.getvalue().encode("utf-8-sig")


def _label(row: dict) -> str:
    key = "—" if row["key"] is None else str(row["key"])
    return f"{row['name']} ({key})" if row.get("name") else key


def _bar_chart(title: str, sheet, rows: int, value_columns: tuple[int, ...]) -> BarChart:
    from openpyxl.chart import BarChart, Reference

    chart = BarChart()
    chart.type = "bar"  # horizontal: long Turkish names stay readable
    chart.title = title
    if len(value_columns) == 1:
        chart.legend = None  # one series: its title is the chart's
    chart.height = max(7.5, 0.5 * rows + 2)
    chart.width = 18
    for column in value_columns:
        chart.add_data(Reference(sheet, min_col=column, min_row=1, max_row=rows + 1),
                       titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=4, min_row=2, max_row=rows + 1))
    chart.y_axis.majorGridlines = None
    chart.x_axis.scaling.orientation = "maxMin"  # the largest on top, as the rows are
    return chart


def to_xlsx(summary: dict) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    totals = book.active
    totals.title = "Özet"
    totals.append(["Başlangıç / From", summary["first"].isoformat()])
    totals.append(["Bitiş / To", summary["last"].isoformat()])
    totals.append(["Saat dilimi / Timezone", summary["timezone"]])
    for field, heading in HEADLINE:
        totals.append([heading, summary.get(field)])
    totals.column_dimensions["A"].width = 52
    for dimension, heading in DIMENSIONS.items():
        sheet = book.create_sheet(dimension.removeprefix("by_")[:31])
        sheet.append([heading, "Ad / Name", "Sayı / Count", "Grafik etiketi / Chart label"])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in summary[dimension]:
            key = "—" if row["key"] is None else str(row["key"])
            sheet.append([key, row.get("name") or "", row["count"], _label(row)])
        sheet.column_dimensions["A"].width = 40
        if summary[dimension]:
            shown = min(len(summary[dimension]), CHART_ROWS)
            sheet.add_chart(_bar_chart(heading, sheet, shown, (3,)), "F2")
    _sla_sheet(book, summary.get("sla_by_unit") or [])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sla_sheet(book: Workbook, rows: list[dict]) -> None:
    """SLA compliance by unit: met and breached per deadline, the share met, and a chart."""
    from openpyxl.styles import Font

    sheet = book.create_sheet("sla_unit")
    sheet.append(["Birim / Unit", "Ad / Name", "Okunma uyumu / Read met %",
                  "Grafik etiketi / Chart label", "Çözüm uyumu / Resolve met %",
                  "Okunma: süresinde / Read met", "Okunma: geçti / Read breached",
                  "Çözüm: süresinde / Resolve met", "Çözüm: geçti / Resolve breached"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)

    def percent(share: float | None) -> float | None:
        return None if share is None else round(100 * share, 1)

    for row in rows:
        sheet.append([str(row["key"]), row.get("name") or "", percent(row["read_compliance"]),
                      _label(row), percent(row["resolve_compliance"]), row["read_met"],
                      row["read_breached"], row["resolve_met"], row["resolve_breached"]])
    sheet.column_dimensions["A"].width = 40
    if rows:
        shown = min(len(rows), CHART_ROWS)
        sheet.add_chart(_bar_chart("SLA uyumu, % / SLA met, %", sheet, shown, (3, 5)), "K2")


def to_pdf(summary: dict) -> bytes:
    """A printable report: the headline figures, then each dimension's leading rows, each with
    a bar to scale of the dimension's largest."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 9, "Açık Kapı — Başvuru raporu / Applications report",
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(0, 6, f"{summary['first'].isoformat()} – {summary['last'].isoformat()} "
                   f"({summary['timezone']})", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for field, heading in HEADLINE:
        value = summary.get(field)
        pdf.cell(120, 6, heading)
        pdf.cell(0, 6, "—" if value is None else str(value), new_x="LMARGIN", new_y="NEXT")
    sections = [(heading, summary[dimension]) for dimension, heading in DIMENSIONS.items()]
    for heading, rows in sections:
        if not rows:
            continue
        if pdf.get_y() > pdf.h - 60:
            pdf.add_page()
        pdf.ln(4)
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)
        largest = max(row["count"] for row in rows) or 1
        for row in rows[:PDF_ROWS]:
            pdf.cell(75, 5, _label(row)[:48])
            width = 85 * row["count"] / largest
            if width:
                pdf.set_fill_color(54, 118, 170)
                pdf.rect(pdf.get_x(), pdf.get_y() + 1, width, 3, style="F")
            pdf.cell(90, 5, "")
            pdf.cell(0, 5, str(row["count"]), align="R", new_x="LMARGIN", new_y="NEXT")
        if len(rows) > PDF_ROWS:
            pdf.cell(0, 5, f"… +{len(rows) - PDF_ROWS}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


RENDERERS = {"csv": to_csv, "xlsx": to_xlsx, "pdf": to_pdf}


def render(summary: dict, fmt: str) -> bytes:
    return RENDERERS[fmt](summary)
