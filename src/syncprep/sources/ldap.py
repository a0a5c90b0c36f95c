"""A live directory as a source: users, groups and contacts read over LDAP.

``ldap://HOST[:PORT]``, ``ldaps://``, and the global catalog (``gc://`` on 3268, ``gcs://`` on 3269,
the whole forest). The search asks only for the attributes the selected rules need, pages with the
simple paged results control, and fetches the rest of any attribute the server returned in ranges
(``member;range=0-1499``). Values become the same batch frames as LDIF and CSV exports, so a live
scan and a scan of an export of the same objects give the same findings.

Errors (unreachable host, TLS, credentials, rights, size limits) become one ``SourceError`` line
saying what to try. The password lives in a ``Secret`` and is never part of a message or repr.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from itertools import chain, repeat

import polars as pl

from ..errors import ConfigError, SourceError, SyncprepError
from ..model import Entry
from ..runtime import paused_gc
from ..schema import BINARY_ATTRIBUTES, canonical
from .base import Progress, ahead
from .ldapclient import (
    AUTH_METHODS,
    CLIENTS,
    PAGED_RESULTS,
    Client,
    Credentials,
    Endpoint,
    LdapSettings,
    Record,
    Secret,
    describe,
    is_ldap_url,
    open_client,
    parse_url,
)

# What Entra Connect synchronises: users (inetOrgPerson is a user subclass), groups and contacts.
# Computers are users too; the engine skips them, the filter spares reading them at all.
OBJECT_FILTER = "(&(|(objectClass=user)(objectClass=group)(objectClass=contact))(!(objectClass=computer)))"
BATCH_ENTRIES = 20_000
PROGRESS_EVERY = 500
_RANGE = re.compile(r"^(?P<attr>[^;]+)(?P<opts>(?:;[^;]*)*?);range=(?P<lo>\d+)-(?P<hi>\d+|\*)(?P<rest>(?:;.*)?)$", re.I)
Warn = Callable[[str], None]


def escape_filter_value(value: str) -> str:
    """RFC 4515 escaping for a value typed into a filter; '*' stays a wildcard.

    Ex) 'R&D (Paris)\\' -> 'R&D \\28Paris\\29\\5c'
    """
    return value.translate(_FILTER_ESCAPES)


_FILTER_ESCAPES = {ord(ch): f"\\{ord(ch):02x}" for ch in "()\\\0"}


_SIMPLE_ITEM = re.compile(r"^\s*(?P<attr>[A-Za-z][\w.-]*(?:;[\w-]+)*)\s*(?P<op>=|~=|>=|<=)(?P<value>.*)$", re.S)


def user_filter(text: str | None) -> str | None:
    """The --filter text as a parenthesised RFC 4515 filter.

    A full filter ('(department=Sales)', '(|(a=1)(b=2))') is checked and kept. A bare 'attr=value'
    has its value escaped, so 'department=R&D (Paris)' means what it says.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not text.startswith("("):
        match = _SIMPLE_ITEM.match(text)
        if match is None:
            raise ConfigError(
                f"--filter {text!r} is not an LDAP filter (e.g. '(department=Sales)' or 'company=Contoso')"
            )
        text = f"({match['attr']}{match['op']}{escape_filter_value(match['value'].strip())})"
    _check_filter(text)
    return text


def _check_filter(text: str) -> None:
    from ldap3.core.exceptions import LDAPInvalidFilterError
    from ldap3.operation.search import parse_filter

    try:
        parse_filter(text, None, auto_escape=False, auto_encode=True, validator=None, check_names=False)
    except (LDAPInvalidFilterError, IndexError, ValueError) as exc:
        raise ConfigError(f"--filter {text!r} is not a valid LDAP filter: {exc}") from None
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            break
    if depth != 0:
        raise ConfigError(f"--filter {text!r} is not a valid LDAP filter: unbalanced parentheses")


