"""Which DNS domains are routable, verified or reserved (RULES.md §2, §4).

The set of public top-level domains comes from the Public Suffix List that the
``publicsuffixlist`` package ships and keeps current: never a hand-kept list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from publicsuffixlist import PSLFILE

from .errors import ConfigError

# Names that the PSL lists or that look like TLDs but that mail can never reach: RFC 6761/6762
# special-use names, ICANN's private-use `.internal`, and names ICANN will never delegate because
# so many private networks already use them (`.corp`, `.home`, `.mail`).
# Ex) "arpa" is in the PSL's ICANN section, but "me@anything.arpa" is not a mailbox.
SPECIAL_USE_TLDS = frozenset(
    {
        "arpa",
        "invalid",
        "local",
        "localhost",
        "onion",
        "test",
        "example",
        "internal",
        "home",
        "corp",
        "lan",
        "localdomain",
        "mail",
        "alt",
        "intranet",
        "private",
        "domain",
        "workgroup",
    }
)

DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# A syntactically valid host name: labels of a-z 0-9 -, not starting or ending with '-'.
DNS_NAME_RE = re.compile(rf"^{DNS_LABEL}(?:\.{DNS_LABEL})*$", re.IGNORECASE)


def _to_ascii_label(label: str) -> str:
    if label.isascii():
        return label
    return "xn--" + label.encode("punycode").decode("ascii")


@cache
def public_tlds() -> frozenset[str]:
    """Top-level labels of the ICANN section of the Public Suffix List, lower case, IDNs in punycode."""
    tlds: set[str] = set()
    in_icann = False
    with open(PSLFILE, encoding="utf-8") as psl:
        for raw in psl:
            line = raw.strip()
            if line.startswith("// ===BEGIN ICANN DOMAINS==="):
                in_icann = True
            elif line.startswith("// ===END ICANN DOMAINS==="):
                break
            elif in_icann and line and not line.startswith("//"):
                label = line.lstrip("!*.").rsplit(".", 1)[-1].lower()
                if label:
                    tlds.add(_to_ascii_label(label))
    return frozenset(tlds - SPECIAL_USE_TLDS)


@cache
def tld_alternation(longest: int = 63) -> str:
    """A regex alternation of the public TLDs of at most ``longest`` characters, longest first.

    Ex) "(?:xn--vermgensberatung-pwb|...|com|uk)"
    """
    tlds = sorted((t for t in public_tlds() if len(t) <= longest), key=lambda t: (-len(t), t))
    return "(?:" + "|".join(tlds) + ")"


def is_valid_dns_name(name: str) -> bool:
    """Syntax only: labels 1-63 characters of a-z 0-9 -, total at most 253."""
    return len(name) <= 253 and DNS_NAME_RE.match(name) is not None


def is_routable(domain: str) -> bool:
    """A valid DNS name of two labels or more whose top-level label is a public TLD."""
    domain = domain.lower()
    if not is_valid_dns_name(domain) or "." not in domain:
        return False
    return domain.rsplit(".", 1)[1] in public_tlds()


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    """What the tenant knows about its own domains.

    ``verified``: the tenant's verified domains (subdomains of one count as verified);
    empty means unknown, and then no ``unverifieddomain`` check runs.
    ``tenants``: the tenant's ``<name>.onmicrosoft.com`` names, whose addresses are normal.
    """

    verified: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()

    @classmethod
    def build(cls, verified: Iterable[str] = (), tenant: str | None = None) -> DomainPolicy:
        domains: set[str] = set()
        tenants: set[str] = set()
        for raw in verified:
            d = raw.strip().strip(".").lower()
            if not d:
                continue
            if not is_valid_dns_name(d) or "." not in d:
                raise ConfigError(f"verified domain {raw!r} is not a valid DNS name")
            domains.add(d)
            if d.endswith(".onmicrosoft.com"):
                tenants.add(d.removesuffix(".onmicrosoft.com").removesuffix(".mail"))
        if tenant:
            name = tenant.strip().lower().removesuffix(".onmicrosoft.com").removesuffix(".mail")
            if not re.fullmatch(DNS_LABEL, name):
                raise ConfigError(f"tenant name {tenant!r} is not a valid onmicrosoft.com label")
            tenants.add(name)
        # The tenant's own onmicrosoft.com names are always verified.
        if domains:
            for t in tenants:
                domains.add(f"{t}.onmicrosoft.com")
                domains.add(f"{t}.mail.onmicrosoft.com")
        return cls(frozenset(domains), frozenset(tenants))

    def is_verified(self, domain: str) -> bool:
        if not self.verified:
            return True
        d = domain.lower()
        return any(d == v or d.endswith("." + v) for v in self.verified)
