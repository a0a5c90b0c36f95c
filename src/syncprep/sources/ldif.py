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
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import polars as pl

from ..errors import SourceError
from ..model import Entry
from ..schema import BINARY_ATTRIBUTES
from .base import BATCH_SCHEMA, GUID_TEXT, Parts, Progress, ahead, guid_hex, in_background, no_progress

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
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
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
        for parts in self._parts(attributes, progress, binary=False):
            yield _long(parts, binary=False).drop("ln")

    def part_batches(self, attributes: frozenset[str] | None, progress: Progress = no_progress) -> Iterator[Parts]:
        """The same batches already split by attribute (see ``base.PartSource``).

        They are prepared in a thread of their own, one batch ahead: Polars lets go of the
        interpreter while it works, so reading the next batch overlaps the rules on this one.
        """
        for parts in ahead(lambda: self._parts(attributes, progress, binary=False), 1, "syncprep-ldif-batches"):
            yield {attr: part.drop("ln") for attr, part in parts.items()}

    def entries(self) -> Iterator[Entry]:
        for parts in self._parts(None, no_progress, binary=True):
            yield from frame_to_entries(_long(parts, binary=True))

    def _parts(self, attributes: frozenset[str] | None, progress: Progress, *, binary: bool) -> Iterator[Parts]:
        with _utf8_file(self.path) as path:
            carry: pl.DataFrame | None = None
            done_lines = 0
            for raw in _stream(path, attributes, self.batch_lines, self.name):
                if carry is not None and carry.height:
                    raw = pl.concat([carry, raw])
                dn = raw["dn"]
                if not dn.any():
                    dn = _dn_lines(raw)  # only other spellings ("DN:"), or one entry goes on
                if not dn.any():
                    carry = raw  # one entry goes on (or the lines before the first dn)
                    continue
                # The last entry may go on in the next batch: it waits, from its dn line on.
                last = raw.height - 1 - int(dn.reverse().arg_max() or 0)
                ready, carry = raw.slice(0, last), raw.slice(last)
                if ready.height:
                    end = int(ready["ln"][-1])
                    progress(end - done_lines)
                    done_lines = end
                    parts = _finish(ready, attributes, self.name, binary=binary)
                    if parts:
                        yield parts
            if carry is not None and carry.height:
                progress(int(carry["ln"][-1]) - done_lines)  # the last entry counts too
                parts = _finish(carry, attributes, self.name, binary=binary)
                if parts:
                    yield parts


def _dn_lines(raw: pl.DataFrame) -> pl.Series:
    """Which rows are dn lines in any spelling of the tag ("dn:", "DN: x", "Dn:x"), from their names."""
    return raw.select(pl.col("name").str.contains(r"(?i)^dn(?::|$)")).to_series()


def _long(parts: Parts, *, binary: bool) -> pl.DataFrame:
    """Parts as one batch frame (eid, attr, value[, binary], ln), rows in file order."""
    columns = ["eid", "attr", "value", *(["binary"] if binary else []), "ln"]
    if not parts:
        return pl.DataFrame(schema={**BATCH_SCHEMA, "binary": pl.Boolean, "ln": pl.UInt32}).select(columns)
    frames = [part.with_columns(attr=pl.lit(attr, pl.String)).select(columns) for attr, part in parts.items()]
    return pl.concat(frames).sort("ln")


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


# A plain line: a name without ':' or spaces, ": " (or base64's ":: "), and a value not starting
# with a space. Anything else ("attr:value", fill spaces, continuations) takes the careful path.
_PLAIN = r"^[^: ]+::? (?:[^ ]|$)"


