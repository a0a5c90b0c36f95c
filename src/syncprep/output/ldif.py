"""LDIF (RFC 2849) output: content records now, change records later, from the same value lines.

Every line written is plain ASCII: any value LDIF cannot carry as is (non-ASCII text, edge
spaces, line breaks, binary data) goes out base64-encoded, so the file reads back to exactly the
values it was written from, whatever the reader's idea of an encoding is.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import TextIO

from ..model import Entry
from ..schema import canonical

# ldapsearch and ldifde both fold at 76 columns.
DEFAULT_FOLD = 76

# The narrowest fold that keeps "dn: " / "dn:: " whole on the record's first line. Narrower folds
# are legal LDIF, but readers (ours included) find records by that tag: "d" + "\n n: CN=x" is
# rarely understood.
MIN_FOLD = len("dn:: ") + 1

# RFC 2849 SAFE-INIT-CHAR excludes these as a value's first character: a leading space would be
# read as the separator's fill, ":" as the base64 marker, "<" as the URL marker.
_UNSAFE_FIRST = frozenset(" :<")
# RFC 2849 SAFE-CHAR: ASCII except NUL, LF and CR.
_UNSAFE_ANYWHERE = frozenset("\x00\n\r")


def needs_base64(value: str) -> bool:
    """Whether RFC 2849 requires (or, for a trailing space, advises) base64 for this text.

    Ex) "  Bob " (edge spaces), ":x" and "<x" (read as markers), "Zoë" (not ASCII) and
    "a\\nb" (a line break) all need it; "smtp:bob@contoso.com" does not.
    """
    if not value:
        return False
    if value[0] in _UNSAFE_FIRST or value[-1] == " ":
        return True
    return not value.isascii() or any(ch in _UNSAFE_ANYWHERE for ch in value)


def attribute_name(attr: str) -> str:
    """AD's spelling of an attribute name, keeping any options.

    Ex) "mailnickname" -> "mailNickname", "usercertificate;binary" -> "userCertificate;binary".
    """
    base, sep, options = attr.partition(";")
    return canonical(base.lower()) + sep + options


def fold_line(line: str, fold: int = DEFAULT_FOLD) -> str:
    """Fold one logical line at ``fold`` columns (0 = never): continuations start with a space.

    Every physical line, the leading space included, is at most ``fold`` characters, as with
    ``ldapsearch -o ldif-wrap=76``. Ex) with fold=10, "cn: abcdefghijk" becomes
    "cn: abcdef\\n ghijk".
    """
    _check_fold(fold)
    if fold == 0 or len(line) <= fold:
        return line
    parts = [line[:fold]]
    step = fold - 1
    parts.extend(" " + line[i : i + step] for i in range(fold, len(line), step))
    return "\n".join(parts)


def format_value(attr: str, value: str | bytes, *, fold: int = DEFAULT_FOLD) -> str:
    """One attribute value as LDIF line(s), without the final newline.

    Text goes out as is when RFC 2849 allows it and base64-encoded (``attr:: ``) when it does not;
    bytes always go out base64-encoded. The same lines serve content records ("dn: ..." included:
    pass ``attr="dn"``) and the attribute lines of change records.

    Ex) format_value("displayname", "  Bob ") == "displayName:: ICBCb2Ig"
    """
    name = attribute_name(attr)
    if isinstance(value, (bytes, bytearray, memoryview)):
        line = f"{name}:: {base64.b64encode(bytes(value)).decode('ascii')}"
    elif not isinstance(value, str):
        raise TypeError(f"value of {name!r} must be str or bytes, not {type(value).__name__}")
    elif needs_base64(value):
        # surrogateescape gives back the original bytes of text a source read with that handler
        # (see sources.base.as_text); any other lone surrogate cannot be written and raises.
        raw = value.encode("utf-8", errors="surrogateescape")
        line = f"{name}:: {base64.b64encode(raw).decode('ascii')}"
    elif value:
        line = f"{name}: {value}"
    else:
        line = f"{name}:"  # an empty value; "attr: " would leave a trailing space
    return fold_line(line, fold)


def write_entries(entries: Iterable[Entry], out: TextIO, *, fold: int = DEFAULT_FOLD) -> int:
    """Write entries as an LDIF file of content records and return how many were written.

    The file starts with ``version: 1``; each record starts with its ``dn:`` line, then every
    value of every attribute in the entry's order, and records are separated by a blank line.
    """
    _check_fold(fold)
    out.write("version: 1\n")
    count = 0
    for entry in entries:
        lines = [format_value("dn", entry.dn, fold=fold)]
        for attr, values in entry.attributes.items():
            if attr.lower() == "dn":
                # A second "dn:" line would start a new record: the dn is written once, above.
                continue
            lines.extend(format_value(attr, v, fold=fold) for v in values)
        out.write("\n" + "\n".join(lines) + "\n")
        count += 1
    return count


def _check_fold(fold: int) -> None:
    if fold != 0 and fold < MIN_FOLD:
        raise ValueError(f"fold must be 0 (no folding) or at least {MIN_FOLD}, not {fold}")
