"""Reading back the tables the analysis tools print (prettytable's plain text or Markdown)."""

from __future__ import annotations

from typing import List, Tuple


def table_cells(text: str, first_header: str) -> Tuple[List[str], List[List[str]]]:
    """The header and the rows, as stripped cells, of the table in ``text`` whose first column
    is ``first_header``; rule lines (``+---+``, ``| :-- |``) are skipped."""
    lines = text.splitlines()

    def cells(line: str) -> List[str]:
        return [c.strip() for c in line.split("|")[1:-1]]

    start = next(i for i, ln in enumerate(lines) if cells(ln)[:1] == [first_header])
    rows = []
    for line in lines[start + 1 :]:
        if not line.startswith(("|", "+")):
            break
        if not set(line) <= set("+-|: "):
            rows.append(cells(line))
    return cells(lines[start]), rows
