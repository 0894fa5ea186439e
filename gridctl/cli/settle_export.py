"""Writing the per-period export (``gridctl settle export``) as CSV or Parquet, atomically.

The rows and their types come from :mod:`gridctl.settlement.export`; this module only writes
them: to a sibling ``.partial`` file first, renamed over the target when complete, so a failed
or interrupted export never leaves a half file under the name a retailer's job picks up.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from gridctl.settlement.export import PeriodMemberRow, arrow_table, csv_cells, csv_header

EXPORT_FORMATS = ("csv", "parquet")
STDOUT = Path("-")


def write_rows(rows: Sequence[PeriodMemberRow], fmt: str, out: Path, metadata: dict[str, str]) -> None:
    """Write ``rows`` to ``out`` as ``fmt`` (``csv`` or ``parquet``); ``-`` is stdout (CSV only).

    CSV: UTF-8 without BOM, a header row, RFC 4180 quoting and line ends. Parquet: the Arrow
    schema of :func:`gridctl.settlement.export.arrow_schema` with ``metadata`` in the file.

    Raises
    ------
    OSError
        The file cannot be written (nothing is left under ``out`` then).
    """
    if out == STDOUT:
        _write_csv(rows, sys.stdout)
        return
    with _atomic(out) as partial:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(arrow_table(rows, metadata), partial)
        else:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                _write_csv(rows, handle)


def _write_csv(rows: Sequence[PeriodMemberRow], handle: IO[str]) -> None:
    writer = csv.writer(handle)
    writer.writerow(csv_header())
    writer.writerows(csv_cells(row) for row in rows)


@contextlib.contextmanager
def _atomic(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        yield partial
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
