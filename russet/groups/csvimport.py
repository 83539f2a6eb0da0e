"""Reading a CSV of device identifiers for a static group, with each bad line named.

The first column of each row is a UDID (or EnrollmentID) or a serial number; other columns are
ignored, so an export from a spreadsheet or from Apple Business Manager can be used as it is. A
first row whose first cell is a column title (udid, serial, serial_number, identifier, device) is
skipped, as are empty rows and rows starting with `#`.
"""

from __future__ import annotations

import csv
import io

from russet.kernel.errors import Invalid, TooLarge

MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_IDENTIFIER_CHARS = 300  # the longest enrollment id
MAX_ERRORS_SHOWN = 20
HEADERS = {
    "udid",
    "serial",
    "serial_number",
    "serialnumber",
    "serial number",
    "identifier",
    "device",
    "device_id",
}


def bad_lines(errors: list[str]) -> Invalid:
    """One Invalid listing the bad lines (the first MAX_ERRORS_SHOWN of them)."""
    shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
    more = f"; and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
    return Invalid(f"CSV: {len(errors)} bad line(s), nothing imported: {shown}{more}")


def read_identifiers(data: bytes) -> list[tuple[int, str]]:
    """(line number, identifier) for every device row; raises Invalid naming each bad line, or
    TooLarge past MAX_CSV_BYTES or MAX_CSV_ROWS."""
    if len(data) > MAX_CSV_BYTES:
        raise TooLarge(f"CSV: larger than {MAX_CSV_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"CSV: not UTF-8 text (byte {exc.start + 1})") from None
    rows: list[tuple[int, str]] = []
    errors: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise bad_lines([f"line {reader.line_num}: {exc}"]) from None
        line = reader.line_num
        cell = row[0].strip() if row else ""
        if not any(c.strip() for c in row) or cell.startswith("#"):
            continue
        if first and cell.casefold() in HEADERS:
            first = False
            continue
        first = False
        if not cell:
            errors.append(f"line {line}: no identifier in the first column")
        elif "\x00" in cell:
            errors.append(f"line {line}: NUL characters are not allowed")
        elif len(cell) > MAX_IDENTIFIER_CHARS:
            errors.append(f"line {line}: identifier longer than {MAX_IDENTIFIER_CHARS} characters")
        else:
            rows.append((line, cell))
        if len(rows) + len(errors) > MAX_CSV_ROWS:
            raise TooLarge(f"CSV: more than {MAX_CSV_ROWS} rows")
    if errors:
        raise bad_lines(errors)
    if not rows:
        raise Invalid("CSV: no device identifiers in it")
    return rows
