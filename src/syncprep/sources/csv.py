"""CSV exports as ``csvde`` and PowerShell's ``Export-Csv`` write them.

Two dialects share one reader:

* ``csvde``: a ``DN`` column, LDAP attribute names as headers, every multi-valued attribute joined
  by ``;`` in one cell, binary values as ``X'0a1b...'``.
* ``Get-ADUser ... | Export-Csv``: an optional ``#TYPE ...`` first line, a ``DistinguishedName``
  column, PowerShell property names (``EmailAddress``, ``Surname``, ``ObjectGUID``, ``SID``...),
  multi-valued properties joined by whatever separator the admin chose in ``-join`` (detected),
  GUIDs and SIDs as strings, binary values as base64. Cells are cut at ``,``, or at ``;`` or tab
  when only that gives a DN column (``Export-Csv -UseCulture``).

Files are UTF-8 (with or without byte-order mark) or UTF-16 with a byte-order mark, unless an
encoding is forced. Cells where Export-Csv wrote a type name instead of data
(``...ADPropertyValueCollection``, ``System.Byte[]``) are refused with the fix to apply.

The reader is vectorised: Polars parses the file on every core, all columns as text, in batches of
whole rows; each batch becomes the long frame of ``sources/base.py`` with one column-wide
operation per step (split, explode, hex/GUID/SID decoding). Python only reads the file once before
parsing (the encoding check, which names the bad line, and the quote count) and again on the
error path, to point at the offending line.

Known limits, because the formats cannot express more:

* csvde does not escape ``;`` inside a value of a multi-valued attribute, so
  ``proxyAddresses`` ``X400:c=US;a= ;p=Org`` comes back as three values. Single-valued
  attributes (``displayName``, ``mail``...) are never split, so a ``;`` in them stays a ``;``.
* The same holds for the separator of an Export-Csv file: a value that contains it is split
  (DN lists joined by ``,`` are the exception: they are cut only between DNs).
* Windows PowerShell 5.1's Export-Csv writes ASCII unless told ``-Encoding UTF8``: every other
  character is already a ``?`` in the file, and nothing shows it.
* A binary value written as bare hex digits (``0a1b2c3d``) is read as base64, which is what
  ``[Convert]::ToBase64String`` writes; write ``X'0a1b2c3d'`` for hex.
"""

from __future__ import annotations

import base64
import codecs
import csv
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

import polars as pl

from ..errors import ConfigError, SourceError
from ..model import Entry
from ..schema import BINARY_ATTRIBUTES
from .base import BATCH_SCHEMA, GUID_TEXT, Progress, guid_hex, no_progress

BATCH_ENTRIES = 200_000
_CHUNK = 1 << 20

# What Export-Csv writes for a property it cannot turn into text; the data is lost in the file.
COLLECTION_LITERAL = "Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"
BYTES_LITERAL = "System.Byte[]"

# PowerShell property names of Get-ADUser/Get-ADGroup/Get-ADObject that differ from the LDAP name.
# Every other header is taken as an LDAP name, lower-cased.
POWERSHELL_NAMES = {
    "distinguishedname": "dn",
    "emailaddress": "mail",
    "surname": "sn",
    "givenname": "givenname",
    "name": "cn",
    "objectguid": "objectguid",
    "sid": "objectsid",
}

# Single-valued in AD, so a separator inside one of their cells is part of the value.
# Ex) csvde writes displayName "Smith; John" as is; splitting it would invent a second name.
SINGLE_VALUED = frozenset(
    {
        "dn",
        "distinguishedname",
        "cn",
        "name",
        "userprincipalname",
        "mail",
        "mailnickname",
        "targetaddress",
        "samaccountname",
        "displayname",
        "givenname",
        "sn",
        "initials",
        "description",
        "title",
        "department",
        "company",
        "physicaldeliveryofficename",
        "telephonenumber",
        "mobile",
        "streetaddress",
        "l",
        "st",
        "postalcode",
        "co",
        "c",
        "manager",
        "employeeid",
        "employeenumber",
        "info",
        "iscriticalsystemobject",
        "msexchrecipienttypedetails",
        "msexchhidefromaddresslists",
        "grouptype",
        "homemdb",
        "msrtcsip-primaryuseraddress",
        "useraccountcontrol",
        "whencreated",
        "whenchanged",
        "legacyexchangedn",
        "objectcategory",
        "objectguid",
        "objectsid",
        "ms-ds-consistencyguid",
        "msexchmailboxguid",
        "msexcharchiveguid",
        "thumbnailphoto",
        "jpegphoto",
        *(f"extensionattribute{i}" for i in range(1, 16)),
    }
)