def _frame(eids: list[int], names: list[str], lists: list[list[bytes]]) -> pl.DataFrame:
    """A batch frame from one row per (entry, attribute) with its raw values (binary ones in base64).

    One join, then one UTF-8 check and one split in Polars, do the work of a decode per value (no
    Python string per value). When some value is not UTF-8, the text is decoded in Python instead:
    a value keeps what can be read and shows the rest as U+FFFD. NUL never occurs in the text
    attributes AD holds, but if one did the split would not line up, and each value is decoded alone.
    """
    raws = list(chain.from_iterable(lists))
    joined = b"\0".join(raws)
    try:
        values = pl.Series("value", [joined], dtype=pl.Binary).cast(pl.String).str.split("\0").explode()
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        values = pl.Series("value", joined.decode("utf-8", "replace").split("\0"), dtype=pl.String)
    if len(values) != len(raws):
        values = pl.Series("value", [raw.decode("utf-8", "replace") for raw in raws], dtype=pl.String)
    counts = pl.Series("n", list(map(len, lists)), dtype=pl.UInt32)
    spread = (
        pl.DataFrame({"eid": eids, "attr": names}, schema={"eid": pl.UInt32, "attr": pl.String})
        .with_columns(counts)
        .filter(pl.col("n") > 0)
        .select(pl.col("eid").repeat_by("n").explode(), pl.col("attr").repeat_by("n").explode().str.to_lowercase())
    )
    return spread.with_columns(values)


