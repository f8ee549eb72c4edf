"""Streaming corpus reader: ``.txt`` (one document per line) or ``.jsonl`` (``{"text": ...}``),
either optionally gzipped.

The file is never loaded whole: lines are decoded one at a time so that a bad byte can be reported
with its file and line number, and duplicates are detected with 8-byte hashes instead of keeping
the text around.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


class CorpusError(ValueError):
    """The corpus cannot be used; the message names the file and, where known, the line."""


@dataclass
class CorpusStats:
    """Counts of one pass over the corpus (written to the manifest)."""

    lines: int = 0
    used: int = 0
    empty: int = 0
    duplicates: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".ndjson")


def _open_binary(path: Path) -> io.BufferedIOBase:
    if not path.exists():
        raise CorpusError(f"{path}: corpus file not found")
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_documents(path: str | Path, stats: CorpusStats | None = None) -> Iterator[str]:
    """Yield the usable documents of a corpus in file order.

    Empty lines (after stripping) and exact duplicates are counted in ``stats`` and dropped.

    Args:
        path: ``.txt``/``.jsonl`` file, optionally ``.gz``.
        stats: filled in as the stream is consumed.

    Raises:
        CorpusError: invalid UTF-8 or JSON (naming file and line), or no usable line at all.
    """
    path = Path(path)
    stats = stats if stats is not None else CorpusStats()
    jsonl = _is_jsonl(path)
    seen: set[bytes] = set()
    with _open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                stats.lines += 1
                stats.bytes += len(raw)
                text = _decode(raw, path, number, jsonl).strip()
                if not text:
                    stats.empty += 1
                    continue
                digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
                if digest in seen:
                    stats.duplicates += 1
                    continue
                seen.add(digest)
                stats.used += 1
                yield text
        except (OSError, EOFError) as exc:  # truncated or corrupt gzip
            raise CorpusError(f"{path}: cannot read corpus ({exc})") from exc
    if stats.used == 0:
        raise CorpusError(
            f"{path}: no usable line ({stats.lines} lines, {stats.empty} empty, "
            f"{stats.duplicates} duplicates); a corpus needs at least one non-empty document"
        )


def _decode(raw: bytes, path: Path, number: int, jsonl: bool) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1]
        raise CorpusError(
            f"{path}:{number}: not valid UTF-8 (byte {bad!r} at column {exc.start}); "
            "re-encode the corpus as UTF-8"
        ) from None
    if not jsonl or not line.strip():
        return line
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise CorpusError(f'{path}:{number}: expected an object with a string "text" field')
    return record["text"]


def is_heldout(text: str, fraction: float) -> bool:
    """Deterministic, order-independent split: a document's hash decides, so the same line is
    held out on every run and on every DDP rank without coordination."""
    value = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")
    return (value % 1_000_000) < fraction * 1_000_000
