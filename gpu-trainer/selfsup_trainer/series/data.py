"""Time-series datasets (decision 0005): JSONL or CSV, optionally gzipped, into one padded array.

JSONL: one object per line, ``{"values": number[]}`` (univariate) or ``{"values": number[][]}``
(channels x time), optional ``"label"``. CSV: a header row, then one univariate series per row;
a ``label`` column, when present, is the class and every other column is a time step; trailing
empty cells make a shorter series. Padding is always at the end (``observed`` is a prefix), as
the edge pads.

Everything is held as one float32 array ``[N, C, L_max]``: series sets are small next to text
corpora (a million points is 4 MB), and a dense array lets collate slice batches without a
per-sample Python loop.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..contract import MIN_HELDOUT


class SeriesError(ValueError):
    """The dataset cannot be used; the message names the file, the line/row and column."""


FLOAT32_MAX = 3.4028234663852886e38  # values are held as float32; larger ones would become inf
MAX_CHANNELS = 256  # the manifest's cap on channels (api/services/manifest.ts)
MIN_STD = 1e-3  # floor on recorded per-channel std (as the image channel_stats): a constant
# channel would otherwise record std 0, which the manifest rejects and normalization divides by


@dataclass
class SeriesSet:
    """Series padded at the end to a common length.

    Attributes:
        values: float32 [N, C, L] (0 where not observed).
        observed: float32 [N, L], 1 on real points, 0 on padding (a prefix per row).
        lengths: int64 [N] observed points per series (used for length bucketing).
        labels: class name per series (None where a record has none), or None when no record
            has a label.
        stats: reading statistics (records, channels, min/max/mean length, labels).
    """

    values: np.ndarray
    observed: np.ndarray
    lengths: np.ndarray
    labels: list[str | None] | None = None
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def channels(self) -> int:
        return int(self.values.shape[1])

    @property
    def max_length(self) -> int:
        return int(self.lengths.max()) if len(self.lengths) else 0

    def subset(self, indices: np.ndarray) -> SeriesSet:
        labels = None if self.labels is None else [self.labels[int(i)] for i in indices]
        return SeriesSet(
            self.values[indices], self.observed[indices], self.lengths[indices], labels, self.stats
        )

    def fit(self, length: int) -> SeriesSet:
        """Truncate (keeping the first points, as the edge does) or pad to ``length`` points."""
        n, c, current = self.values.shape
        if length <= current:
            values = self.values[:, :, :length].copy()
            observed = self.observed[:, :length].copy()
        else:
            values = np.zeros((n, c, length), dtype=np.float32)
            observed = np.zeros((n, length), dtype=np.float32)
            values[:, :, :current] = self.values
            observed[:, :current] = self.observed
        lengths = np.minimum(self.lengths, length)
        return SeriesSet(values, observed, lengths, self.labels, self.stats)

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and population std over observed points, float64 [C] each.

        The std is floored at ``MIN_STD`` so a constant channel records a positive std (the
        manifest requires one); the model's in-graph buffers take these same numbers.
        """
        mask = self.observed[:, None, :].astype(np.float64)
        count = max(float(mask.sum()), 1.0)
        mean = (self.values * mask).sum(axis=(0, 2)) / count
        var = (((self.values - mean[None, :, None]) ** 2) * mask).sum(axis=(0, 2)) / count
        return mean, np.maximum(np.sqrt(var), MIN_STD)

    def require_labels(self, path: Path | str) -> list[str]:
        """Labels of every record, or a SeriesError naming the first unlabeled one."""
        if self.labels is None:
            raise SeriesError(
                f"{path}: no record has a label; a probe set needs one per series "
                '(JSONL "label" field or a CSV "label" column)'
            )
        for i, label in enumerate(self.labels):
            if label is None:
                raise SeriesError(
                    f"{path}: record {i + 1} has no label; every series of a probe set needs one"
                )
        return [str(label) for label in self.labels]


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as handle:
        gz = handle.read(2) == b"\x1f\x8b"  # by content: serve names downloads by API format
    raw = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 (returned)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return True
    if name.endswith(".csv"):
        return False
    with _open_text(path) as f:
        for line in f:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def _number(value: object, where: str) -> float:
    # bool is an int in Python, but true/false in a series is almost surely a wrong column.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SeriesError(f"{where}: {json.dumps(value)[:40]} is not a number; use numbers only")
    if not math.isfinite(value):
        raise SeriesError(
            f"{where}: {value} is not finite; remove NaN/Infinity (missing points are not "
            "supported inside a series, only a shorter series)"
        )
    if abs(value) > FLOAT32_MAX:
        raise SeriesError(
            f"{where}: {value} is beyond float32 (|x| <= {FLOAT32_MAX:.7g}); rescale the series "
            "(e.g. change units) so every value fits"
        )
    return float(value)