class LdapSource:
    """Users, groups and contacts of one directory server (or a whole forest through a global catalog)."""

    def __init__(self, endpoint: Endpoint, settings: LdapSettings, warn: Warn | None = None) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self._warn = warn or (lambda _m: None)

    @property
    def name(self) -> str:
        return self.endpoint.url

    @property
    def size(self) -> int | None:
        return None

    # -- reading --------------------------------------------------------------------------------

    def batches(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[pl.DataFrame]:
        # A reader thread waits for the server and builds the next batch while the engine checks this one.
        with paused_gc():
            yield from ahead(lambda: self._frames(attributes, progress), 2, "syncprep-ldap-reader")

    def _frames(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[pl.DataFrame]:
        # Python works per entry, not per attribute or value: keys and value lists are taken whole;
        # flattening, decoding and spreading to rows happen in C and Polars (see _frame).
        eids: list[int] = []
        names: list[str] = []
        lists: list[list[bytes]] = []
        known: set[str] = set()  # attribute names as the server spells them
        binary: set[str] = set()  # those of them that hold bytes
        n = 0
        for dn, entry in self._records(attributes, progress):
            new = entry.keys() - known
            if new:
                known |= new
                binary |= {a for a in new if a.lower() in BINARY_ATTRIBUTES}
            for attr in entry.keys() & binary:
                entry[attr] = [base64.b64encode(v) for v in entry[attr]]
            eids.extend(repeat(n, len(entry) + 1))
            names.append("dn")
            names.extend(entry.keys())
            lists.append([dn.encode("utf-8")])
            lists.extend(entry.values())
            n += 1
            if n >= BATCH_ENTRIES:
                yield _frame(eids, names, lists)
                eids, names, lists, n = [], [], [], 0
        if n:
            yield _frame(eids, names, lists)

    def entries(self) -> Iterator[Entry]:
        for dn, entry in self._records(None, lambda _n: None):
            attributes: dict[str, tuple[str | bytes, ...]] = {}
            for attr, raws in entry.items():
                low = attr.lower()
                attributes[canonical(low)] = tuple(
                    raw if low in BINARY_ATTRIBUTES else raw.decode("utf-8", "replace") for raw in raws
                )
            yield Entry(dn, attributes)

    def _records(self, attributes: frozenset[str] | None, progress: Progress) -> Iterator[Record]:
        """(dn, {lower-case attribute: [raw values]}) for every object, all ranges fetched."""
        client = open_client(self.endpoint, self.settings)
        try:
            client.connect()
            root = client.root_dse()
            base = self._base(root)
            requested = sorted(attributes) if attributes is not None else ["*"]
            if self.endpoint.global_catalog and attributes is not None:
                self._check_partial_attribute_set(client, root, requested)
            wanted = OBJECT_FILTER if self.settings.filter is None else f"(&{OBJECT_FILTER}{self.settings.filter})"
            page_size = self.settings.page_size
            if page_size and PAGED_RESULTS not in root.get("supportedcontrol", ()):
                self._warn(f"{self.name}: the server does not offer paged results; reading without paging")
                page_size = 0
            unreported = 0
            plain: set[str] = set()  # attribute names seen without options
            for dn, entry in client.search(base, wanted, requested, page_size):
                new = entry.keys() - plain
                if new:
                    plain |= {a for a in new if ";" not in a}
                    if any(";" in a for a in new):  # ranged (member;range=0-1499) or tagged values: rare
                        entry = self._untag(client, dn, entry)
                yield dn, entry
                unreported += 1
                if unreported == PROGRESS_EVERY:
                    progress(unreported)
                    unreported = 0
            progress(unreported)
        except SyncprepError:
            raise
        except Exception as exc:
            error = describe(client, exc, self.endpoint, self.settings)
            if error is None:
                raise
            raise error from None
        finally:
            client.close()

    def _base(self, root: dict[str, list[str]]) -> str:
        explicit = self.settings.base or self.endpoint.base
        if explicit is not None:
            return explicit
        if self.endpoint.global_catalog:
            return ""  # the whole forest
        for key in ("defaultnamingcontext", "namingcontexts"):
            if root.get(key):
                return root[key][0]
        raise SourceError(
            "the server did not say which naming context to read; give one with --base (e.g. DC=contoso,DC=com)",
            source=self.name,
        )

    def _untag(self, client: Client, dn: str, entry: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
        """Fetch the remaining ranges, then file every value under its attribute's bare name."""
        for name in [a for a in entry if ";range=" in a.lower()]:
            self._complete_range(client, dn, name, entry)
        out: dict[str, list[bytes]] = {}
        for name, values in entry.items():
            out.setdefault(name.split(";", 1)[0], []).extend(values)
        return out

    def _complete_range(self, client: Client, dn: str, name: str, entry: dict[str, list[bytes]]) -> None:
        """Replace 'member;range=0-1499' by all of member's values, asking for the next ranges."""
        match = _RANGE.match(name)
        if match is None:  # not a range after all: the values stay, filed under the bare name
            return
        values = entry.pop(name)
        attr = match["attr"] + match["opts"]
        hi = match["hi"]
        while hi != "*":
            start = int(hi) + 1
            got = client.read_attribute(dn, f"{attr};range={start}-*")
            step = next(((k, v) for k, v in got.items() if k.lower().startswith(attr.lower() + ";range=")), None)
            if step is None:
                break
            more = _RANGE.match(step[0])
            values.extend(step[1])
            if more is None:
                break
            hi = more["hi"]
        entry[attr] = values

    def _check_partial_attribute_set(self, client: Client, root: dict[str, list[str]], requested: list[str]) -> None:
        schemas = root.get("schemanamingcontext")
        if not schemas:
            return
        schema = schemas[0]
        known = client.attribute_schema(schema, requested)
        # Attributes the forest does not define at all (no Exchange schema, say) are empty everywhere anyway.
        missing = [a for a in requested if known.get(a) is False and a not in ("objectclass", "cn")]
        if missing:
            self._warn(
                f"{self.name}: the global catalog does not hold {', '.join(canonical(a) for a in missing)}: "
                "checks of these attributes see no values; scan each domain with ldap:// to include them"
            )


__all__ = [
    "AUTH_METHODS",
    "CLIENTS",
    "PAGED_RESULTS",
    "Credentials",
    "LdapSettings",
    "LdapSource",
    "Secret",
    "is_ldap_url",
    "parse_url",
    "user_filter",
]
