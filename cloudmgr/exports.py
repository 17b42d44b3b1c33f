"""Every CSV and XLSX file cloudmgr writes for people to open goes through here.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula: a department or application name typed as
``=HYPERLINK("http://…")`` would run in finance's Excel (CSV/formula injection, OWASP).  Text
cells that start so are prefixed with a single quote, which spreadsheets show as text; numbers
stay numbers (a negative amount is a number, not text, and is written as it is).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """``value`` safe for a spreadsheet cell: text that a spreadsheet would read as a formula
    gets a leading single quote; anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document of ``header`` and ``rows``, every text cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return out.getvalue()


def xlsx_row(values: Sequence[object]) -> list[Any]:
    """One row for ``openpyxl``'s ``sheet.append``: text neutralised (openpyxl itself stores a
    string starting with ``=`` as a formula), decimals as numbers."""
    return [float(v) if isinstance(v, Decimal) else neutralise(v) for v in values]