def _stream(path: Path, attributes: frozenset[str] | None, batch_lines: int, source: str) -> Iterator[pl.DataFrame]:
    """Lines that matter, in file order: ln, name, value (None when there is no ': '), dn, cont, special.

    Everything that looks at every line runs here, in Polars' streaming engine on all cores, and
    does as little as it can: one regex decides which lines to keep (and every continuation
    line), and only the kept lines are split and flagged. Nothing here depends on the order of
    the lines, so it all runs in parallel and the engine never holds more than a few batches;
    the batch numbers the records and joins folded lines (_finish).
    """
    line = pl.col("line")
    cont = line.str.starts_with(" ")
    lf = (
        pl.scan_lines(path, name="line", row_index_name="ln", row_index_offset=1)
        # Every continuation is kept: which line it continues is decided batch by batch
        # (_unfold), because order-dependent steps (forward_fill, cum_max) make the streaming
        # engine buffer without bound when the rules read slower than it reads.
        # Ex) " (FYDIBOHF23SPDLT)/cn=Recipients" after a proxyAddresses line.
        .filter(cont | line.str.contains(_wanted_pattern(attributes)))
        # ldifde writes "changetype: add" on every record, and it changes nothing: not even split.
        .filter(line != "changetype: add")
        .select(
            "ln",
            # Exporters write the tag in lower case: "dn: x", "dn:: eA==", "dn:x". Other spellings
            # ("DN: x") are found per batch from the names (_dn_lines), where they are rare.
            line.str.starts_with("dn:").alias("dn"),
            cont.alias("cont"),
            # splitn keeps the rest whole; split_exact(": ", 1) would cut "description: Note: x" to "Note".
            line.str.splitn(": ", 2).alias("s"),
        )
        .unnest("s")
        .select("ln", pl.col("field_0").alias("name"), pl.col("field_1").alias("value"), "dn", "cont")
        # A plain line is "name: value" or "name:: base64", with no other colon in the name and no
        # fill spaces; the rest is repaired batch by batch (_reparse).
        # Ex) "mail:x" (no ": "), "cn:  x" (fill spaces), "description:Note: x" (a colon in the name).
        .with_columns(
            special=pl.col("value").is_null()
            | pl.col("value").str.starts_with(" ")
            | (pl.col("name").str.find(":", literal=True) < pl.col("name").str.len_bytes() - 1).fill_null(False)
        )
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
    # sink_batches stops the engine when its callback returns True, as emit does once the reader stops.
    return in_background(lambda emit: lf.sink_batches(emit, chunk_size=size), 2, "syncprep-ldif")


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


def _finish(rows: pl.DataFrame, attributes: frozenset[str] | None, source: str, *, binary: bool) -> Parts:
    """Turn kept lines of whole records into a batch split by attribute: {attr: (eid, value, ln)}.

    Most lines are plain "attr: value" and pass through untouched; the checks and repairs run
    on the few special ones (written back in place), and everything after the split by name
    runs per attribute, so a batch costs a handful of passes however it looks. With ``binary``
    every part also says which values are base64 binary.
    """
    c = pl.col
    if rows["cont"].any():
        rows = _unfold(rows, source)
        if not rows.height:
            return {}  # only continuations of lines that were not kept (a folded comment)
    special = rows["special"]
    if special.any():
        idx = special.arg_true()
        try:
            fixed = _reparse(rows[idx], source)
        except SourceError as exc:
            # A change record's "-" separator has no colon: when a "changetype: modify" line comes
            # first, the reason to give is that the file holds change records.
            earlier = rows.filter(~c("special") & (c("ln") < (exc.line or 0)))
            _refuse_changes(earlier.with_columns(attr=c("name").str.to_lowercase()), source)
            raise
        rows = rows.with_columns(rows["name"].scatter(idx, fixed["name"]), rows["value"].scatter(idx, fixed["value"]))

    # Entries are numbered from 1; lines before the first dn get 0 (and are refused below).
    numbered = rows.select("name", c("dn").cum_sum().cast(pl.UInt32).alias("eid"), "value", "ln")
    by_name = {str(k[0]): v for k, v in numbered.partition_by("name", as_dict=True, include_key=False).items()}
    # Distinct names are few: classify each spelling once, in Python.
    attr_of: dict[str, str] = {}
    for raw, part in by_name.items():
        bare = raw[:-1] if raw.endswith(":") else raw
        if not _NAME.match(bare):
            _raise_at(part.with_columns(name=pl.lit(raw)), "badname", source)
        attr_of[raw] = bare.lower().split(";", 1)[0]
    if {raw for raw, attr in attr_of.items() if attr == "dn"} - {"dn", "dn:"}:
        # "DN: x" records too: number the entries again by every spelling of the tag.
        dn = _dn_lines(rows).cum_sum().cast(pl.UInt32).alias("eid")
        numbered = rows.select("name", dn, "value", "ln")
        by_name = {str(k[0]): v for k, v in numbered.partition_by("name", as_dict=True, include_key=False).items()}
    rows = numbered

    orphans = not rows["eid"][0]
    if orphans:
        stray = [p.with_columns(attr=pl.lit(attr_of[n])) for n, p in by_name.items() if attr_of[n] != "version"]
        early = pl.concat(stray).filter(c("eid") == 0) if stray else rows.clear()
        if early.height:
            _raise_at(early, "orphan", source)
    names = set(attr_of.values())
    if {"changetype", "control"} & names:
        changes = [
            p.with_columns(attr=pl.lit(attr_of[n]))
            for n, p in by_name.items()
            if attr_of[n] in ("changetype", "control")
        ]
        _refuse_changes(pl.concat(changes), source)
    keep = {"dn", *attributes} if attributes is not None else None

    bad: list[pl.DataFrame] = []
    out: dict[str, list[pl.DataFrame]] = {}
    for raw, part in by_name.items():
        attr = attr_of[raw]
        if attr in ("changetype", "version") or (keep is not None and attr not in keep):
            continue
        if orphans:
            part = part.filter(c("eid") > 0)
        flag = False
        if raw.endswith(":"):
            wrong = part.filter(~c("value").str.contains(_BASE64) | (c("value").str.len_bytes() % 4 != 0))
            if wrong.height:
                bad.append(wrong.with_columns(name=pl.lit(raw)))
                continue
            if attr in BINARY_ATTRIBUTES:
                flag = True
            else:
                part = _decode_text(part, attr, source, strict=attributes is not None)
        elif attr in BINARY_ATTRIBUTES:
            part = _binary_text(part)
            flag = True
        if binary and "binary" not in part.columns:
            part = part.with_columns(binary=pl.lit(flag))
        out.setdefault(attr, []).append(part)
    if bad:
        _raise_at(pl.concat(bad), "b64", source)
    parts: Parts = {}
    for attr, pieces in out.items():
        # Several spellings of one attribute ("cn", "CN", "cn::"): back in file order.
        part = pieces[0] if len(pieces) == 1 else pl.concat(pieces).sort("ln")
        parts[attr] = part.with_columns(c("eid") - 1)
    return parts


def _refuse_changes(rows: pl.DataFrame, source: str) -> None:
    """Refuse change records: any "control:" line, any "changetype:" but "add"."""
    c = pl.col
    # ldifde writes "changetype: add" on every record: look at those lines only.
    candidates = rows.filter(c("attr").is_in(["changetype", "control"]))
    # ldapsearch ends a paged search with a result trailer that echoes the paged-results control
    # ("control: 1.2.840.113556.1.4.319 false ..."): a search control, never part of a change.
    paged = c("value").str.strip_chars_start().str.starts_with(PAGED_RESULTS_OID)
    changes = candidates.filter(
        ((c("attr") == "changetype") & (c("value").str.to_lowercase() != "add")) | ((c("attr") == "control") & ~paged)
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
    """Join folded lines: each continuation (a line starting with a space) onto the line before.

    A batch starts at a dn line, so it never splits a folded line from its continuations; only
    the file's very first line can be a continuation with nothing to continue. The pieces go
    onto the value; a line whose first ": " comes after the fold is split again.
    Ex) "member: CN=..." folded five times: one line again.
    """
    c = pl.col
    if rows["cont"][0] and rows["ln"][0] == 1:
        raise SourceError(_MESSAGES["fold"], source=source, line=1)
    # A continuation belongs to the kept line before it when no line lies between them (or only
    # continuations of that same line); the others continue lines that were not kept.
    # Ex) lines 7 "mail: x", 9 " more": line 8 was not kept, so line 9 continues it, not mail.
    start = ~c("cont") | (c("ln") != c("ln").shift(1) + 1).fill_null(True)
    mine = c("cont") & pl.when(start).then(~c("cont")).forward_fill()
    # pos: for every continuation, the number of its head among the lines that are not one.
    tails = (
        rows.select((~c("cont")).cum_sum().cast(pl.UInt32).alias("pos"), "name", "value", mine.alias("mine"))
        .filter(c("mine"))
        .select(c("pos") - 1, _line().str.slice(1).alias("piece"))
        .group_by("pos", maintain_order=True)
        .agg(c("piece"))  # a list per line, joined below: str.join inside agg is slow per group
    )
    heads = rows.filter(~c("cont"))
    if not tails.height:
        return heads
    idx = tails["pos"]
    ends = tails["piece"].list.join("")
    values = heads["value"].gather(idx)
    if values.null_count() or (values == "").any():
        # The first ": " (or what follows it) is in a continuation: split the whole line again.
        whole = pl.DataFrame({"name": heads["name"].gather(idx), "value": values, "end": ends})
        lines = whole.select(pl.concat_str([_line(), c("end")])).to_series()
        split = lines.str.splitn(": ", 2)
        return heads.with_columns(
            heads["name"].scatter(idx, split.struct.field("field_0")),
            heads["value"].scatter(idx, split.struct.field("field_1")),
            heads["special"].scatter(idx, ~lines.str.contains(_PLAIN)),
        )
    return heads.with_columns(heads["value"].scatter(idx, values + ends))


def _reparse(special: pl.DataFrame, source: str) -> pl.DataFrame:
    """Lines without ': ' ("attr:value", "attr:", "attr:< url") cut at their first colon instead.

    Returns the rows in the same order, with name and value repaired.
    """
    c = pl.col
    # Ex) "mail:bob@x.com" has no ": "; "proxyAddresses:SMTP:bob@x.com" puts the split in the value.
    odd = c("value").is_null() | c("name").str.slice(0, c("name").str.len_chars() - 1).str.contains(":", literal=True)
    # Ex) "cn:   Bob" is "Bob": spaces after the separator are fill (RFC 2849), never the value.
    special = special.with_columns(odd=odd, line=_line())
    special = special.with_columns(colon=pl.when(c("odd")).then(c("line").str.find(":", literal=True)))
    missing = special.filter(c("odd") & c("colon").is_null())
    if missing.height:
        _raise_at(missing, "nocolon", source)
    rest = c("line").str.slice(c("colon") + 1)
    special = special.with_columns(
        name=pl.when(c("odd"))
        .then(
            c("line").str.slice(0, c("colon"))
            + pl.when(rest.str.starts_with(":")).then(pl.lit(":")).otherwise(pl.lit(""))
        )
        .otherwise(c("name")),
        url=c("odd") & rest.str.starts_with("<"),
        value=pl.when(c("odd"))
        .then(pl.when(rest.str.starts_with(":") | rest.str.starts_with("<")).then(rest.str.slice(1)).otherwise(rest))
        .otherwise(c("value"))
        .str.strip_chars_start(" "),
    )
    urls = special.filter(c("url"))
    if urls.height:
        _raise_at(urls.with_columns(attr=c("name")), "url", source)
    return special.select("name", "value")


def _binary_text(part: pl.DataFrame) -> pl.DataFrame:
    """A binary attribute written as text: its bytes in base64, like every other binary value.

    A GUID written out as text is its 16 bytes in AD's order, as ldbsearch writes objectGUID;
    any other text is the bytes of its UTF-8 (LDIF may write printable bytes as they are).
    Ex) "objectGUID: d2111359-443a-7e54-12f0-8971a2d771f9" -> "WRMR0jpEVH4S8Ilxotdx+Q==".
    """
    c = pl.col
    as_guid = guid_hex(c("value").str.strip_chars("{}")).str.decode("hex", strict=False).bin.encode("base64")
    return part.with_columns(
        value=pl.when(c("value").str.contains(GUID_TEXT)).then(as_guid).otherwise(c("value").str.encode("base64"))
    )


def _decode_text(part: pl.DataFrame, attr: str, source: str, *, strict: bool) -> pl.DataFrame:
    """Decode base64 values of a text attribute (names with accents, values with edge spaces).

    Base64 that is not UTF-8 text is refused when the attribute was asked for (``strict``);
    reading whole entries keeps it as binary instead (a ``binary`` column says which).
    """
    raw = part["value"].str.decode("base64")
    try:
        return part.with_columns(value=raw.cast(pl.String))
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        pass
    # Some value is not UTF-8: find which, one by one (rare).
    texts: list[str] = []
    binary: list[bool] = []
    for i, data in enumerate(raw.to_list()):
        try:
            texts.append(data.decode("utf-8"))
            binary.append(False)
        except UnicodeDecodeError:
            if strict or attr == "dn":
                _raise_at(part[i].with_columns(attr=pl.lit(attr)), "text", source)
            texts.append(part["value"][i])
            binary.append(True)
    return part.with_columns(value=pl.Series(texts, dtype=pl.String), binary=pl.Series(binary, dtype=pl.Boolean))