# Multi-valued attributes an admin joins before Export-Csv. In csvde files every attribute not in
# SINGLE_VALUED is split (csvde joins them all); in Export-Csv files only these are, because any
# other text column is one property's ToString() and a space or comma in it is not a separator.
MULTI_VALUED = frozenset(
    {
        "proxyaddresses",
        "objectclass",
        "member",
        "memberof",
        "usercertificate",
        "usersmimecertificate",
        "othermailbox",
        "othertelephone",
        "othermobile",
        "otherhomephone",
        "otheripphone",
        "otherpager",
        "otherfacsimiletelephonenumber",
        "url",
        "serviceprincipalname",
        "showinaddressbook",
        "sidhistory",
        "publicdelegates",
        "altsecurityidentities",
        "msds-keycredentiallink",
        "userworkstations",
        *(f"msexchextensioncustomattribute{i}" for i in range(1, 6)),
    }
)

# Multi-valued attributes whose values are DNs, which contain commas themselves.
DN_VALUED = frozenset({"member", "memberof", "publicdelegates", "showinaddressbook"})
_DN_BOUNDARY = r"(?i)(dc=[^,]+),((?:cn|ou)=)"

# Separators an admin plausibly passes to -join, in the order ties are broken.
SEPARATOR_CANDIDATES = (";", "|", ",", "\n", " ")

# Evidence of a separator: what follows it when it starts a new value. {sep} is replaced by the
# escaped candidate. Ex) "SMTP:a@x.com|smtp:b@x.com" has "|smtp:"; a member list
# "CN=A,DC=x,DC=com;CN=B,..." has "DC=com;CN=" (a DN never has CN= after its DC= parts, so ","
# only scores when the admin really joined with commas).
_SEPARATOR_EVIDENCE = {
    "proxyaddresses": r"{sep}[A-Za-z][A-Za-z0-9.]{{0,15}}:",
    "member": r"(?i)dc=[^,;|\s]+{sep}(?:cn|ou)=",
    "memberof": r"(?i)dc=[^,;|\s]+{sep}(?:cn|ou)=",
    "objectclass": r"(?i){sep}(?:top|person|organizationalperson|user|group|contact|inetorgperson)\b",
}

_HEX_VALUE = r"^[Xx]'(?:[0-9A-Fa-f]{2})*'$"
_SID_VALUE = r"^[Ss]-[0-9]{1,3}-[0-9]{1,15}(?:-[0-9]{1,10}){1,15}$"
_BASE64_VALUE = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# Hex of a 16-bit number's two bytes in little-endian order, for vectorised lookups.
_WORD_HEX_KEYS = list(range(65536))
_WORD_HEX = [f"{i & 0xFF:02x}{i >> 8:02x}" for i in range(65536)]


