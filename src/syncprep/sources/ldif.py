"""LDIF exports (RFC 2849) as ``ldifde`` and ``ldapsearch`` write them.

The reader is vectorised. Polars' streaming engine splits the file into lines on every core,
cuts each line at its first ": ", numbers the records, and keeps only the lines the rules need;
the few lines that need more care (folded lines, base64, ``attr:value`` without a space) are
finished batch by batch. A million-object export is read in seconds, and anything that is not a
plain content record (change records, URL values, broken base64, a line with no colon) is refused
with its line number.
"""

from __future__ import annotations

import base64
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import polars as pl

from ..errors import SourceError
from ..model import Entry
from ..schema import BINARY_ATTRIBUTES
from .base import BATCH_SCHEMA, Progress, no_progress

BATCH_LINES = 700_000

# Why each kind of line is refused.
_MESSAGES = {
    "nocolon": "expected 'attribute: value' but the line has no colon",
    "badname": "'{attr}' is not a valid attribute name",
    "url": "URL values ('{attr}:< file://...') are not supported: export with the values inline",
    "change": "'changetype: {value}' is a change record; syncprep reads exports (content records) only",
    "control": "'control:' lines belong to change records; syncprep reads exports (content records) only",
    "b64": "broken base64 value for '{attr}'",
    "orphan": "'{attr}:' appears before the first 'dn:' line",
    "fold": "a continuation line (starting with a space) has no line to continue",
    "text": "the base64 value of '{attr}' is not UTF-8 text",
}

# Lines read whatever the rules need, because they decide what a record is.
_ALWAYS = ("dn", "changetype", "control")
# Options as AD writes them too: "member;range=0-1499", and the last range "member;range=1500-*".
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-.]*(;[A-Za-z0-9\-=.*]+)*$")
_BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"


