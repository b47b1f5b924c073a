"""Writing a DB-API cursor's result as JSON Lines, chunk by chunk.

This module does not import Airflow: the SQL extract operator hands it an open cursor.
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import IO, Any


def write_jsonl(cursor: Any, out: IO[bytes], chunk_size: int = 1000) -> int:
    """Write every remaining row of ``cursor`` as a JSON object keyed by column name.

    Memory stays flat: rows are fetched ``chunk_size`` at a time.

    :return: the number of rows written.
    """
    columns = [str(d[0]) for d in cursor.description or ()]
    count = 0
    while rows := cursor.fetchmany(chunk_size):
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            out.write(json.dumps(record, ensure_ascii=False, default=_plain).encode("utf-8") + b"\n")
        count += len(rows)
    return count


def _plain(value: Any) -> Any:
    """JSON for the types databases return beyond JSON's own."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
