"""Read and validate a trace CSV (the `hearth sim` input contract in DESIGN.md).

The reader is strict because a trace drives money and safety figures: a silently skipped
hour or a naive local time would make a simulation look right and be wrong. Every problem
is reported with the line number in the file (header = line 1) and the column, up to
`MAX_PROBLEMS` of them, so a user can fix a file in one pass.

It is also fast: numbers are converted column-wise by numpy, and each time stamp goes
through `datetime.fromisoformat` (C code, ~0.25 µs a stamp), so a year of 1-minute rows
reads in about a second.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.errors import InputError, Problem

FloatArray = npt.NDArray[np.float64]

REQUIRED_COLUMNS = ("time", "pv_w", "load_w")
NUMBER_COLUMNS = (
    "pv_w",
    "load_w",
    "heat_demand_w",
    "outdoor_c",
    "import_price",
    "export_price",
    "hashprice",
    "dr_limit_w",
    "hashvalue_sats_per_th_day",
    "btc_price",
)
KNOWN_COLUMNS = ("time", *NUMBER_COLUMNS)
NON_NEGATIVE = frozenset({"pv_w", "load_w", "heat_demand_w", "dr_limit_w", "hashprice",
                          "hashvalue_sats_per_th_day"})
POSITIVE = frozenset({"btc_price"})
EMPTY_IS_NAN = frozenset({"dr_limit_w"})
"""Columns where an empty cell is meaningful: no demand-response cap in that step."""
MIN_STEP_S = 1.0
MAX_PROBLEMS = 20
_NOT_GIVEN: FloatArray = np.empty(0, dtype=np.float64)
"""Default of the bitcoin arrays a caller may leave out: NaN (the site's `[bitcoin]`)."""


@dataclass(frozen=True, eq=False)
class Trace:
    """A validated trace: equal-length float64 arrays on a regular UTC time grid.

    Row i covers ``[time_s[i], time_s[i] + step_s)``. Arrays are read-only so a trace can
    be shared between simulations without copies. ``columns`` names the columns the file
    actually had; the others were filled from defaults (see `read_trace`).
    """

    time_s: FloatArray
    pv_w: FloatArray
    load_w: FloatArray
    heat_demand_w: FloatArray
    outdoor_c: FloatArray
    import_price: FloatArray
    export_price: FloatArray
    hashprice: FloatArray
    dr_limit_w: FloatArray
    step_s: float
    source: str = "<trace>"
    columns: frozenset[str] = field(default_factory=frozenset)
    # Bitcoin terms per row (issue 16); NaN (or left out) = the site's `[bitcoin]` terms.
    hashvalue_sats_per_th_day: FloatArray = field(default_factory=lambda: _NOT_GIVEN)
    btc_price: FloatArray = field(default_factory=lambda: _NOT_GIVEN)

    def __post_init__(self) -> None:
        n = len(self.time_s)
        for name in ("hashvalue_sats_per_th_day", "btc_price"):
            if getattr(self, name) is _NOT_GIVEN:
                object.__setattr__(self, name, np.full(n, np.nan, dtype=np.float64))
        for name in ("time_s", *NUMBER_COLUMNS):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or arr.shape != (n,):
                raise ValueError(f"Trace.{name} must be a float64 array of length {n}")
            arr.setflags(write=False)
        if self.step_s < MIN_STEP_S:
            raise ValueError(f"Trace.step_s must be at least {MIN_STEP_S} s")

    def __len__(self) -> int:
        return len(self.time_s)

    @property
    def start_s(self) -> float:
        return float(self.time_s[0])

    @property
    def end_s(self) -> float:
        """End of the last row's interval (exclusive)."""
        return float(self.time_s[-1]) + self.step_s

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def energy_kwh(self, power_w: FloatArray) -> float:
        """Energy of a power column held over each step (NaN counts as zero)."""
        return float(np.nansum(power_w)) * self.step_s / 3.6e6

    def times_iso(self) -> list[str]:
        """Row times as ISO 8601 UTC strings with a Z (seconds, or µs if fractional)."""
        return iso_utc(self.time_s)


def iso_utc(time_s: FloatArray) -> list[str]:
    """Format UTC epoch seconds as ISO 8601 with Z; whole seconds unless fractional."""
    us = np.round(np.asarray(time_s, dtype=np.float64) * 1e6).astype(np.int64)
    unit = "s" if np.all(us % 1_000_000 == 0) else "us"
    stamps = np.datetime_as_string(us.astype("datetime64[us]").astype(f"datetime64[{unit}]"))
    return [f"{s}Z" for s in stamps.tolist()]


class Problems:
    """Collects problems in file order and caps how many are reported."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[int, int, Problem]] = []

    def add(self, line: int, col: int, where: str, reason: str) -> None:
        self.items.append((line, col, Problem(where, reason)))

    def cell(self, line: int, col: int, name: str, reason: str) -> None:
        self.add(line, col, f"row {line}, column {name}", reason)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        ordered = [p for _, _, p in sorted(self.items, key=lambda x: (x[0], x[1]))]
        extra = len(ordered) - MAX_PROBLEMS
        shown = ordered[:MAX_PROBLEMS]
        if extra > 0:
            shown.append(Problem("", f"... and {extra} more problems"))
        raise InputError(self.source, shown)


def read_text_file(path: Path) -> str:
    """The file as text; gzip is recognised by its magic bytes, not only by the name."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(source, [Problem("", f"cannot read: {err.strerror}")]) from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(source, [Problem("", f"not a valid gzip file ({err})")]) from None
    elif path.name.endswith(".gz"):
        raise InputError(source, [Problem("", "named .gz but is not gzip-compressed")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            source, [Problem(f"byte {err.start}", f"not UTF-8 text ({err.reason})")]
        ) from None


DEFAULT_CHUNK_ROWS = 16_384
"""Rows per chunk when a trace is streamed: ~1 MB of arrays (and ~10 MB of cell strings
while it is parsed), a few ms of work each."""
_READ_BYTES = 1 << 20
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # str.splitlines()
_STOP_AFTER_PROBLEMS = 200
"""A broken file is not scanned to its end once this many problems are known (only
MAX_PROBLEMS are shown anyway)."""


def read_trace(path: str | Path, cfg: SiteConfig) -> Trace:
    """Read a `.csv` or `.csv.gz` trace, validate it, and fill missing optional columns.

    Defaults: `heat_demand_w` 0, `outdoor_c` NaN (unknown), `import_price` and
    `export_price` from `cfg.tariffs`, `hashprice`, `hashvalue_sats_per_th_day` and
    `btc_price` NaN (the config's bitcoin section; see `economics.hashprice.terms_series`),
    `dr_limit_w` NaN (no cap). Raises `InputError` listing every problem found.
    Holds the whole trace in memory; `iter_trace` streams it in chunks instead.
    """
    return concat_traces(iter_trace(path, cfg))


def parse_trace(text: str, cfg: SiteConfig, source: str = "<trace>") -> Trace:
    """Validate trace CSV text (see `read_trace`); `source` names it in errors."""
    return concat_traces(TraceChunks(lambda: iter([text.splitlines()]), cfg, source))


def iter_trace(path: str | Path, cfg: SiteConfig,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> TraceChunks:
    """The trace at `path` as consecutive `Trace` chunks of up to `chunk_rows` rows,
    validated as `read_trace` does, in memory independent of the file's length. Iterating
    again reads the file again. Problems raise `InputError` once the whole file has been
    scanned (chunks before the first problem have been handed out by then)."""
    p = Path(path)
    return TraceChunks(lambda: _file_lines(p), cfg, str(p), chunk_rows)


TraceInput = Trace | Iterable[Trace]
"""A whole `Trace`, or its consecutive chunks (`iter_trace`)."""


def trace_chunks(trace: TraceInput) -> Iterable[Trace]:
    """The chunks of `trace` (a whole `Trace` is one chunk)."""
    return (trace,) if isinstance(trace, Trace) else trace


class RowBuffer:
    """Columns of a streamed trace's rows not yet handed on (to a window, a block): rows
    come in chunks and leave in consecutive spans, so only what waits is held."""

    def __init__(self) -> None:
        self.first = 0  # the first held row's number in the trace
        self.end = 0  # one past the last row appended
        self.cols: dict[str, npt.NDArray[np.float64]] = {}

    def append(self, **cols: npt.NDArray[np.float64]) -> None:
        self.cols = {k: np.concatenate([self.cols[k], v]) if k in self.cols else v
                     for k, v in cols.items()}
        self.end += len(next(iter(cols.values()))) if cols else 0

    def take(self, a: int, b: int) -> dict[str, npt.NDArray[np.float64]]:
        """Rows a..b (copies), and forget every row before b (spans come in order)."""
        if a != self.first:
            raise ValueError(f"span starts at row {a}, the rows held start at {self.first}")
        i = b - self.first
        out = {k: v[:i].copy() for k, v in self.cols.items()}
        self.cols = {k: v[i:] for k, v in self.cols.items()}
        self.first = b
        return out


def concat_traces(chunks: Iterable[Trace]) -> Trace:
    """One `Trace` of consecutive chunks (as `iter_trace` yields them)."""
    parts = list(chunks)
    if not parts:
        raise ValueError("no trace chunks")
    first = parts[0]
    if len(parts) == 1:
        return first
    arrays = {name: np.concatenate([getattr(c, name) for c in parts])
              for name in ("time_s", *NUMBER_COLUMNS)}
    return Trace(step_s=first.step_s, source=first.source, columns=first.columns, **arrays)


def _file_lines(path: Path) -> Iterator[list[str]]:
    """The file's lines (without line breaks) in blocks; gzip is recognised by its magic
    bytes, not only by the name. Decoding is incremental, so errors still name the byte."""
    source = str(path)
    try:
        f: IO[bytes] = path.open("rb")
    except OSError as err:
        raise InputError(source, [Problem("", f"cannot read: {err.strerror}")]) from None
    with f:
        magic = f.read(2)
        f.seek(0)
        if magic == b"\x1f\x8b":  # gzip magic, whatever the file is called
            f = gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[assignment]
        elif path.name.endswith(".gz"):
            raise InputError(source, [Problem("", "named .gz but is not gzip-compressed")])
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        fed = 0
        bom = False
        carry = ""
        while True:
            try:
                raw = f.read(_READ_BYTES)
            except (OSError, EOFError, zlib.error) as err:
                raise InputError(source, [Problem("", f"not a valid gzip file ({err})")]) \
                    from None
            if not fed:
                bom = raw.startswith(codecs.BOM_UTF8)
            buffered = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                # offsets count from after the BOM, as `bytes.decode("utf-8-sig")` does
                pos = (fed - 3 if bom and fed else fed) - buffered + err.start
                raise InputError(
                    source, [Problem(f"byte {pos}", f"not UTF-8 text ({err.reason})")]
                ) from None
            fed += len(raw)
            text = carry + text
            if not raw:
                if text:
                    yield text.splitlines()
                return
            lines = text.splitlines()
            # The last line may go on in the next block (also a CR whose LF may follow).
            if text and text[-1] not in _LINE_BREAKS:
                carry = lines.pop()
            elif text.endswith("\r"):
                carry = lines.pop() + "\r"
            else:
                carry = ""
            if lines:
                yield lines


class _Lines:
    """Numbered non-blank lines (header = line 1). Whitespace-only lines at the end of the
    file are dropped (as `split_csv` does); empty lines are skipped but keep their
    numbers."""

    def __init__(self, blocks: Iterator[list[str]]) -> None:
        self._blocks = blocks

    def __iter__(self) -> Iterator[tuple[int, str]]:
        no = 0
        pending: list[tuple[int, str]] = []
        first = True
        for block in self._blocks:
            for line in block:
                no += 1
                if first:
                    line = line.removeprefix("\ufeff")
                    first = False
                if not line.strip():
                    pending.append((no, line))
                    continue
                if pending:
                    yield from ((n, ln) for n, ln in pending if ln or n == 1)
                    pending.clear()
                yield no, line


@dataclass
class _TimeState:
    step_us: int | None = None
    failed: bool = False  # no step could be defined; only the stamps are checked
    prev_us: int | None = None
    prev_bad: bool = False
    prev_cell: str = ""


class TraceChunks:
    """A trace that is read chunk by chunk (see `iter_trace`); iterable more than once."""

    def __init__(self, blocks: Callable[[], Iterator[list[str]]], cfg: SiteConfig,
                 source: str, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        if chunk_rows < 2:
            raise ValueError("chunk_rows must be at least 2")
        self._blocks = blocks
        self.cfg = cfg
        self.source = source
        self.chunk_rows = chunk_rows

    def __iter__(self) -> Iterator[Trace]:
        problems = Problems(self.source)
        lines = iter(_Lines(self._blocks()))
        head = next(lines, None)
        if head is None:
            raise InputError(self.source, [Problem("", "file is empty (no header row)")])
        header = [h.strip() for h in (next(csv.reader([head[1]])) if '"' in head[1]
                                       else head[1].split(","))]
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            if name in KNOWN_COLUMNS:
                if name in index:
                    problems.add(1, i, "header", f"column '{name}' appears more than once")
                index.setdefault(name, i)
        for name in REQUIRED_COLUMNS:
            if name not in index:
                problems.add(1, 0, "header", f"required column '{name}' is missing")
        problems.raise_if_any()
        tstate = _TimeState()
        rows = 0
        while True:
            numbered = list(islice(lines, self.chunk_rows))
            if rows == 0 and len(numbered) < 2:
                # width problems first, as for a whole file
                _cells(numbered, len(header), problems)
                problems.raise_if_any()
                raise InputError(self.source, [Problem(
                    "", f"needs at least 2 data rows to define the step, has {len(numbered)}")])
            if not numbered:
                break
            rows += len(numbered)
            if len(problems.items) >= _STOP_AFTER_PROBLEMS:
                break
            chunk = self._chunk(numbered, header, index, tstate, problems)
            if chunk is not None and not problems:
                yield chunk
        problems.raise_if_any()

    def _chunk(self, numbered: list[tuple[int, str]], header: list[str],
               index: dict[str, int], tstate: _TimeState, problems: Problems) -> Trace | None:
        line_no = [n for n, _ in numbered]
        columns = _cells(numbered, len(header), problems)
        if columns is None:
            return None
        time_us = _chunk_times(columns[index["time"]], line_no, index["time"], problems, tstate)
        values: dict[str, FloatArray] = {}
        for name in NUMBER_COLUMNS:
            if name in index:
                values[name] = _parse_numbers(
                    columns[index[name]], name, line_no, index[name], problems
                )
        _site_bounds(values, self.cfg, index, line_no, problems)
        if problems or tstate.step_us is None:
            return None
        n = len(line_no)
        cfg = self.cfg

        def given(name: str, default: float) -> FloatArray:
            return values[name] if name in values else np.full(n, default, dtype=np.float64)

        nan = float("nan")
        return Trace(
            time_s=time_us.astype(np.float64) / 1e6,
            pv_w=values["pv_w"],
            load_w=values["load_w"],
            heat_demand_w=given("heat_demand_w", 0.0),
            outdoor_c=given("outdoor_c", nan),
            import_price=given("import_price", float(cfg.tariffs.import_price_per_kwh)),
            export_price=given("export_price", float(cfg.tariffs.export_price_per_kwh)),
            hashprice=given("hashprice", nan),
            dr_limit_w=given("dr_limit_w", nan),
            hashvalue_sats_per_th_day=given("hashvalue_sats_per_th_day", nan),
            btc_price=given("btc_price", nan),
            step_s=tstate.step_us / 1e6,
            source=self.source,
            columns=frozenset(index),
        )


def _cells(numbered: list[tuple[int, str]], width: int,
           problems: Problems) -> list[Sequence[str]] | None:
    """The cells of each column of these rows, or None (and problems) if a row has the
    wrong number of fields. Rows without quotes take a fast path: one join and split."""
    body = [ln for _, ln in numbered]
    flat_text = ",".join(body)
    quoted = '"' in flat_text
    rows: list[list[str]] = []
    if quoted:
        rows = list(csv.reader(body))
        widths = [len(r) for r in rows]
    else:
        widths = [ln.count(",") + 1 for ln in body]
    bad = [i for i, w in enumerate(widths) if w != width]
    for i in bad[: MAX_PROBLEMS + 1]:
        n = numbered[i][0]
        problems.add(n, 0, f"row {n}", f"has {widths[i]} fields, the header has {width}")
    if bad:
        return None
    if quoted:
        return [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * width
    flat = flat_text.split(",") if body else []
    return [flat[j::width] for j in range(width)]


def _chunk_times(cells: Sequence[str], line_no: Sequence[int], col: int, problems: Problems,
                 st: _TimeState) -> npt.NDArray[np.int64]:
    """Times as integer UTC epoch microseconds; the step comes from the file's first two
    rows and every row (across chunks) must follow its predecessor by exactly one step.

    Every stamp is parsed (no sampling): with `fromisoformat` in C that costs ~0.15 s for
    half a million rows, and it accepts any offset, so a trace written in local time with
    DST offsets (+01:00 then +02:00) is read correctly as long as it is regular in UTC.
    """
    n = len(cells)
    try:
        stamps = list(map(datetime.fromisoformat, cells))
        if None in map(datetime.utcoffset, stamps):
            raise ValueError("naive time")
        bad = np.zeros(n, dtype=bool)
        ts = np.fromiter(map(datetime.timestamp, stamps), dtype=np.float64, count=n)
    except ValueError:
        # Slow path, only for files with problems: find and explain each bad stamp.
        parsed = [_parse_one_time(c) for c in cells]
        bad = np.fromiter((isinstance(s, str) for s in parsed), dtype=bool, count=n)
        for i in np.flatnonzero(bad)[: MAX_PROBLEMS + 1].tolist():
            problems.cell(line_no[i], col, "time", str(parsed[i]))
        ts = np.fromiter(
            (0.0 if isinstance(s, str) else s.timestamp() for s in parsed),
            dtype=np.float64,
            count=n,
        )
    us = np.round(ts * 1e6).astype(np.int64)
    first = st.prev_us is None and not st.failed and st.step_us is None
    if first:
        if bad[0] or bad[1]:
            st.failed = True  # no step to check against; the parse problems say why
        else:
            step = int(us[1] - us[0])
            if step < MIN_STEP_S * 1e6:
                why = (
                    "is not after the previous row (times must increase)"
                    if step <= 0
                    else f"is only {step / 1e6:g} s after the previous row; the step must be "
                         ">= 1 s"
                )
                problems.cell(line_no[1], col, "time", f"time {cells[1].strip()!r} {why}")
                st.failed = True
            else:
                st.step_us = step
    if not st.failed and st.step_us is not None:
        step = st.step_us
        if st.prev_us is None:
            full, full_bad, shift = us, bad, 1
        else:
            full = np.concatenate(([st.prev_us], us))
            full_bad = np.concatenate(([st.prev_bad], bad))
            shift = 0
        diffs = np.diff(full)
        wrong = (diffs != step) & ~full_bad[1:] & ~full_bad[:-1]
        for k in np.flatnonzero(wrong)[: MAX_PROBLEMS + 1].tolist():
            i = k + shift
            d = int(diffs[k])
            if d <= 0:
                why = "is not after the previous row (times must increase)"
            elif d > step and d % step == 0:
                why = f"follows the previous row by {d / 1e6:g} s: {d // step - 1} step(s) " \
                      "missing"
            else:
                why = f"follows the previous row by {d / 1e6:g} s, the step is {step / 1e6:g} s"
            problems.cell(line_no[i], col, "time", f"time {cells[i].strip()!r} {why}")
    if n:
        st.prev_us, st.prev_bad = int(us[-1]), bool(bad[-1])
    return us


# Cloud-edge enhancement can lift an array briefly to ~1.4 times its STC peak; more than
# 1.5 times is no weather, but a unit error (kW read as W) or a trace for another site.
PV_PEAK_FACTOR = 1.5


def _site_bounds(values: dict[str, FloatArray], cfg: SiteConfig, index: dict[str, int],
                 line_no: Sequence[int], problems: Problems) -> None:
    """Refuse values beyond a physical bound of the site, with the row and the bound."""
    pv_max = PV_PEAK_FACTOR * cfg.pv.peak_w
    battery = cfg.battery.max_discharge_w if cfg.battery is not None else 0.0
    load_max = cfg.site.main_fuse_limit_w + cfg.pv.inverter_max_w + battery
    bounds = {"pv_w": (pv_max, f"more than {PV_PEAK_FACTOR:g} x the array's peak "
                                f"({cfg.pv.peak_w:g} Wp)"),
              "load_w": (load_max, "more than the main fuse, the inverter and the battery "
                                   f"can supply together ({load_max:g} W)")}
    for name, (limit, why) in bounds.items():
        if name not in values:
            continue
        over = values[name] > limit
        for i in np.flatnonzero(over)[: MAX_PROBLEMS + 1].tolist():
            problems.cell(line_no[i], index[name], name,
                          f"{values[name][i]:g} W is implausible: {why}")


def split_csv(
    text: str, source: str, problems: Problems
) -> tuple[list[str], list[Sequence[str]], Sequence[int]]:
    """Header names, the cells of each column, and each data row's line number.

    Blank lines are skipped but keep their numbers. Files without quotes (all traces we
    write) take a fast path — one join and split instead of the csv module, ~5x faster.
    Quoted fields must not span lines (line numbers would be wrong).
    """
    lines = text.removeprefix("\ufeff").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(source, [Problem("", "file is empty (no header row)")])
    quoted = '"' in text
    body_lines = lines[1:]
    line_no: Sequence[int] = range(2, len(lines) + 1)
    if not all(body_lines):
        numbered = [(i + 2, ln) for i, ln in enumerate(body_lines) if ln]
        line_no = [i for i, _ in numbered]
        body_lines = [ln for _, ln in numbered]
    if quoted:
        header = next(csv.reader(lines[:1]))
        body = list(csv.reader(body_lines))
        widths = [len(r) for r in body]
    else:
        header = lines[0].split(",")
        widths = [ln.count(",") + 1 for ln in body_lines]
    header = [h.strip() for h in header]
    width = len(header)
    for i in [i for i, w in enumerate(widths) if w != width][: MAX_PROBLEMS + 1]:
        problems.add(
            line_no[i], 0, f"row {line_no[i]}", f"has {widths[i]} fields, the header has {width}"
        )
    problems.raise_if_any()
    if quoted:
        columns: list[Sequence[str]] = [list(c) for c in zip(*body, strict=True)]
    else:
        flat = ",".join(body_lines).split(",")
        columns = [flat[j::width] for j in range(width)]
    return header, columns, line_no


def _parse_one_time(cell: str) -> datetime | str:
    """A time-zone-aware datetime, or the reason the cell is not one."""
    text = cell.strip()
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return f"not an ISO 8601 time: {text!r}"
    if stamp.utcoffset() is None:
        return (
            f"time {text!r} has no UTC offset; local times are ambiguous around DST "
            "changes, so write UTC with 'Z' (2015-04-10T12:00:00Z) or an offset (+02:00)"
        )
    return stamp


def _parse_numbers(
    cells: Sequence[str], name: str, line_no: Sequence[int], col: int, problems: Problems
) -> FloatArray:
    """One number column, converted by numpy; a cell-by-cell pass only to name bad cells."""
    empty = np.zeros(len(cells), dtype=bool)
    if name in EMPTY_IS_NAN:
        empty = np.fromiter((not c.strip() for c in cells), dtype=bool, count=len(cells))
        if empty.any():
            cells = ["0" if e else c for c, e in zip(cells, empty.tolist(), strict=True)]
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = np.empty(len(cells), dtype=np.float64)
        reported = 0
        for i, cell in enumerate(cells):
            try:
                values[i] = float(cell)
            except ValueError:
                values[i] = 0.0
                if reported <= MAX_PROBLEMS:
                    what = "empty cell" if not cell.strip() else f"not a number: {cell.strip()!r}"
                    problems.cell(line_no[i], col, name, what)
                    reported += 1
    nonfinite = ~np.isfinite(values)
    for i in np.flatnonzero(nonfinite)[: MAX_PROBLEMS + 1].tolist():
        problems.cell(line_no[i], col, name, f"not a finite number: {cells[i].strip()!r}")
    if name in NON_NEGATIVE:
        negative = values < 0
        for i in np.flatnonzero(negative)[: MAX_PROBLEMS + 1].tolist():
            problems.cell(line_no[i], col, name, f"must not be negative (is {values[i]:g})")
    if name in POSITIVE:
        for i in np.flatnonzero(values <= 0)[: MAX_PROBLEMS + 1].tolist():
            problems.cell(line_no[i], col, name, f"must be above 0 (is {values[i]:g})")
    values[empty] = np.nan
    return values
