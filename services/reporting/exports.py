"""The summary report as files: CSV (UTF-8 with a byte-order mark, so Excel opens Turkish text
right) and XLSX (openpyxl: a sheet of totals, then one sheet per dimension). Pure: the summary
in, bytes out."""
from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font

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
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


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


def to_xlsx(summary: dict) -> bytes:
    book = Workbook()
    totals = book.active
    totals.title = "Özet"
    totals.append(["Başlangıç / From", summary["first"].isoformat()])
    totals.append(["Bitiş / To", summary["last"].isoformat()])
    totals.append(["Saat dilimi / Timezone", summary["timezone"]])
    totals.append(["Toplam başvuru / Applications", summary["total"]])
    for dimension, heading in DIMENSIONS.items():
        sheet = book.create_sheet(dimension.removeprefix("by_")[:31])
        sheet.append([heading, "Ad / Name", "Sayı / Count"])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in summary[dimension]:
            key = "—" if row["key"] is None else str(row["key"])
            sheet.append([key, row.get("name") or "", row["count"]])
        sheet.column_dimensions["A"].width = 40
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(summary: dict, fmt: str) -> bytes:
    return to_csv(summary) if fmt == "csv" else to_xlsx(summary)
