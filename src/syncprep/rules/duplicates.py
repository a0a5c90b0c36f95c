"""Duplicates as the cloud sees them: one namespace across attributes, object kinds and sources.

Each batch contributes key rows: a 64-bit hash of the comparison key, the entry, the attribute
and the raw value. Once every source is read, hashes held by two or more entries are candidates;
their keys are recomputed and compared exactly, so a hash collision can never report a false
duplicate. Namespaces (RULES.md §3):

    X001  addresses: userPrincipalName, mail, SMTP proxy addresses (prefix removed), case-insensitive
    X003  SIP: SIP proxy addresses and msRTCSIP-PrimaryUserAddress
    X004  mailNickname          X005  targetAddress        X006  other proxy types, within type
    X007  sAMAccountName, for objects without a valid UPN
    A001  source anchor: mS-DS-ConsistencyGuid when set, else objectGUID (exact bytes)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

import polars as pl

c = pl.col

_LOW = c("value").str.strip_chars().str.to_lowercase()
# Key rows name their attribute and namespace with a byte each (made so, never cast from text).
_ATTRS = pl.Enum(
    [
        "userprincipalname",
        "mail",
        "proxyaddresses",
        "msrtcsip-primaryuseraddress",
        "mailnickname",
        "targetaddress",
        "samaccountname",
        "ms-ds-consistencyguid",
        "objectguid",
    ]
)
_CODES = pl.Enum(["X001", "X003", "X004", "X005", "X006", "X007", "A001"])
KEY_SCHEMA: dict[str, pl.DataType] = {
    "h": pl.UInt64(),
    "eid": pl.UInt32(),
    "attr": _ATTRS,
    "value": pl.String(),
    "code": _CODES,
}
DUP_SCHEMA = {"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "code": pl.String, "group": pl.String}


def key_of(attr: str, code: str, low: pl.Expr) -> pl.Expr:
    """The comparison key of a value of ``attr`` in namespace ``code``; ``low`` is the value
    trimmed and lower-cased. Ex) "SMTP:Bob@X.com" in X001 -> "bob@x.com"; anchors stay exact."""
    if code == "A001":
        return c("value")
    if attr == "proxyaddresses" and code == "X001":
        return low.str.slice(len("smtp:"))
    if attr == "proxyaddresses" and code == "X003":
        return low.str.slice(len("sip:"))
    if attr == "msrtcsip-primaryuseraddress":
        return low.str.replace(r"^sip:", "")
    if attr == "targetaddress":
        return low.str.replace(r"^smtp:", "")
    return low


def _rows(frame: pl.DataFrame | None, attr: str, code: str, key: pl.Expr) -> pl.DataFrame | None:
    if frame is None or not frame.height:
        return None
    return (
        frame.with_columns(k=key)
        .filter(c("k").is_not_null() & (c("k") != ""))
        .select(
            c("k").hash().alias("h"),
            "eid",
            pl.lit(attr, dtype=_ATTRS).alias("attr"),
            "value",
            pl.lit(code, dtype=_CODES).alias("code"),
        )
    )


def keys(
    parts: Mapping[str, pl.DataFrame], no_valid_upn: pl.Series, codes: set[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Key rows of one batch, and same-object duplicates (X002) as dup rows.

    ``parts`` maps attributes to (eid, value) rows; proxyAddresses rows carry ``low``.
    """
    found: list[pl.DataFrame | None] = []
    low = _LOW
    same_object = pl.DataFrame(schema=DUP_SCHEMA)
    get = parts.get

    proxies = get("proxyaddresses")
    smtp = sip = other = None
    if proxies is not None and proxies.height:
        is_smtp = c("low").str.starts_with("smtp:")
        is_sip = c("low").str.starts_with("sip:")
        smtp = proxies.filter(is_smtp).with_columns(k=key_of("proxyaddresses", "X001", c("low")))
        sip = proxies.filter(is_sip)
        other = proxies.filter(~is_smtp & ~is_sip)
    if "X001" in codes:
        for attr in ("userprincipalname", "mail"):
            found.append(_rows(get(attr), attr, "X001", key_of(attr, "X001", low)))
        found.append(_rows(smtp, "proxyaddresses", "X001", c("k")))
    if "X002" in codes and smtp is not None and smtp.height:
        twice = smtp.filter(pl.len().over("eid", "k") > 1)
        if twice.height:
            same_object = twice.select(
                "eid",
                pl.lit("proxyaddresses").alias("attr"),
                "value",
                pl.lit("X002").alias("code"),
                pl.format("X002:{}:{}", c("eid"), c("k")).alias("group"),
            )
    if "X003" in codes:
        found.append(_rows(sip, "proxyaddresses", "X003", key_of("proxyaddresses", "X003", c("low"))))
        sip_attr = "msrtcsip-primaryuseraddress"
        found.append(_rows(get(sip_attr), sip_attr, "X003", key_of(sip_attr, "X003", low)))
    if "X006" in codes:
        found.append(_rows(other, "proxyaddresses", "X006", key_of("proxyaddresses", "X006", c("low"))))
    if "X004" in codes:
        found.append(_rows(get("mailnickname"), "mailnickname", "X004", key_of("mailnickname", "X004", low)))
    if "X005" in codes:
        found.append(_rows(get("targetaddress"), "targetaddress", "X005", key_of("targetaddress", "X005", low)))
    sams = get("samaccountname")
    if "X007" in codes and no_valid_upn.len() and sams is not None:
        mine = sams.filter(c("eid").is_in(no_valid_upn.implode()))
        found.append(_rows(mine, "samaccountname", "X007", key_of("samaccountname", "X007", low)))
    if "A001" in codes:
        guid = get("ms-ds-consistencyguid")
        object_guid = get("objectguid")
        if guid is not None and guid.height:
            guid = guid.unique("eid", keep="first")
            found.append(_rows(guid, "ms-ds-consistencyguid", "A001", key_of("ms-ds-consistencyguid", "A001", low)))
            if object_guid is not None:
                object_guid = object_guid.filter(~c("eid").is_in(guid["eid"].implode()))
        found.append(_rows(object_guid, "objectguid", "A001", key_of("objectguid", "A001", low)))
    frames = [f for f in found if f is not None and f.height]
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=KEY_SCHEMA)
    return frame, same_object


