"""The row loop every price and payout CSV shares: skip blank rows, refuse ragged ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from controller.errors import Problem


def records(rows: Sequence[Sequence[str]], header: Sequence[str], problems: list[Problem]
            ) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) for each data row; a row with the wrong number of
    fields is recorded in `problems` (naming its line) and skipped."""
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append(Problem(f"row {line}", f"has {len(row)} fields, the header has "
                                                   f"{len(header)}"))
            continue
        yield line, dict(zip(header, row, strict=True))


def aware_time(text: str) -> datetime | str:
    """An ISO 8601 time with its UTC offset, or the reason it is not one."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        return f"not an ISO 8601 time: {text.strip()!r}"
    if t.utcoffset() is None:
        return f"time {text.strip()!r} has no UTC offset (write Z or +01:00)"
    return t