@dataclass(frozen=True, slots=True)
class LdifSource:
    """An LDIF file."""

    path: Path
    batch_lines: int = BATCH_LINES

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def size(self) -> int | None:
        """Estimated number of lines, for the progress bar."""
        try:
            total = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                sample = f.read(1 << 20)
        except OSError:
            return None
        return max(1, total * max(1, sample.count(b"\n")) // max(1, len(sample)))

    def batches(self, attributes: frozenset[str] | None, progress: Progress = no_progress) -> Iterator[pl.DataFrame]:
        for frame in self._frames(attributes, progress):
            yield frame.drop("binary", "ln")

    def entries(self) -> Iterator[Entry]:
        for frame in self._frames(None, no_progress):
            yield from frame_to_entries(frame)

    def _frames(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[pl.DataFrame]:
        with _utf8_file(self.path) as path:
            carry: pl.DataFrame | None = None
            done_lines = 0
            for raw in _stream(path, attributes, self.batch_lines, self.name):
                if carry is not None and carry.height:
                    raw = pl.concat([carry, raw])
                last = raw["eid"][-1]
                ready, carry = raw.filter(pl.col("eid") < last), raw.filter(pl.col("eid") == last)
                if ready.height:
                    end = int(ready["ln"][-1])
                    progress(end - done_lines)
                    done_lines = end
                    frame = _finish(ready, attributes, self.name)
                    if frame.height:
                        yield frame
            if carry is not None and carry.height:
                progress(int(carry["ln"][-1]) - done_lines)  # the last entry counts too
                frame = _finish(carry, attributes, self.name)
                if frame.height:
                    yield frame


def frame_to_entries(frame: pl.DataFrame) -> Iterator[Entry]:
    """Rebuild entries from a batch with a ``binary`` column (binary values back to bytes)."""
    current: dict[str, list[str | bytes]] = {}
    dn: str | None = None
    # Rows of one entry are together but not in file order; the line number restores it.
    for _eid, attr, value, binary in frame.sort("eid", "ln").select("eid", "attr", "value", "binary").iter_rows():
        if attr == "dn":
            if dn is not None:
                yield Entry(dn, {k: tuple(v) for k, v in current.items()})
            dn, current = value, {}
            continue
        v: str | bytes = base64.b64decode(value) if binary else value
        current.setdefault(attr, []).append(v)
    if dn is not None:
        yield Entry(dn, {k: tuple(v) for k, v in current.items()})


@contextmanager
def _utf8_file(path: Path) -> Iterator[Path]:
    """The file itself, or a UTF-8 copy without byte-order mark when it has one."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise SourceError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise SourceError("is a directory, not an LDIF file", source=str(path)) from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", source=str(path)) from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"  # ldifde -u writes UTF-16 with a byte-order mark
    elif head.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="syncprep-") as tmp:
        copy = Path(tmp) / "utf8.ldif"
        try:
            with open(path, encoding=encoding, newline="") as src, open(copy, "w", encoding="utf-8") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except UnicodeDecodeError:
            raise SourceError(f"not valid {encoding.upper()} text", source=str(path)) from None
        yield copy


# objectClass values that decide an object's kind; "top", "person" and the like are not read.
_KIND_CLASSES = ("user", "inetOrgPerson", "group", "contact", "computer")


def _wanted_pattern(attributes: frozenset[str] | None) -> str:
    """One regex that picks every line a batch needs, so the streaming pass looks at a line once.

    It matches the dn and the needed attributes (case-insensitive names, any options, base64 or
    not, with or without a space after the colon), the objectClass values that decide a kind,
    and every line that must be refused: no colon, a space in the name, a URL value.
    Ex) "proxyAddresses: x", "proxyAddresses:: eA==", "mail:x", "member;range=0-1499: x",
    "objectClass: user", "garbage", "display name: x", "jpegPhoto:< file:///x" match;
    "objectClass: top", "whenCreated: 2024..." and continuation lines do not.
    """
    refused = [
        r"[^: #][^:]*$",  # no colon at all (comments and continuations aside)
        r"[^: #][^:]* [^:]*:",  # a space in the attribute name
        r"[^: #][^:]*:<",  # a URL value
    ]
    if attributes is None:
        return r"^[^ #]"
    names = sorted({*attributes, *_ALWAYS} - {"objectclass"})
    wanted = ["(?:" + "|".join(re.escape(n) for n in names) + r")(?:;[^:]*)?:"]
    if "objectclass" in attributes:
        classes = "|".join(_KIND_CLASSES)
        # The kind's class, plain or base64 (base64 is rare: read it and let the rules decide).
        wanted.append(rf"objectclass(?:;[^:]*)?:(?: *(?:{classes}) *$|:)")
    return r"(?i)^(?:" + "|".join(wanted + refused) + ")"


FOLDS = 2

# A plain line: a name without ':' or spaces, ": ", and a value not starting with a space.
# Anything else (base64 "attr:: ", "attr:value", fill spaces, continuations) takes the careful path.
_PLAIN = r"^[^: ]+: (?:[^ ]|$)"


def _stream(path: Path, attributes: frozenset[str] | None, batch_lines: int, source: str) -> Iterator[pl.DataFrame]:
    """Lines that matter, in file order: ln, name, value (None when there is no ': '), eid, special.

    Everything that looks at every line runs here, in Polars' streaming engine on all cores, and
    does as little as it can: one regex decides which lines to keep (a folded line's
    continuations go with it), and only the kept lines are numbered and split.
    """
    c, line = pl.col, pl.col("line")
    cont = line.str.starts_with(" ")
    # Folded lines are joined here for up to FOLDS continuations (226 columns at 76, longer than
    # most values); a longer run keeps its pieces, and the batch joins them (_unfold).
    # Ex) "dn: CN=Bob,OU=Sales,...," + " DC=contoso,DC=com" -> one line.
    follows = [c("cont").shift(-1).fill_null(False)]
    for k in range(2, FOLDS + 2):
        follows.append(follows[-1] & c("cont").shift(-k).fill_null(False))
    joined = pl.concat_str(
        [line, *(pl.when(f).then(line.shift(-k).str.slice(1)) for k, f in enumerate(follows[:FOLDS], 1))],
        ignore_nulls=True,
    )
    overlong = ~c("cont") & follows[FOLDS]
    lf = (
        pl.scan_lines(path, name="line", row_index_name="ln", row_index_offset=1)
        # A continuation goes with the line it continues; one on the very first line is kept (and
        # refused later). Ex) " (FYDIBOHF23SPDLT)/cn=Recipients" after a proxyAddresses line.
        .filter(pl.when(~cont).then(line.str.contains(_wanted_pattern(attributes))).forward_fill().fill_null(True))
        .with_columns(cont=cont)
        .with_columns(
            line=pl.when(c("cont") | overlong).then(line).otherwise(joined),
            keep_pieces=pl.when(~c("cont")).then(overlong).forward_fill().fill_null(True),
        )
        .filter(~c("cont") | c("keep_pieces"))
        .select(
            "ln",
            # The tag is case-insensitive and its space optional: "dn: x", "dn:: eA==", "DN:x".
            line.str.contains(r"(?i)^dn(?::|$)").cum_sum().alias("eid"),
            ~line.str.contains(_PLAIN).alias("special"),
            # splitn keeps the rest whole; split_exact(": ", 1) would cut "description: Note: x" to "Note".
            line.str.splitn(": ", 2).alias("s"),
        )
        .unnest("s")
        .select("ln", pl.col("field_0").alias("name"), pl.col("field_1").alias("value"), "eid", "special")
    )
    try:
        yield from _bounded_batches(lf, batch_lines)
    except pl.exceptions.ComputeError as exc:
        if "utf" in str(exc).lower():
            raise _utf8_error(path, source) from None
        raise SourceError(f"cannot read: {exc}", source=source) from None


def _bounded_batches(lf: pl.LazyFrame, size: int) -> Iterator[pl.DataFrame]:
    """The query's batches, at most two ahead of the reader.

    The streaming engine runs in a thread and hands each batch over a small queue; while the
    queue is full the engine waits, so a slow consumer (the rules) never makes batches pile up in
    memory. An error in the engine is raised here, in the reader's thread.
    """
    handoff: queue.Queue[pl.DataFrame | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def deliver(batch: pl.DataFrame) -> bool:
        handoff.put(batch)
        return stop.is_set()  # True tells the engine to stop early

    def run() -> None:
        try:
            lf.sink_batches(deliver, chunk_size=size)
        except BaseException as exc:
            handoff.put(exc)
        else:
            handoff.put(None)

    worker = threading.Thread(target=run, name="syncprep-ldif", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # The consumer stopped early (an error, or it had enough): let the engine finish.
        stop.set()
        while worker.is_alive():
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                continue


def _utf8_error(path: Path, source: str) -> SourceError:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return SourceError(
                    "not UTF-8 text: re-export as UTF-8 or Unicode (ldifde -u), or convert it with iconv",
                    source=source,
                    line=number,
                )
    return SourceError("not UTF-8 text", source=source)


def _raise_at(rows: pl.DataFrame, code: str, source: str) -> NoReturn:
    first = rows.sort("ln").row(0, named=True)
    attr = first.get("attr") or str(first.get("name", "")).rstrip(":")
    message = _MESSAGES[code].format(attr=attr, value=first.get("value"))
    # "from None": raised inside an except block too (binascii.Error), where the chained
    # exception would otherwise print as a traceback.
    raise SourceError(message, source=source, line=int(first["ln"])) from None


def _finish(rows: pl.DataFrame, attributes: frozenset[str] | None, source: str) -> pl.DataFrame:
    """Turn kept lines of whole records into a batch: eid, attr, value, binary.

    Most lines are plain "attr: value" and pass through untouched; the checks and repairs run
    on the few special ones, so a batch costs a handful of passes however it looks.
    """
    c = pl.col
    if rows["special"].any():
        if rows.filter(c("special"))["name"].str.starts_with(" ").any():
            rows = _unfold(rows, source)
        plain, special = rows.filter(~c("special")), rows.filter(c("special"))
        try:
            special = _reparse(special, source)
        except SourceError as exc:
            # A change record's "-" separator has no colon: when a "changetype: modify" line comes
            # first, the reason to give is that the file holds change records.
            earlier = plain.filter(c("ln") < (exc.line or 0)).with_columns(attr=c("name").str.to_lowercase())
            _refuse_changes(earlier, source)
            raise
        rows = pl.concat([plain.select(special.columns), special])
    rows = rows.drop("special")

    # Distinct names are few: classify each spelling once, in Python.
    attr_of: dict[str, str] = {}
    for raw in rows["name"].unique().to_list():
        bare = raw[:-1] if raw.endswith(":") else raw
        if not _NAME.match(bare):
            _raise_at(rows.filter(c("name") == raw), "badname", source)
        attr_of[raw] = bare.lower().split(";", 1)[0]
    rows = rows.with_columns(attr=c("name").replace_strict(attr_of, return_dtype=pl.String))

    if rows["eid"].min() == 0:
        orphans = rows.filter((c("eid") == 0) & (c("attr") != "version"))
        if orphans.height:
            _raise_at(orphans, "orphan", source)
        rows = rows.filter(c("eid") > 0)
    if {"changetype", "control"} & set(attr_of.values()):
        _refuse_changes(rows, source)
        rows = rows.filter(c("attr") != "changetype")
    keep = None if attributes is None else {"dn", *attributes}
    if keep is not None and not keep.issuperset(attr_of.values()):
        rows = rows.filter(c("attr").is_in(list(keep)))

    b64 = rows.filter(c("name").str.ends_with(":"))
    if b64.height:
        bad = b64.filter(~c("value").str.contains(_BASE64) | (c("value").str.len_bytes() % 4 != 0))
        if bad.height:
            _raise_at(bad, "b64", source)
        rows = rows.with_columns(b64=c("name").str.ends_with(":"))
        rows = rows.with_columns(binary=c("b64") & c("attr").is_in(list(BINARY_ATTRIBUTES)))
        rows = _decode_text(rows, source, strict=attributes is not None)
    else:
        rows = rows.with_columns(binary=pl.lit(False))
    return rows.select(
        (c("eid") - c("eid").min()).cast(BATCH_SCHEMA["eid"]).alias("eid"), "attr", "value", "binary", "ln"
    )


def _refuse_changes(rows: pl.DataFrame, source: str) -> None:
    """Refuse change records: any "control:" line, any "changetype:" but "add"."""
    c = pl.col
    # ldifde writes "changetype: add" on every record: look at those lines only.
    candidates = rows.filter(c("attr").is_in(["changetype", "control"]))
    changes = candidates.filter(
        ((c("attr") == "changetype") & (c("value").str.to_lowercase() != "add")) | (c("attr") == "control")
    ).sort("ln")
    if changes.height:
        _raise_at(changes, "control" if changes["attr"][0] == "control" else "change", source)


def _line() -> pl.Expr:
    """The original line, from its two halves."""
    c = pl.col
    return pl.concat_str(
        [c("name"), pl.when(c("value").is_not_null()).then(pl.lit(": ") + c("value"))], ignore_nulls=True
    )


def _unfold(rows: pl.DataFrame, source: str) -> pl.DataFrame:
    """Join the folded lines the streaming pass left in pieces (runs longer than FOLDS).

    Such runs are rare, so they are joined in Python and written back over their first line.
    The streaming pass keeps a continuation only with the line it continues, so each run
    follows its own line and a batch never splits one.
    Ex) "member: CN=..." folded five times: one line again.
    """
    cont = rows["name"].str.starts_with(" ")
    positions = cont.arg_true().to_list()
    if positions and positions[0] == 0 and rows["ln"][0] == 1:
        raise SourceError(_MESSAGES["fold"], source=source, line=1)
    names, values = rows["name"], rows["value"]

    def text(i: int) -> str:
        value = values[i]
        return names[i] if value is None else f"{names[i]}: {value}"

    heads: dict[int, list[str]] = {}
    head, previous = -1, -2
    for i in positions:
        if i != previous + 1:  # a new run: the line it continues is the row before
            head = i - 1
            if head < 0:
                raise SourceError(_MESSAGES["fold"], source=source, line=int(rows["ln"][i]))
            heads[head] = [text(head)]
        heads[head].append(text(i)[1:])
        previous = i
    idx = pl.Series(list(heads), dtype=pl.UInt32)
    lines = pl.Series(["".join(parts) for parts in heads.values()], dtype=pl.String).str.splitn(": ", 2)
    rows = rows.with_columns(
        rows["name"].scatter(idx, lines.struct.field("field_0")),
        rows["value"].scatter(idx, lines.struct.field("field_1")),
        rows["special"].scatter(idx, True),
    )
    return rows.filter(~cont)


def _reparse(special: pl.DataFrame, source: str) -> pl.DataFrame:
    """Lines without ': ' ("attr:value", "attr:", "attr:< url") cut at their first colon instead."""
    c = pl.col
    # Ex) "mail:bob@x.com" has no ": "; "proxyAddresses:SMTP:bob@x.com" puts the split in the value.
    odd = c("value").is_null() | c("name").str.slice(0, c("name").str.len_chars() - 1).str.contains(":", literal=True)
    # Ex) "cn:   Bob" is "Bob": spaces after the separator are fill (RFC 2849), never the value.
    special = special.with_columns(value=pl.when(odd).then(c("value")).otherwise(c("value").str.strip_chars_start(" ")))
    if not special.select(odd.any()).item():
        return special
    fixed = special.filter(odd).with_columns(line=_line()).with_columns(colon=c("line").str.find(":", literal=True))
    missing = fixed.filter(c("colon").is_null())
    if missing.height:
        _raise_at(missing, "nocolon", source)
    rest = c("line").str.slice(c("colon") + 1)
    fixed = fixed.with_columns(
        name=c("line").str.slice(0, c("colon"))
        + pl.when(rest.str.starts_with(":")).then(pl.lit(":")).otherwise(pl.lit("")),
        url=rest.str.starts_with("<"),
        value=pl.when(rest.str.starts_with(":") | rest.str.starts_with("<"))
        .then(rest.str.slice(1))
        .otherwise(rest)
        .str.strip_chars_start(" "),
    )
    urls = fixed.filter(c("url"))
    if urls.height:
        _raise_at(urls.with_columns(attr=c("name")), "url", source)
    return pl.concat([special.filter(~odd), fixed.select(special.columns)])


def _decode_text(rows: pl.DataFrame, source: str, *, strict: bool) -> pl.DataFrame:
    """Decode base64 values of text attributes (names with accents, values with edge spaces).

    Base64 that is not UTF-8 text is refused when the attribute was asked for (``strict``);
    reading whole entries keeps it as binary instead.
    """
    c = pl.col
    mask = c("b64") & ~c("binary")
    todo = rows.filter(mask)
    if not todo.height:
        return rows
    raw = todo["value"].str.decode("base64")
    try:
        todo = todo.with_columns(value=raw.cast(pl.String))
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        # Some value is not UTF-8: find which, one by one (rare).
        texts: list[str] = []
        binary: list[bool] = []
        for i, data in enumerate(raw.to_list()):
            try:
                texts.append(data.decode("utf-8"))
                binary.append(False)
            except UnicodeDecodeError:
                if strict or todo["attr"][i] == "dn":
                    _raise_at(todo[i], "text", source)
                texts.append(todo["value"][i])
                binary.append(True)
        todo = todo.with_columns(value=pl.Series(texts, dtype=pl.String), binary=pl.Series(binary, dtype=pl.Boolean))
    return pl.concat([rows.filter(~mask), todo])
