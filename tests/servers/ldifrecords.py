"""A small LDIF content-record reader and DN splitter for the test-server scripts and tests.

Standard library only (seed_samba.py runs it with Debian's python3, the tests with the venv's).
Values stay bytes, exactly as the file holds them (base64 decoded); `changetype` and `version`
lines and comments are left out.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

Record = list[tuple[str, bytes]]  # (attribute as written, value); the first pair is ("dn", ...)


def read_ldif(path: str, limit: int | None = None) -> list[Record]:
    """The content records of a file (the first `limit` of them, reading no further)."""
    out: list[Record] = []
    for record in iter_ldif(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(record)
    return out


def iter_ldif(path: str) -> Iterator[Record]:
    current: list[bytes] = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            line = line[:-1] if line.endswith(b"\r") else line
            if line.startswith(b" ") and current:
                current[-1] += line[1:]
            elif not line:
                if current:
                    record = _record(current)
                    if record:
                        yield record
                current = []
            elif not line.startswith(b"#"):
                current.append(line)
    if current:
        record = _record(current)
        if record:
            yield record


def _record(lines: list[bytes]) -> Record:
    pairs: Record = []
    for line in lines:
        name, _, rest = line.partition(b":")
        if rest.startswith(b":"):
            value = base64.b64decode(rest[1:].strip())
        elif rest.startswith(b"<"):
            raise ValueError(f"URL values are not supported: {line[:80]!r}")
        else:
            value = rest[1:] if rest.startswith(b" ") else rest
        pairs.append((name.decode("ascii").strip(), value))
    pairs = [p for p in pairs if p[0].lower() not in ("version", "changetype")]
    if pairs and pairs[0][0].lower() != "dn":
        raise ValueError(f"record without dn: {pairs[0]!r}")
    return pairs


def attributes(record: Record) -> dict[str, list[bytes]]:
    """A record's values by lower-case attribute name (without the dn)."""
    out: dict[str, list[bytes]] = {}
    for name, value in record[1:]:
        out.setdefault(name.lower(), []).append(value)
    return out


def split_dn(dn: str) -> list[str]:
    """RDNs of a DN string, split at unescaped commas."""
    parts, cur, i = [], "", 0
    while i < len(dn):
        if dn[i] == "\\" and i + 1 < len(dn):
            cur += dn[i : i + 2]
            i += 2
            continue
        if dn[i] == ",":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += dn[i]
        i += 1
    parts.append(cur.strip())
    return parts
