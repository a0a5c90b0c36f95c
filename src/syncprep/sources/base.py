"""What every source hands the engine: batches of whole entries as a long table.

A batch is a Polars frame with one row per attribute value:

    eid    UInt32  entry number within the batch, 0..n-1, in source order
    attr   String  lower-case attribute name without options ("proxyaddresses", "dn")
    value  String  the value; binary attributes as base64 text

Every entry has exactly one ``dn`` row, and an entry never spans two batches, so rules
that look at a whole object (primary SMTP count, exclusions) run batch by batch and only the
duplicate index spans the scan.
"""

from __future__ import annotations

import base64
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import polars as pl

from ..model import Entry
from ..schema import BINARY_ATTRIBUTES

BATCH_SCHEMA = {"eid": pl.UInt32, "attr": pl.String, "value": pl.String}

Progress = Callable[[int], None]

# A batch split by attribute: {"mail": frame of (eid, value), ...}, eids as in the batch.
Parts = dict[str, pl.DataFrame]


def no_progress(_: int) -> None:
    """A progress callback that ignores its argument."""


class Source(Protocol):
    """A place entries come from: a file, a directory server, the bundled sample."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int | None:
        """Total work units for a progress bar (bytes for files), or None when unknown."""
        ...

    def batches(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[pl.DataFrame]:
        """Yield batches of whole entries; ``attributes`` (lower case) limits what is read.

        ``progress`` is called with the work units done since the last call.
        """
        ...

    def entries(self) -> Iterator[Entry]:
        """Every entry with all its attributes, for the library API and for tests."""
        ...


class PartSource(Source, Protocol):
    """A source that can hand over its batches already split by attribute (optional, faster).

    ``part_batches`` yields what ``scope.partition(batch)`` would make of each batch: the same
    entries, numbered the same way, every entry with its "dn" part row. The engine uses it when
    a source has it, and ``batches`` otherwise.
    """

    def part_batches(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[Parts]: ...


def as_text(attr: str, value: str | bytes) -> str:
    """A value as frames hold it: text as is, binary attributes as base64."""
    if isinstance(value, bytes):
        if attr in BINARY_ATTRIBUTES:
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", errors="surrogateescape")
    return value


def entries_to_frame(entries: Iterable[Entry], attributes: frozenset[str] | None = None) -> pl.DataFrame:
    """Turn entries into one batch frame (for sources that produce Python objects)."""
    eids: list[int] = []
    attrs: list[str] = []
    values: list[str] = []
    for eid, entry in enumerate(entries):
        eids.append(eid)
        attrs.append("dn")
        values.append(entry.dn)
        for attr, vals in entry.attributes.items():
            base = attr.lower().split(";", 1)[0]
            if base == "dn" or (attributes is not None and base not in attributes):
                continue
            for v in vals:
                eids.append(eid)
                attrs.append(base)
                values.append(as_text(base, v))
    return pl.DataFrame({"eid": eids, "attr": attrs, "value": values}, schema=BATCH_SCHEMA)


T = TypeVar("T")
Emit = Callable[[T], bool]


def in_background(produce: Callable[[Emit[T]], None], depth: int, name: str) -> Iterator[T]:
    """What ``produce`` emits, made in a thread of its own at most ``depth`` items ahead.

    ``produce(emit)`` calls ``emit(item)`` for each item; ``emit`` returns True once the consumer
    has stopped, and the producer should then stop too. An error while producing is raised here, in
    the consumer's thread; when the consumer stops early (an error, or it had enough), this waits
    for the producer to finish, so nothing it reads is pulled away from under it.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put((kind, item), timeout=0.1)
                return False
            except queue.Full:
                continue
        return True

    def run() -> None:
        try:
            produce(lambda item: put("item", item))
        except BaseException as exc:  # handed to the consumer, which raises it
            put("error", exc)
        else:
            put("end", None)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, item = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def ahead(make: Callable[[], Iterator[T]], depth: int, name: str) -> Iterator[T]:
    """``make()``'s items, read in a thread of their own; the iterator is closed when reading stops."""

    def produce(emit: Emit[T]) -> None:
        items = make()
        try:
            for item in items:
                if emit(item):
                    return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    return in_background(produce, depth, name)


# A GUID as text, with or without braces. Ex) "d2111359-443a-7e54-12f0-8971a2d771f9".
GUID_TEXT = r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$"


def guid_hex(value: pl.Expr) -> pl.Expr:
    """A GUID string (no braces) as the hex of AD's bytes: the first three groups are little-endian.

    Ex) "3f2504e0-4f89-11d3-9a0c-0305e82c3301" → "e004253f" "894f" "d311" "9a0c" "0305e82c3301".
    """
    order = [(6, 2), (4, 2), (2, 2), (0, 2), (11, 2), (9, 2), (16, 2), (14, 2), (19, 4), (24, 12)]
    return pl.concat_str([value.str.slice(start, length) for start, length in order])
