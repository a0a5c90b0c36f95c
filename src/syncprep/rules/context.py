"""The settings every rule reads: profile, tenant domains, thresholds (one frozen value)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from ..domains import DomainPolicy, is_routable
from ..errors import ConfigError
from ..schema import MAX_PROXY_ADDRESSES

PROFILES = ("m365", "dedicated")
EXCLUSION_SETS = ("entra", "idfix", "none")


@dataclass(frozen=True)
class CheckContext:
    """What a scan was asked to check, shared by every rule and fix."""

    profile: str = "m365"
    domains: DomainPolicy = field(default_factory=DomainPolicy)
    upn_suffix_map: tuple[tuple[str, str], ...] = ()
    exclusions: str = "entra"
    strict_ascii: bool = False
    max_proxy_addresses: int = MAX_PROXY_ADDRESSES

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}: choose one of {', '.join(PROFILES)}")
        if self.exclusions not in EXCLUSION_SETS:
            raise ConfigError(f"unknown exclusions {self.exclusions!r}: choose one of {', '.join(EXCLUSION_SETS)}")

    @cached_property
    def verified_suffix_pattern(self) -> str | None:
        """Matches a domain that is verified or below a verified one; None when not known."""
        if not self.domains.verified:
            return None
        names = "|".join(re.escape(d) for d in sorted(self.domains.verified))
        return rf"(?i)(?:^|[.@])(?:{names})$"

    @cached_property
    def own_tenant_pattern(self) -> str | None:
        """Matches the tenant's own onmicrosoft.com domains; None when the tenant is not known.

        Ex) tenant "contoso": "contoso.mail.onmicrosoft.com" is the tenant's routing domain,
        "fabrikam.onmicrosoft.com" belongs to someone else and is reserved.
        """
        if not self.domains.tenants:
            return None
        own = "|".join(re.escape(t) for t in sorted(self.domains.tenants))
        return rf"^(?:{own})(?:\.mail)?\.onmicrosoft\.com$"

    def map_upn_suffix(self, domain: str) -> str | None:
        """The replacement for a UPN suffix from --upn-suffix-map, if any."""
        d = domain.lower()
        for old, new in self.upn_suffix_map:
            if d == old:
                return new
        return None


def parse_suffix_map(items: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """Parse ``old=new`` pairs. Ex) "contoso.local=contoso.com"."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        old, sep, new = item.partition("=")
        old, new = old.strip().lower().strip("."), new.strip().lower().strip(".")
        if not sep or not old or not new:
            raise ConfigError(f"--upn-suffix-map expects old=new, got {item!r}")
        if not is_routable(new):
            raise ConfigError(f"--upn-suffix-map: {new!r} is not a routable domain, so it cannot be a UPN suffix")
        pairs.append((old, new))
    return tuple(pairs)
