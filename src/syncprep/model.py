"""The plain data that flows through syncprep: entries in, findings out.

Everything here is a frozen value or a closed set of choices; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class ObjectKind(StrEnum):
    """The directory object kinds that Microsoft 365 sync cares about."""

    USER = "user"
    CONTACT = "contact"
    GROUP = "group"


class ErrorType(StrEnum):
    """The ERROR column: IdFix's names, plus this project's own (RULES.md §6)."""

    CHARACTER = "character"
    FORMAT = "format"
    LENGTH = "length"
    BLANK = "blank"
    DUPLICATE = "duplicate"
    TOPLEVELDOMAIN = "topleveldomain"
    DOMAINPART = "domainpart"
    LOCALPART = "localpart"
    UNVERIFIEDDOMAIN = "unverifieddomain"
    WHITESPACE = "whitespace"
    PRIMARY = "primary"
    LARGEOBJECT = "largeobject"
    RESERVED = "reserved"
    ANCHOR = "anchor"


class Severity(StrEnum):
    """An error makes sync fail or lose data; a warning is a risk worth a look."""

    ERROR = "error"
    WARNING = "warning"


class Safety(StrEnum):
    """How far a suggested fix can be trusted without a human looking at it.

    Ordered like ruff's applicability: ``safe`` fixes can be accepted in bulk,
    ``unsafe`` ones change an address or sign-in name, ``manual`` ones have no
    automatic value at all.
    """

    SAFE = "safe"
    UNSAFE = "unsafe"
    MANUAL = "manual"


class Action(StrEnum):
    """What to do with a finding (the PROPOSEDACTION / ACTION columns)."""

    EDIT = "EDIT"
    REMOVE = "REMOVE"
    COMPLETE = "COMPLETE"
    UNDO = "UNDO"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory object as a source read it.

    ``attributes`` maps the lower-case attribute name (no options such as
    ``;binary``) to every value, in the order the source gave them. Text values
    are ``str``; binary attributes (objectGUID, objectSid, certificates, photos)
    are ``bytes``.
    """

    dn: str
    attributes: Mapping[str, tuple[str | bytes, ...]] = field(default_factory=dict)

    def get(self, name: str) -> tuple[str | bytes, ...]:
        return self.attributes.get(name.lower(), ())

    def first(self, name: str) -> str | bytes | None:
        values = self.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Holder:
    """One object holding a duplicated value, and in which attribute."""

    dn: str
    attribute: str
    object_class: ObjectKind

    def to_dict(self) -> dict[str, str]:
        return {"dn": self.dn, "attribute": self.attribute, "object_class": self.object_class.value}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem value: one per (object, attribute, value), with all its error types."""

    dn: str
    cn: str
    object_class: ObjectKind
    attribute: str
    value: str
    errors: tuple[ErrorType, ...]
    rule: str
    rules: tuple[str, ...]
    severity: Severity
    update: str | None
    safety: Safety
    action: Action
    holders: tuple[Holder, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        """The JSON/JSONL contract (see README), plus ``severity`` and ``note``."""
        return {
            "dn": self.dn,
            "cn": self.cn,
            "object_class": self.object_class.value,
            "attribute": self.attribute,
            "value": self.value,
            "errors": [e.value for e in self.errors],
            "rule": self.rule,
            "update": self.update,
            "safety": self.safety.value,
            "action": self.action.value,
            "holders": [h.to_dict() for h in self.holders],
            "severity": self.severity.value,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """An object left out of the scan, and why (RULES.md §1)."""

    dn: str
    reason: str