def _iter_jsonl(path: Path) -> Iterator[tuple[np.ndarray, str | None]]:
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SeriesError(
                    f"{where}: invalid JSON ({exc.msg}); write one object per line"
                ) from None
            if not isinstance(record, dict) or "values" not in record:
                raise SeriesError(f'{where}: expected an object with "values": number[] or [][]')
            values = record["values"]
            if not isinstance(values, list) or not values:
                raise SeriesError(f'{where}: "values" must be a non-empty array of numbers')
            rows = values if isinstance(values[0], list) else [values]
            width = len(rows[0])
            if width == 0:
                raise SeriesError(f'{where}: "values" channel 0 is empty; a series needs points')
            array = np.empty((len(rows), width), dtype=np.float32)
            for c, row in enumerate(rows):
                if not isinstance(row, list):
                    raise SeriesError(
                        f'{where}: "values" channel {c} is not an array; use number[] for one '
                        "channel or number[][] (channels x time) for several"
                    )
                if len(row) != width:
                    size = len(row)
                    raise SeriesError(
                        f'{where}: "values" channel {c} has {size} points but channel 0 has '
                        f"{width}; channels x time arrays must all have the same length"
                    )
                for t, v in enumerate(row):
                    index = f"[{c}][{t}]" if len(rows) > 1 else f"[{t}]"
                    array[c, t] = _number(v, f'{where}, "values"{index}')
            label = record.get("label")
            yield array, None if label is None else str(label)


def _is_fraction(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    try:
        int(text)
    except ValueError:
        return True
    return False


def _iter_csv(path: Path) -> Iterator[tuple[np.ndarray, str | None]]:
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip() for h in header]
        # Integer names ("0,1,2", pandas' default) are a header; "0.52" is a forgotten one.
        fractional = [n for n in names if _is_fraction(n)]
        if fractional:
            raise SeriesError(
                f"{path}: line 1 looks like data ({fractional[0]!r}), not a header; add a header "
                "row (e.g. t0,t1,...,label)"
            )
        lowered = [n.lower() for n in names]
        label_col = lowered.index("label") if "label" in lowered else None
        steps = [i for i in range(len(names)) if i != label_col]
        for number, row in enumerate(reader, 2):
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}: line {number}"
            if len(row) > len(names):
                raise SeriesError(
                    f"{where}: {len(row)} cells but the header has {len(names)} columns; "
                    "add header columns or remove the extra cells"
                )
            cells = [row[i].strip() if i < len(row) else "" for i in steps]
            length = len(cells)
            while length and not cells[length - 1]:
                length -= 1  # trailing empty cells: a shorter series
            if length == 0:
                raise SeriesError(f"{where}: the series is empty; give it at least one value")
            array = np.empty((1, length), dtype=np.float32)
            for t in range(length):
                cell, column = cells[t], names[steps[t]]
                if not cell:
                    raise SeriesError(
                        f"{where}, column {column!r}: empty cell inside the series; only trailing "
                        "cells may be empty (fill the gap, e.g. by interpolation)"
                    )
                try:
                    value = float(cell)
                except ValueError:
                    raise SeriesError(
                        f"{where}, column {column!r}: {cell[:40]!r} is not a number"
                    ) from None
                array[0, t] = _number(value, f"{where}, column {column!r}")
            label = row[label_col].strip() if label_col is not None and label_col < len(row) else ""
            yield array, label or None