@dataclass(frozen=True, slots=True)
class CsvSource:
    """A CSV export from ``csvde`` or ``Export-Csv``.

    ``encoding`` forces a text encoding (e.g. ``"cp1252"``); by default the file is UTF-8 (with
    or without byte-order mark) or UTF-16 with a byte-order mark. ``separator`` is the string
    that joins the values of a multi-valued cell; by default ``;`` for csvde files and detected
    from the proxyAddresses/member/objectClass cells of Export-Csv files.
    """

    path: Path
    encoding: str | None = None
    separator: str | None = None
    batch_size: int = BATCH_ENTRIES

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ConfigError(f"unknown encoding '{self.encoding}'") from None
        if self.separator is not None and (self.separator == "" or '"' in self.separator):
            raise ConfigError("the value separator must be a non-empty string without '\"'")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")

    @property
    def name(self) -> str:
        """The path, as messages show it."""
        return str(self.path)

    @property
    def size(self) -> int | None:
        """File size in bytes, for the progress bar."""
        try:
            return os.path.getsize(self.path)
        except OSError:
            return None

    def batches(self, attributes: frozenset[str] | None, progress: Progress = no_progress) -> Iterator[pl.DataFrame]:
        """Yield batches of whole entries in the frame contract of ``sources/base.py``.

        When ``attributes`` is given, only those (plus ``dn`` and ``objectclass``) are read.
        ``progress`` receives bytes of the file, approximately, as rows are finished.
        """
        for frame in self._frames(attributes, progress):
            yield frame.select("eid", "attr", "value")

    def entries(self) -> Iterator[Entry]:
        """Every entry with all its attributes; binary values as bytes."""
        for frame in self._frames(None, no_progress):
            yield from _frame_to_entries(frame)

    def _frames(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[pl.DataFrame]:
        with _utf8_text(self.path, self.encoding) as text:
            reader = _Reader(self, text, attributes)
            yield from reader.frames(progress)


@dataclass(frozen=True, slots=True)
class _Text:
    """The file as Polars reads it: UTF-8 (maybe a converted copy), with facts from the first pass."""

    path: Path
    source: str
    lines: int
    type_line: bool  # first line is Export-Csv's "#TYPE ..."
    delimiter: str = ","


@dataclass(frozen=True, slots=True)
class _Column:
    """One CSV column that is read: its position, header, attribute and treatment."""

    key: str  # the name Polars gives it ("c3"), safe whatever the header holds
    header: str
    attr: str
    pos: int
    split: bool


class _Reader:
    """Turns the parsed file into batches; holds what was learned from the header and first batch."""

    def __init__(self, source: CsvSource, text: _Text, attributes: frozenset[str] | None) -> None:
        self.name = source.name
        self.batch_size = source.batch_size
        self.size = source.size or 0
        self.text, header = _find_header(text)
        self.width = len(header)
        attrs = [_attribute(h) for h in header]
        lowered = [h.strip().lower() for h in header]
        if "dn" in lowered:
            dn_at = lowered.index("dn")
        elif "distinguishedname" in lowered:
            dn_at = lowered.index("distinguishedname")
        else:
            shown = ", ".join(h for h in header[:30]) + (", ..." if len(header) > 30 else "")
            raise SourceError(
                f"no DN column: expected 'DN' (csvde) or 'DistinguishedName' (Export-Csv); the header has: {shown}",
                source=self.name,
            )
        # Export-Csv files have a #TYPE line (Windows PowerShell) or a DistinguishedName column.
        self.powershell = text.type_line or lowered[dn_at] == "distinguishedname"
        if self.powershell:
            attrs = [POWERSHELL_NAMES.get(h, a) for h, a in zip(lowered, attrs, strict=True)]
        keep = None if attributes is None else {*attributes, "objectclass"}
        self.dn = _Column(f"c{dn_at}", header[dn_at], "dn", dn_at, split=False)
        self.columns = [self.dn]
        # Two headers can name one attribute: Get-ADUser -Properties * has both EmailAddress and
        # mail. The one spelled like the attribute wins, so "mail" is read and "EmailAddress" not.
        chosen: dict[str, int] = {}
        for i, attr in enumerate(attrs):
            if not attr or attr == "dn" or (keep is not None and attr not in keep):
                continue
            if attr not in chosen or (lowered[i] == attr and lowered[chosen[attr]] != attr):
                chosen[attr] = i
        for attr, i in sorted(chosen.items(), key=lambda item: item[1]):
            split = attr in MULTI_VALUED or (not self.powershell and attr not in SINGLE_VALUED)
            self.columns.append(_Column(f"c{i}", header[i], attr, i, split))
        self.separator = source.separator or (None if self.powershell else ";")

    def frames(self, progress: Progress) -> Iterator[pl.DataFrame]:
        """Internal batches: eid, attr, value, binary (the contract plus a flag for entries())."""
        lf = pl.scan_csv(
            self.text.path,
            has_header=True,
            skip_rows=1 if self.text.type_line else 0,
            infer_schema=False,
            new_columns=[f"c{i}" for i in range(self.width)],
            row_index_name="rec",
            separator=self.text.delimiter,
            quote_char='"',
            encoding="utf8",
        ).select("rec", *(c.key for c in self.columns))
        # Physical lines approximate rows (a quoted cell may span lines): bytes per row for progress.
        per_row = self.size / max(1, self.text.lines - (2 if self.text.type_line else 1))
        done = 0
        rows = 0
        chunks = iter(lf.collect_batches(chunk_size=self.batch_size))
        while True:
            try:
                chunk = next(chunks, None)
            except pl.exceptions.PolarsError as exc:
                raise self._parse_error(exc) from None
            if chunk is None:
                break
            for start in range(0, chunk.height, self.batch_size):
                wide = chunk.slice(start, self.batch_size)
                rows += wide.height
                frame = self._finish(wide)
                reached = min(self.size, int(rows * per_row))
                if reached > done:
                    progress(reached - done)
                    done = reached
                if frame.height:
                    yield frame
        if self.size > done:
            progress(self.size - done)

    def _finish(self, wide: pl.DataFrame) -> pl.DataFrame:
        c = pl.col
        dn = c(self.dn.key)
        has_dn = dn.is_not_null() & (dn != "")
        others = [c(col.key).is_not_null() & (c(col.key) != "") for col in self.columns[1:]]
        if others:
            orphans = wide.filter(~has_dn & pl.any_horizontal(others))
            if orphans.height:
                message = f"the row has values but its {self.dn.header} cell is empty"
                self._fail(int(orphans["rec"][0]), message)
        # Blank lines come back as rows of empty cells: they are not entries.
        wide = wide.filter(has_dn).with_row_index("eid")
        if not wide.height:
            return pl.DataFrame(schema={**BATCH_SCHEMA, "binary": pl.Boolean})

        # Long form: one row per non-empty cell, then one per value.
        parts = [
            wide.select(
                "eid",
                "rec",
                pl.lit(col.pos, pl.UInt32).alias("pos"),
                pl.lit(col.attr).alias("attr"),
                c(col.key).alias("value"),
            ).filter(c("value").is_not_null() & (c("value") != ""))
            for col in self.columns
        ]
        cells = pl.concat(parts)
        self._check_literals(cells)

        split_pos = [col.pos for col in self.columns if col.split]
        if split_pos:
            if self.separator is None:
                self.separator = _detect_separator(cells.filter(c("pos").is_in(split_pos)))
            to_split = c("pos").is_in(split_pos)
            values = c("value").str.split(self.separator)
            if self.separator == ",":
                # DNs hold commas too: between two DNs, a comma ends a DC= part and starts a CN=/OU=.
                # Ex) "CN=A,OU=Users,DC=x,DC=com,CN=B,DC=x,DC=com" splits only after the first "DC=com".
                between = c("value").str.replace_all(_DN_BOUNDARY, "$1\x00$2").str.split("\x00")
                values = pl.when(c("attr").is_in(list(DN_VALUED))).then(between).otherwise(values)
            exploded = cells.filter(to_split).with_columns(values.alias("value")).explode("value")
            if self.separator == "\n":
                # -join "`r`n" leaves a carriage return at the end of every value but the last
                exploded = exploded.with_columns(c("value").str.strip_suffix("\r"))
            cells = pl.concat([cells.filter(~to_split), exploded.filter(c("value") != "")])

        # Entry by entry, columns in file order, values in cell order; decoding shuffles, seq restores.
        cells = cells.sort("eid", "pos", maintain_order=True).with_row_index("seq")
        cells = self._decode(cells)
        return cells.sort("seq").select(c("eid").cast(BATCH_SCHEMA["eid"]), "attr", "value", "binary")

    def _check_literals(self, cells: pl.DataFrame) -> None:
        """Refuse cells where Export-Csv wrote a type name instead of the values."""
        c = pl.col
        bad = cells.filter(c("value").is_in([COLLECTION_LITERAL, BYTES_LITERAL]))
        if not bad.height:
            return
        row = bad.sort("rec", "pos").row(0, named=True)
        header = self._header_at(row["pos"])
        prop = _ps_property(header)
        if row["value"] == COLLECTION_LITERAL:
            message = (
                f"column '{header}' holds '{COLLECTION_LITERAL}' instead of its values: Export-Csv "
                "writes that for a multi-valued property that was not joined. Re-export with the "
                f"values joined, e.g. Select-Object ...,@{{n='{header}';e={{{prop} -join ';'}}}}"
            )
        else:
            message = (
                f"column '{header}' holds '{BYTES_LITERAL}' instead of its bytes: Export-Csv writes "
                "that for binary properties. Re-export them as base64, e.g. Select-Object "
                f"...,@{{n='{header}';e={{[Convert]::ToBase64String({prop})}}}}"
            )
        self._fail(int(row["rec"]), message)

    def _decode(self, cells: pl.DataFrame) -> pl.DataFrame:
        """Binary attributes to base64; csvde's X'..' text values back to text."""
        c = pl.col
        value = c("value")
        is_binary = c("attr").is_in(list(BINARY_ATTRIBUTES))
        binary = cells.filter(is_binary)
        text = cells.filter(~is_binary).with_columns(binary=pl.lit(False))
        if not self.powershell:
            # csvde writes a text value it cannot put in the file's code page as the hex of its
            # UTF-8 bytes. Ex) displayName "Jürgen" may come as X'4AC3BC7267656E'.
            hexed = text["value"].str.contains(_HEX_VALUE)
            if hexed.any():
                text = self._unhex_text(text, hexed)
        if not binary.height:
            return text
        # Each form is decoded on its own rows only: a GUID, a SID and X'..' all become hex digits.
        binary = binary.with_columns(
            form=pl.when(value.str.contains(_HEX_VALUE))
            .then(pl.lit("hex"))
            .when(value.str.contains(GUID_TEXT))
            .then(pl.lit("guid"))
            .when(value.str.contains(_SID_VALUE))
            .then(pl.lit("sid"))
            .when(value.str.contains(_BASE64_VALUE))
            .then(pl.lit("b64"))
        )
        form = c("form")
        hexes = binary.filter(form == "hex").with_columns(digits=value.str.slice(2).str.strip_suffix("'"))
        # Strip braces into a column of its own first: Polars would strip once per slice otherwise.
        guids = binary.filter(form == "guid").with_columns(digits=value.str.strip_chars("{}"))
        guids = guids.with_columns(digits=guid_hex(c("digits")))
        sids = binary.filter(form == "sid")
        sids = sids.with_columns(digits=_sid_hex(sids["value"]))
        bad = pl.concat([binary.filter(form.is_null()), sids.filter(c("digits").is_null()).drop("digits")])
        if bad.height:
            row = bad.sort("seq").row(0, named=True)
            shown = row["value"] if len(row["value"]) <= 40 else row["value"][:40] + "..."
            self._fail(
                int(row["rec"]),
                f"'{self._header_at(row['pos'])}' is a binary attribute but '{shown}' is not "
                "X'hex', a GUID, a SID (S-1-...) or base64",
            )
        decoded = pl.concat([hexes, guids, sids]).with_columns(value=c("digits").str.decode("hex").bin.encode("base64"))
        as_is = binary.filter(form == "b64")
        flag = pl.lit(True).alias("binary")
        parts = [text, *(f.with_columns(flag).select(text.columns) for f in (decoded, as_is))]
        return pl.concat(parts)

    def _unhex_text(self, text: pl.DataFrame, hexed: pl.Series) -> pl.DataFrame:
        """Decode X'..' values of text attributes; bytes that are not UTF-8 stay binary (base64).

        Only the hexed rows are visited in Python, and csvde hexes only the values it must.
        """
        idx = hexed.arg_true()
        values: list[str] = []
        flags: list[bool] = []
        for i, raw in zip(idx.to_list(), text["value"].gather(idx).to_list(), strict=True):
            data = bytes.fromhex(raw[2:-1])
            try:
                values.append(data.decode("utf-8"))
                flags.append(False)
            except UnicodeDecodeError:
                if text["attr"][i] == "dn":
                    self._fail(int(text["rec"][i]), f"the DN {raw[:40]} is not UTF-8 text")
                values.append(base64.b64encode(data).decode("ascii"))
                flags.append(True)
        return text.with_columns(text["value"].scatter(idx, values), text["binary"].scatter(idx, flags))

    def _header_at(self, pos: int) -> str:
        return next(col.header for col in self.columns if col.pos == pos)

    def _fail(self, rec: int, message: str) -> NoReturn:
        raise SourceError(message, source=self.name, line=_record_line(self.text, rec))

    def _parse_error(self, exc: pl.exceptions.PolarsError) -> SourceError:
        """Find the line Polars stumbled on, with Python's own (slow, exact) CSV reader."""
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
        try:
            for line, cells in _records(self.text):
                if len(cells) > self.width:
                    return SourceError(
                        f"the row has {len(cells)} cells but the header has {self.width}: "
                        "a value with a comma must be quoted",
                        source=self.name,
                        line=line,
                    )
        except _Malformed as bad:
            return SourceError(bad.message, source=self.name, line=bad.line)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return SourceError(f"malformed CSV: {first}", source=self.name)


def _attribute(header: str) -> str:
    """LDAP name of a header: lower case, no options. Ex) "userCertificate;binary" → "usercertificate"."""
    return header.strip().lower().split(";", 1)[0]


def _ps_property(header: str) -> str:
    """How a PowerShell script block names the property. Ex) $_.mail, $_.'mS-DS-ConsistencyGuid'."""
    return f"$_.{header}" if re.fullmatch(r"\w+", header) else f"$_.'{header}'"


def _detect_separator(cells: pl.DataFrame) -> str:
    """The candidate that most often starts a new value inside one cell (';' without evidence)."""
    # A sample of each attribute: cells come column by column, so a plain head() could hold only
    # objectClass values, which rarely show the separator.
    samples = {a: cells.filter(pl.col("attr") == a)["value"].head(50_000) for a in _SEPARATOR_EVIDENCE}
    best, best_score = ";", 0
    for sep in SEPARATOR_CANDIDATES:
        score = 0
        for attr, pattern in _SEPARATOR_EVIDENCE.items():
            if samples[attr].len():
                score += int(samples[attr].str.count_matches(pattern.format(sep=re.escape(sep))).sum())
        if score > best_score:
            best, best_score = sep, score
    return best


def _le32_hex(number: pl.Expr) -> pl.Expr:
    """An unsigned 32-bit number as the hex of its 4 little-endian bytes, two bytes per lookup."""
    low, high = number % 65536, number // 65536
    return pl.concat_str(
        [half.replace_strict(_WORD_HEX_KEYS, _WORD_HEX, return_dtype=pl.String) for half in (low, high)]
    )


def _sid_hex(values: pl.Series) -> pl.Series:
    """SID strings as the hex of their binary form; null where a number does not fit.

    Binary SID: revision 1, sub-authority count, 6-byte big-endian authority, then each
    sub-authority as 4 bytes little-endian. Ex) "S-1-5-32-544" → 01 02 000000000005 20000000 20020000.
    All SIDs of a domain share everything but the last sub-authority (the RID), so the part before
    it is encoded once per distinct value, in Python, and only the RID per row.
    """
    frame = values.to_frame("value").select(
        prefix=pl.col("value").str.replace(r"-[0-9]+$", ""),
        rid=pl.col("value").str.extract(r"-([0-9]+)$").cast(pl.UInt64, strict=False),
    )
    heads = {prefix: _sid_head(prefix) for prefix in frame["prefix"].unique().to_list()}
    return frame.select(
        pl.concat_str(
            [
                pl.col("prefix").replace_strict(heads, return_dtype=pl.String),
                pl.when(pl.col("rid") <= 0xFFFFFFFF).then(_le32_hex(pl.col("rid"))),
            ]
        )
    ).to_series()


def _sid_head(prefix: str) -> str | None:
    """Hex of a SID's binary form up to its last sub-authority. Ex) "S-1-5-21-1-2-3" (one more follows)."""
    revision, authority, *subs = (int(p) for p in prefix.split("-")[1:])
    if revision != 1 or authority >= 1 << 48 or any(s > 0xFFFFFFFF for s in subs):
        return None
    head = bytes([1, len(subs) + 1]) + authority.to_bytes(6, "big")
    return (head + b"".join(s.to_bytes(4, "little") for s in subs)).hex()


def _frame_to_entries(frame: pl.DataFrame) -> Iterator[Entry]:
    """Rebuild entries from an internal batch (rows are in entry, column and value order)."""
    dn: str | None = None
    current: dict[str, list[str | bytes]] = {}
    for attr, value, binary in frame.select("attr", "value", "binary").iter_rows():
        if attr == "dn":
            if dn is not None:
                yield Entry(dn, {k: tuple(v) for k, v in current.items()})
            dn, current = value, {}
            continue
        current.setdefault(attr, []).append(base64.b64decode(value) if binary else value)
    if dn is not None:
        yield Entry(dn, {k: tuple(v) for k, v in current.items()})


class _Malformed(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _records(text: _Text) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every record after the header, by Python's csv module."""
    with open(text.path, encoding="utf-8-sig", newline="") as f:
        skipped = 0
        if text.type_line:
            f.readline()
            skipped = 1
        reader = csv.reader(f, delimiter=text.delimiter, strict=True)
        end = 0
        try:
            for number, cells in enumerate(reader):
                if number:
                    yield skipped + end + 1, cells
                end = reader.line_num
        except csv.Error as exc:
            raise _Malformed(f"malformed CSV: {exc}", skipped + end + 1) from None


def _find_header(text: _Text) -> tuple[_Text, list[str]]:
    """The header row, and the cell delimiter that gives it a DN column.

    Export-Csv -UseCulture writes ';' in much of Europe (and -Delimiter can be anything), so when
    ',' finds no DN column, ';' and tab are tried before giving up.
    Ex) '"DistinguishedName";"Name"' has a DN column only when cut at ';'.
    """
    first: list[str] | None = None
    error: csv.Error | None = None
    for delimiter in (",", ";", "\t"):
        with open(text.path, encoding="utf-8-sig", newline="") as f:
            if text.type_line:
                f.readline()
            try:
                header = next(csv.reader(f, delimiter=delimiter, strict=True), None)
            except csv.Error as exc:
                error = error or exc
                continue
        if not header:
            raise SourceError("no header row: the file is empty", source=text.source)
        if {"dn", "distinguishedname"} & {h.strip().lower() for h in header}:
            return replace(text, delimiter=delimiter), header
        first = first or header
    if first is None:
        line = 2 if text.type_line else 1
        raise SourceError(f"malformed header row: {error}", source=text.source, line=line)
    return text, first


def _record_line(text: _Text, rec: int) -> int | None:
    """The line where data record number ``rec`` (0-based, after the header) starts."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    try:
        for number, (line, _cells) in enumerate(_records(text)):
            if number == rec:
                return line
    except _Malformed:
        return None
    return None


@contextmanager
def _utf8_text(path: Path, encoding: str | None) -> Iterator[_Text]:
    """The file as UTF-8 for Polars: itself when it is UTF-8, else a converted temporary copy.

    One pass over the text checks the encoding (so the error names the line), counts lines for
    the progress bar, and checks that double quotes pair up: an odd count means a quoted cell
    never ends, which would otherwise swallow the rest of the file into one cell.
    """
    source = str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise SourceError("no such file", source=source) from None
    except IsADirectoryError:
        raise SourceError("is a directory, not a CSV file", source=source) from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", source=source) from None
    if encoding is not None:
        codec = codecs.lookup(encoding).name
    elif b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Ex) b"D\x00N\x00": UTF-16 text whose writer left out the byte-order mark.
        raise SourceError(
            "the file holds NUL bytes, so it looks like UTF-16 without a byte-order mark: "
            "pass --encoding utf-16-le (or utf-16-be)",
            source=source,
        )
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"  # csvde -u and Windows PowerShell's Export-Csv -Encoding Unicode
    else:
        codec = "utf-8"
    if codec in ("utf-8", "utf-8-sig"):
        with open(path, "rb") as f:
            lines, type_line, balanced = _scan(f, "utf-8-sig", None, source, forced=encoding is not None)
        yield _checked(_Text(path, source, lines, type_line), balanced)
        return
    with tempfile.TemporaryDirectory(prefix="syncprep-") as tmp:
        copy = Path(tmp) / "utf8.csv"
        with open(path, "rb") as f, open(copy, "w", encoding="utf-8", newline="") as out:
            lines, type_line, balanced = _scan(f, codec, out, source, forced=encoding is not None)
        yield _checked(_Text(copy, source, lines, type_line), balanced)


def _scan(raw: BinaryIO, codec: str, out: TextIO | None, source: str, *, forced: bool) -> tuple[int, bool, bool]:
    """Decode the file chunk by chunk, into ``out`` when given: (lines, #TYPE line?, quotes paired?).

    Text that is not in ``codec`` is refused with the line of the first bad byte.
    """
    decoder = codecs.getincrementaldecoder(codec)("strict")
    lines = 0
    quotes = 0
    head = ""
    while True:
        chunk = raw.read(_CHUNK)
        final = not chunk
        state = decoder.getstate()
        try:
            part = decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            # Decode the chunk up to the bad byte leniently, from the same state, to count lines.
            lenient = codecs.getincrementaldecoder(codec)("replace")
            lenient.setstate(state)
            before = lenient.decode(chunk[: max(0, exc.start - len(state[0]))])
            line = lines + before.count("\n") + 1
            if forced or codec != "utf-8-sig":
                name = "UTF-8" if codec == "utf-8-sig" else codec
                message = f"not valid {name} text: check the encoding (--encoding)"
            else:
                message = (
                    "not UTF-8 text: re-export as UTF-8 (Export-Csv -Encoding UTF8, csvde -u) "
                    "or pass the file's encoding, e.g. --encoding cp1252"
                )
            raise SourceError(message, source=source, line=line) from None
        if not head and part:
            part = part.removeprefix("\ufeff")  # a forced encoding may leave the byte-order mark
            head = part[:5] or " "
        lines += part.count("\n")
        quotes += part.count('"')
        if out is not None:
            out.write(part)
        if final:
            break
    return lines + 1, head.upper() == "#TYPE", quotes % 2 == 0


def _checked(text: _Text, balanced: bool) -> _Text:
    if not balanced:
        message = "a quoted cell is never closed (unbalanced '\"')"
        raise SourceError(message, source=text.source, line=_unclosed(text))
    return text


def _unclosed(text: _Text) -> int | None:
    """The line where the quoted cell that never closes opens.

    Escaped quotes ("") come in pairs, so only a cell's opening and closing quotes change the
    parity of a line's quote count: every odd line flips between "in a cell" and "not", and the
    last flip into a cell is where the unclosed one opens.
    Ex) 'CN=b,"Smith, Bob' has one quote: if no later line has an odd count, it is the culprit.
    """
    inside, opened = False, None
    with open(text.path, encoding="utf-8", newline="") as f:
        for number, line in enumerate(f, 1):
            if line.count('"') % 2:
                inside = not inside
                if inside:
                    opened = number
    return opened if inside else None