class Index:
    """The duplicate index of a scan: key rows batch by batch, then the values held twice.

    Only (hash, entry) pairs, deduplicated per batch, stay in memory to find shared hashes; the
    full rows (attribute, value) wait in a temporary file and only those of shared hashes are
    read back. Ex) a user whose UPN, mail and primary SMTP address are one address contributes
    one pair, not three; a million objects keep about 100 MB of pairs, not 600 MB of rows.
    """

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[str] = []
        self.pairs: list[pl.DataFrame] = []

    def add(self, keys: pl.DataFrame) -> None:
        if not keys.height:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="syncprep-keys-")
        path = os.path.join(self._dir.name, f"keys-{len(self._files):05d}.arrow")
        keys.write_ipc(path)
        self._files.append(path)
        self.pairs.append(keys.select("h", "eid").unique())

    def close(self) -> None:
        """Remove the temporary file (also done when the index is garbage-collected)."""
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def find(self) -> pl.DataFrame:
        """Rows of every value held by two or more entries: eid, attr, value, code, group."""
        if not self.pairs:
            return pl.DataFrame(schema=DUP_SCHEMA)
        # A pair is unique scan-wide (a batch deduplicates its own, and entries are numbered
        # scan-wide), so a hash seen twice is held by two entries. Sorted, repeats are neighbours.
        hashes = pl.concat([p["h"] for p in self.pairs]).sort()
        shared = hashes.filter(hashes == hashes.shift(1)).unique().implode()
        exact = (
            pl.scan_ipc(self._files)
            .filter(c("h").is_in(shared))
            .with_columns(c("attr").cast(pl.String), c("code").cast(pl.String))
            .collect()
        )
        if not exact.height:
            return pl.DataFrame(schema=DUP_SCHEMA)
        # The same key expressions as the batches used, group by group (a few (attr, code) pairs).
        exact = pl.concat(
            part.with_columns(k=key_of(str(attr), str(code), _LOW))
            for (attr, code), part in exact.partition_by("attr", "code", as_dict=True).items()
        )
        groups = (
            exact.filter(c("eid").n_unique().over("code", "k") > 1)
            .with_columns(group=pl.format("{}:{}", c("code"), c("k")))
            .select("eid", "attr", "value", "code", "group")
        )
        return groups.cast(DUP_SCHEMA)  # type: ignore[arg-type]