def read_series(path: str | Path, max_length: int | None = None) -> SeriesSet:
    """Read a JSONL or CSV series dataset (optionally gzipped) into a :class:`SeriesSet`.

    Args:
        path: the file; gzip is recognised by content, JSONL vs CSV by name, else by content.
        max_length: keep only the first ``max_length`` points of longer series (the edge's
            ``truncate: keep_first``), so one very long record cannot inflate the whole array.
            ``stats`` still describes the lengths in the file, plus ``truncated`` records.

    Raises:
        SeriesError: malformed record (named by line and column), inconsistent channel count,
            or no series at all.
    """
    path = Path(path)
    records = _iter_jsonl(path) if _is_jsonl(path) else _iter_csv(path)
    arrays: list[np.ndarray] = []
    labels: list[str | None] = []
    full: list[int] = []
    for array, label in records:
        if array.shape[0] > MAX_CHANNELS:
            raise SeriesError(
                f"{path}: record {len(arrays) + 1} has {array.shape[0]} channels; at most "
                f"{MAX_CHANNELS} are supported (drop or merge channels)"
            )
        if arrays and array.shape[0] != arrays[0].shape[0]:
            raise SeriesError(
                f"{path}: record {len(arrays) + 1} has {array.shape[0]} channel(s) but the first "
                f"has {arrays[0].shape[0]}; every series needs the same channel count"
            )
        full.append(array.shape[1])
        arrays.append(array[:, :max_length] if max_length else array)
        labels.append(label)
    if not arrays:
        raise SeriesError(f"{path}: no series found; write one series per line (JSONL) or row")
    lengths = np.array([a.shape[1] for a in arrays], dtype=np.int64)
    n, channels, longest = len(arrays), arrays[0].shape[0], int(lengths.max())
    values = np.zeros((n, channels, longest), dtype=np.float32)
    observed = np.zeros((n, longest), dtype=np.float32)
    for i, array in enumerate(arrays):  # reading only; batches are sliced from these arrays
        values[i, :, : array.shape[1]] = array
        observed[i, : array.shape[1]] = 1.0
    named = [x for x in labels if x is not None]
    in_file = np.array(full, dtype=np.int64)
    stats = {
        "records": n,
        "channels": channels,
        "min_length": int(in_file.min()),
        "max_length": int(in_file.max()),
        "mean_length": float(in_file.mean()),
        "points": int(in_file.sum()),
        "truncated": int((in_file > lengths).sum()),
        "labeled": len(named),
        "classes": len(set(named)),
    }
    return SeriesSet(values, observed, lengths, labels if named else None, stats)


def heldout_split(
    series: SeriesSet,
    fraction: float,
    limit: int,
    minimum: int = MIN_HELDOUT["timeseries"] or 1,
) -> tuple[SeriesSet, SeriesSet]:
    """Deterministic (order- and seed-independent) train / held-out split.

    The held-out rows are those whose values hash lowest, so the same series is held out on every
    run and every DDP rank. Size: ``round(N * fraction)`` clamped to ``[minimum, limit]`` and to
    at most half the data.

    Raises:
        SeriesError: fewer than ``2 * minimum`` series.
    """
    n = len(series)
    if n < 2 * minimum:
        raise SeriesError(
            f"only {n} series; training needs at least {2 * minimum} (some are held out for "
            "evaluation and the parity gates)"
        )
    count = min(max(round(n * fraction), minimum), limit, n // 2)
    keys = np.array(
        [
            int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
            for row in series.values
        ],
        dtype=np.uint64,
    )
    order = np.argsort(keys, kind="stable")
    held = np.sort(order[:count])
    keep = np.sort(order[count:])
    return series.subset(keep), series.subset(held)


def batch_arrays(
    series: SeriesSet, indices: np.ndarray, patch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``indices`` cut to their longest observed length rounded up to a multiple of ``patch``
    (length bucketing keeps that close to every row's length).

    Returns:
        values [B, C, L] float32 and observed [B, L] float32 (CPU tensors).
    """
    longest = int(series.lengths[indices].max())
    width = min(-(-longest // patch) * patch, series.values.shape[2])
    values = torch.from_numpy(np.ascontiguousarray(series.values[indices, :, :width]))
    observed = torch.from_numpy(np.ascontiguousarray(series.observed[indices, :width]))
    return values, observed
