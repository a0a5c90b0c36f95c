"""Sources: where entries come from. ``open_source`` turns a command-line word into one."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ..errors import SourceError
from .base import Source
from .ldap import LdapSettings, LdapSource, Warn, is_ldap_url, parse_url
from .ldif import LdifSource

DEMO = "demo"
# The sample organisation's tenant: used for 'demo' when no tenant settings are given.
DEMO_TENANT = "contoso"
DEMO_VERIFIED_DOMAINS = ("contoso.com", "fabrikam.com")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def demo_path() -> Path:
    """The bundled sample directory (an LDIF export of a fictional organisation)."""
    return Path(str(resources.files("syncprep") / "data" / "demo.ldif"))


def open_source(
    spec: str,
    *,
    encoding: str | None = None,
    separator: str | None = None,
    ldap: LdapSettings | None = None,
    warn: Warn | None = None,
) -> Source:
    """A source for a path, the word ``demo``, or a directory URL (ldap://, ldaps://, gc://, gcs://).

    Files ending in .csv are CSV exports; .ldif/.ldf are LDIF; anything else is sniffed.
    """
    if spec == DEMO:
        return LdifSource(demo_path())
    if is_ldap_url(spec):
        return LdapSource(parse_url(spec), ldap or LdapSettings(), warn)
    if _SCHEME.match(spec):
        scheme = spec.split(":", 1)[0].lower()
        raise SourceError(
            f"'{scheme}://' is not a source syncprep reads: use ldap://, ldaps://, gc://, gcs://, "
            "or an LDIF or CSV export",
            source=spec,
        )
    path = Path(spec)
    if not path.exists():
        raise SourceError("no such file", source=spec)
    if path.is_dir():
        raise SourceError("is a directory; give the export file itself", source=spec)
    suffix = path.suffix.lower()
    if suffix == ".csv" or (suffix not in (".ldif", ".ldf") and _looks_like_csv(path)):
        from .csv import CsvSource

        return CsvSource(path, encoding=encoding, separator=separator)
    return LdifSource(path)


def _looks_like_csv(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", source=str(path)) from None
    for enc in ("utf-8-sig", "utf-16"):
        try:
            text = head.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = head.decode("latin-1")
    for line in text.splitlines():
        line = line.strip()
        if not line or (line.startswith("#") and not line.lower().startswith("#type")):
            continue
        return not re.match(r"(?i)^(dn|version)::?", line)
    return False


__all__ = [
    "DEMO",
    "DEMO_TENANT",
    "DEMO_VERIFIED_DOMAINS",
    "LdapSettings",
    "LdapSource",
    "LdifSource",
    "Source",
    "demo_path",
    "open_source",
]
