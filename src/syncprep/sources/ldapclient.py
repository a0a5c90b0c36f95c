"""Connections to directory servers: where, how to sign in, and two client libraries behind one face.

``ldap3`` is pure Python and installs everywhere (Windows included) without a compiler; it is the
default. ``python-ldap`` wraps OpenLDAP's C library and reads several times faster; it is used when
installed (``pip install 'syncprep[fast]'``) and the sign-in method allows it (it has no NTLM).

Every failure becomes one ``SourceError`` line that says what to try; the password lives in a
``Secret`` and is never part of a message, repr or log line.
"""

from __future__ import annotations

import collections
import contextlib
import math
import re
import ssl
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, SourceError

SCHEMES = {
    # scheme: (default port, TLS from the first byte, global catalog)
    "ldap": (389, False, False),
    "ldaps": (636, True, False),
    "gc": (3268, False, True),
    "gcs": (3269, True, True),
}

AUTH_METHODS = ("simple", "ntlm", "kerberos", "anonymous")

PAGED_RESULTS = "1.2.840.113556.1.4.319"


class Secret:
    """A password that never shows itself in a repr, str or error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True)
class Endpoint:
    """Where to connect, parsed from ``scheme://host[:port][/base-dn]``."""

    url: str
    scheme: str
    host: str
    port: int
    tls: bool
    global_catalog: bool
    base: str | None = None


def is_ldap_url(spec: str) -> bool:
    return spec.split("://", 1)[0].lower() in SCHEMES and "://" in spec


def parse_url(spec: str) -> Endpoint:
    """Ex) 'gc://dc1.contoso.com' -> port 3268, no TLS, whole forest; 'ldaps://[::1]:1636' -> ::1, 1636, TLS."""
    parts = urlsplit(spec)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{spec}: unknown scheme {scheme!r}; use ldap://, ldaps://, gc:// or gcs://")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{parts.scheme}://{parts.hostname or ''}: credentials do not belong in the URL "
            "(they would show in the process list); use --user and --password-env/--password-file"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"{spec}: the port is not a number between 1 and 65535") from None
    if not host:
        raise ConfigError(f"{spec}: no host name (e.g. {scheme}://dc1.contoso.com)")
    default_port, tls, gc = SCHEMES[scheme]
    base = unquote(parts.path.lstrip("/")) or None
    if parts.query or parts.fragment:
        raise ConfigError(f"{spec}: search options in the URL are not supported; use --base and --filter")
    shown = f"{scheme}://{host if ':' not in host else '[' + host + ']'}:{port or default_port}"
    return Endpoint(shown, scheme, host, port or default_port, tls, gc, base)


@dataclass(frozen=True)
class Credentials:
    """How to bind. ``user`` is a UPN, DOMAIN\\name or DN; Kerberos takes the ticket cache."""

    method: str = "kerberos"
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LdapSettings:
    """Connection and search options shared by every LDAP URL of one scan."""

    credentials: Credentials = field(default_factory=Credentials)
    base: str | None = None
    filter: str | None = None
    page_size: int = 1000
    start_tls: bool = False
    ca_file: str | None = None
    insecure: bool = False
    timeout: float = 30.0
    allow_plain_bind: bool = False
    client: str = "auto"


Record = tuple[str, dict[str, list[bytes]]]
CLIENTS = ("auto", "ldap3", "python-ldap")


class Client(Protocol):
    """What the LDAP source needs from a client library."""

    def connect(self) -> None: ...

    def root_dse(self) -> dict[str, list[str]]: ...

    def search(self, base: str, filt: str, attributes: list[str], page_size: int) -> Iterator[Record]: ...

    def read_attribute(self, dn: str, attribute: str) -> dict[str, list[bytes]]: ...

    def attribute_schema(self, schema_dn: str, names: list[str]) -> dict[str, bool]: ...

    def close(self) -> None: ...


Value = str | bytes
# One attribute's part of a modify request: delete exactly these values, then add these.
ModifyChange = tuple[str, Sequence[Value], Sequence[Value]]


@dataclass(frozen=True)
class Refusal:
    """A server's answer that refused one write: the LDAP result code, its name and the message."""

    code: int | None
    name: str
    message: str


class WriteClient(Client, Protocol):
    """What writing back needs on top of reading (both client classes have it)."""

    writable: bool
    sent: int

    def modify_many(
        self, requests: Iterable[tuple[str, Sequence[ModifyChange]]], window: int = 1
    ) -> Iterator[tuple[int, BaseException | None]]: ...

    def read_values(self, dn: str, attributes: list[str]) -> dict[str, list[bytes]] | None: ...

    def refusal(self, exc: BaseException) -> Refusal | None: ...

    def classify(self, exc: BaseException) -> tuple[Failure, str] | None: ...


def encode_value(value: Value) -> bytes:
    """A value as the server gets it: text as UTF-8 (bytes a source could not decode go back as they were)."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def _bare(name: str) -> str:
    """An attribute name as a key: lower case, without options. Ex) 'userCertificate;binary' -> 'usercertificate'."""
    return name.split(";", 1)[0].lower()


def open_client(endpoint: Endpoint, settings: LdapSettings) -> Client:
    """The client library for these settings: python-ldap when present and able, else ldap3."""
    choice = settings.client
    if choice == "auto":
        choice = "python-ldap" if _has_python_ldap() and settings.credentials.method != "ntlm" else "ldap3"
    if choice == "python-ldap":
        if not _has_python_ldap():
            raise ConfigError("--client python-ldap: not installed; pip install 'syncprep[fast]' (needs libldap)")
        if settings.credentials.method == "ntlm":
            raise ConfigError("--client python-ldap cannot sign in with NTLM; use --client ldap3 or --auth kerberos")
        return PythonLdapClient(endpoint, settings)
    return Ldap3Client(endpoint, settings)


def _has_python_ldap() -> bool:
    try:
        import ldap  # noqa: F401
    except ImportError:
        return False
    return True


def _check_plain_bind(endpoint: Endpoint, settings: LdapSettings) -> None:
    protected = endpoint.tls or settings.start_tls
    if settings.credentials.method == "simple" and not protected and not settings.allow_plain_bind:
        raise ConfigError(
            f"{endpoint.url}: a simple bind would send the password in clear text; "
            "use ldaps:// or --start-tls (or --allow-plain-bind if you really mean it)"
        )


class Failure(Enum):
    """What went wrong, whatever the client library called it."""

    UNTRUSTED = "untrusted certificate"
    NAME_MISMATCH = "certificate for another name"
    TLS = "TLS handshake"
    CONNECT = "cannot connect"
    NO_ANSWER = "no answer"
    CREDENTIALS = "bad credentials"
    PROTECTION = "protection required"
    RIGHTS = "insufficient rights"
    SIZE_LIMIT = "size limit"
    NO_BASE = "no such base"
    NOT_SIGNED_IN = "not signed in"
    NO_PAGING = "no paging"
    FILTER = "bad filter"
    KERBEROS = "kerberos"
    OTHER = "other"


def explain(failure: Failure, detail: str, endpoint: Endpoint, settings: LdapSettings) -> str:
    """One line that says what went wrong and what to try next."""
    where = f"{endpoint.host}:{endpoint.port}"
    detail = " ".join(detail.split())[:300]
    user = settings.credentials.user or "this account"
    if settings.credentials.method == "kerberos" and not settings.credentials.user:
        user = "your Kerberos principal"
    messages = {
        Failure.UNTRUSTED: f"the TLS certificate of {where} is not trusted (self-signed or from a private CA?): "
        "pass --ca-file with the CA certificate that issued it, or --insecure to skip the check (not recommended)",
        Failure.NAME_MISMATCH: f"the TLS certificate of {where} is not for {endpoint.host!r} but for {detail}: connect "
        "by one of those names (usually the server's full DNS name), or --insecure to skip the check (not recommended)",
        Failure.TLS: f"TLS with {where} failed ({detail}): check the port (LDAPS 636, global catalog over TLS 3269) "
        "and that the server has a certificate",
        Failure.CONNECT: f"cannot connect to {where} ({detail}): check the host name and port "
        "(LDAP 389, LDAPS 636, global catalog 3268/3269) and that no firewall is in the way",
        Failure.NO_ANSWER: f"{where} stopped answering ({detail}): try again, or raise --timeout "
        f"(now {settings.timeout:g} s)",
        Failure.CREDENTIALS: f"{where} refused the user name or password of {user}: check both, and that the "
        "account is neither locked nor expired",
        Failure.PROTECTION: f"{where} requires a protected connection for this sign-in: use ldaps:// or --start-tls",
        Failure.RIGHTS: f"{user} may not read these objects on {where}: use an account that can read users, "
        "groups and contacts, or narrow --base",
        Failure.SIZE_LIMIT: f"{where} stopped at its size limit, so the scan would be incomplete: keep --page-size "
        "at or below the server's page limit (1000 on AD), or scan smaller --base subtrees",
        Failure.NO_BASE: f"the search base is not on {where}, or {user} may not see it: check --base "
        "(e.g. DC=contoso,DC=com) and the account",
        Failure.NOT_SIGNED_IN: f"{where} answers only after a sign-in: use --user (with --password-env, "
        "--password-file or the prompt), or a Kerberos ticket from kinit",
        Failure.NO_PAGING: f"{where} does not allow {user} paged results ({detail}): use an account that may page, "
        "or scan without paging (--page-size 0) in --base subtrees small enough for the server's size limit",
        Failure.FILTER: f"{where} refused the search filter ({detail}): check --filter",
        Failure.KERBEROS: f"Kerberos sign-in to {where} failed ({detail}): run 'kinit' for a ticket, connect by the "
        "server's host name (not its IP address), or use --user with --auth simple over ldaps://",
        Failure.OTHER: f"{where}: {detail}",
    }
    return messages[failure]


def _needs_sign_in(low: str) -> bool:
    """AD: '...a successful bind must be completed...'; Samba: 'Operation unavailable without authentication'."""
    return "successful bind must be completed" in low or "without authentication" in low


def describe(client: Any, exc: BaseException, endpoint: Endpoint, settings: LdapSettings) -> SourceError | None:
    """The one-line error for a failure of ``client``, or None when it is not a directory failure."""
    failure = getattr(client, "classify", lambda _e: None)(exc) or _kerberos_failure(exc)
    if failure is None:
        return None
    failure = _paging_refused(*failure)
    if failure[0] in (Failure.CONNECT, Failure.TLS) and not isinstance(client, Ldap3Client):
        failure = _diagnose(endpoint, settings) or failure
    return SourceError(explain(failure[0], failure[1], endpoint, settings), source=endpoint.url)


def _paging_refused(failure: Failure, detail: str) -> tuple[Failure, str]:
    """A server that will not page for this account says so as a limit: tell it from a page size over the limit.

    Ex) OpenLDAP with size.prtotal=disabled: adminLimitExceeded "pagedResults control not allowed";
    a page size over its limit is adminLimitExceeded too, but "illegal pagedResults page size".
    """
    low = detail.lower()
    if (
        failure in (Failure.SIZE_LIMIT, Failure.OTHER)
        and "paged" in low
        and any(w in low for w in ("not allowed", "not supported", "unsupported"))
    ):
        return Failure.NO_PAGING, detail
    return failure, detail


def _kerberos_failure(exc: BaseException) -> tuple[Failure, str] | None:
    """GSSAPI errors come from the gssapi package, not the LDAP library."""
    module = type(exc).__module__.lower()
    if "gssapi" in module or "krb" in module:
        return Failure.KERBEROS, str(exc)
    return None


def _diagnose(endpoint: Endpoint, settings: LdapSettings) -> tuple[Failure, str] | None:
    """libldap says only "Can't contact LDAP server" when TLS fails; ldap3 tells why."""
    probe = Ldap3Client(endpoint, settings)
    try:
        probe.connect()
    except Exception as exc:
        found = probe.classify(exc)
        return found if found is not None and found[0] != Failure.OTHER else None
    finally:
        probe.close()
    return None


_CERT_WORDS = ("certificate verify failed", "certificate_verify_failed", "self-signed", "self signed")


def _name_mismatch(text: str) -> tuple[Failure, str] | None:
    """A trusted certificate for other names: the names it is for, from ldap3's or Python's message.
    (libldap only says it cannot connect: python-ldap's failures are diagnosed again through ldap3.)

    Ex) ldap3: "certificate {... 'subjectAltName': (('DNS', 'dc1.contoso.com'),)} doesn't match any name in
    ['10.0.0.5']"; Python: "Hostname mismatch, certificate is not valid for '10.0.0.5'".
    """
    low = text.lower()
    if not ("doesn't match" in low and "certificate" in low) and "hostname mismatch" not in low:
        return None
    names = re.findall(r"\('(?:DNS|IP Address)', '([^']*)'\)", text) or re.findall(r"\('commonName', '([^']*)'\)", text)
    return Failure.NAME_MISMATCH, ", ".join(dict.fromkeys(names)) or "other names"


class Ldap3Client:
    """The ldap3 library behind the Client face."""

    def __init__(self, endpoint: Endpoint, settings: LdapSettings) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.conn: Any = None
        self.writable = False  # set before connect() to write (modify_many); reading connections stay read-only
        self.sent = 0  # requests of the last modify_many handed to the connection

    def connect(self) -> None:
        import ldap3
        from ldap3.core.exceptions import LDAPBindError, LDAPSessionTerminatedByServerError, LDAPSocketReceiveError

        endpoint, settings = self.endpoint, self.settings
        _check_plain_bind(endpoint, settings)
        creds = settings.credentials
        tls = None
        if endpoint.tls or settings.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_NONE if settings.insecure else ssl.CERT_REQUIRED,
                ca_certs_file=settings.ca_file,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        server = ldap3.Server(
            endpoint.host,
            port=endpoint.port,
            use_ssl=endpoint.tls,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=math.ceil(settings.timeout),
        )
        kwargs: dict[str, Any] = {
            "receive_timeout": math.ceil(settings.timeout),  # ldap3 packs it as a whole number
            "auto_bind": ldap3.AUTO_BIND_NONE,
            "read_only": not self.writable,
            "raise_exceptions": True,
            "check_names": False,
            "return_empty_attributes": False,
        }
        if creds.method == "simple":
            kwargs.update(authentication=ldap3.SIMPLE, user=creds.user, password=_reveal(creds))
        elif creds.method == "ntlm":
            kwargs.update(authentication=ldap3.NTLM, user=_ntlm_user(creds.user), password=_reveal(creds))
        elif creds.method == "kerberos":
            try:
                import gssapi  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "Kerberos needs the 'gssapi' package: pip install 'syncprep[kerberos]' (or use --auth simple)"
                ) from None
            kwargs.update(authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS)
        else:
            kwargs.update(authentication=ldap3.ANONYMOUS)
        self.conn = ldap3.Connection(server, **kwargs)
        _lean_search_entries(self.conn)
        self.conn.open()
        if settings.start_tls and not endpoint.tls:
            self.conn.start_tls()
        if creds.method == "anonymous":
            return
        try:
            self.conn.bind()
        except LDAPBindError as exc:
            raise _bind_error(self.conn, exc) from None
        except (LDAPSessionTerminatedByServerError, LDAPSocketReceiveError):
            if creds.method != "ntlm":
                raise
            # Seen with Samba: it closes the connection on ldap3's NTLM messages (Windows AD accepts them).
            raise SourceError(
                f"{endpoint.host}:{endpoint.port} closed the connection during the NTLM sign-in: "
                "use --auth kerberos (after kinit), or a simple bind over ldaps:// or --start-tls",
                source=endpoint.url,
            ) from None

    def classify(self, exc: BaseException) -> tuple[Failure, str] | None:
        """The Failure behind an ldap3 exception, or None when it is not one of ldap3's."""
        from ldap3.core import exceptions as lx

        text = str(exc)
        low = text.lower()
        mismatch = _name_mismatch(text)
        if mismatch is not None:
            return mismatch
        if isinstance(exc, ssl.SSLError) or any(w in low for w in _CERT_WORDS):
            return (Failure.UNTRUSTED, text) if any(w in low for w in _CERT_WORDS) else (Failure.TLS, text)
        if not isinstance(exc, lx.LDAPException):
            return None
        if isinstance(exc, lx.LDAPStartTLSError) or "wrong version number" in low or "handshake" in low:
            return Failure.TLS, text
        if isinstance(exc, lx.LDAPSocketOpenError):
            if "timed out" in low:
                return Failure.CONNECT, "no answer"
            return Failure.CONNECT, "connection refused" if "refused" in low else text
        if isinstance(
            exc, lx.LDAPSocketReceiveError | lx.LDAPResponseTimeoutError | lx.LDAPSessionTerminatedByServerError
        ):
            return Failure.NO_ANSWER, text
        table: list[tuple[type[BaseException], Failure]] = [
            (lx.LDAPInvalidCredentialsResult, Failure.CREDENTIALS),
            (lx.LDAPStrongerAuthRequiredResult, Failure.PROTECTION),
            (lx.LDAPConfidentialityRequiredResult, Failure.PROTECTION),
            (lx.LDAPInsufficientAccessRightsResult, Failure.RIGHTS),
            (lx.LDAPSizeLimitExceededResult, Failure.SIZE_LIMIT),
            (lx.LDAPAdminLimitExceededResult, Failure.SIZE_LIMIT),
            (lx.LDAPNoSuchObjectResult, Failure.NO_BASE),
            (lx.LDAPUnavailableCriticalExtensionResult, Failure.NO_PAGING),
            (lx.LDAPInvalidFilterError, Failure.FILTER),
        ]
        for cls, failure in table:
            if isinstance(exc, cls):
                return failure, text
        if _needs_sign_in(low):  # AD and Samba refuse anonymous searches
            return Failure.NOT_SIGNED_IN, text
        if isinstance(exc, lx.LDAPOperationResult):
            return Failure.OTHER, f"{exc.description or 'error'}: {exc.message or text}"
        return Failure.OTHER, text

    def root_dse(self) -> dict[str, list[str]]:
        self.conn.search("", "(objectClass=*)", search_scope="BASE", attributes=ROOT_DSE_ATTRIBUTES)
        out: dict[str, list[str]] = {}
        for item in self.conn.response or ():
            for key, raws in (item.get("raw_attributes") or {}).items():
                out[key.lower()] = [r.decode("utf-8", "replace") for r in raws]
        return out

    def search(self, base: str, filt: str, attributes: list[str], page_size: int) -> Iterator[Record]:
        cookie: bytes | None = None
        while True:
            with _reading():
                self.conn.search(
                    base,
                    filt,
                    search_scope="SUBTREE",
                    attributes=attributes,
                    paged_size=page_size or None,
                    paged_cookie=cookie,
                )
            for item in self.conn.response or ():
                if item.get("type") == "searchResEntry":
                    yield item["dn"], dict(item["raw_attributes"])
            if not page_size:
                return
            controls = (self.conn.result or {}).get("controls") or {}
            cookie = controls.get(PAGED_RESULTS, {}).get("value", {}).get("cookie")
            if not cookie:
                return

    def read_attribute(self, dn: str, attribute: str) -> dict[str, list[bytes]]:
        self.conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=[attribute])
        for item in self.conn.response or ():
            if item.get("type") == "searchResEntry":
                return dict(item["raw_attributes"])
        return {}

    def attribute_schema(self, schema_dn: str, names: list[str]) -> dict[str, bool]:
        self.conn.search(schema_dn, schema_filter(names), search_scope="LEVEL", attributes=SCHEMA_ATTRIBUTES)
        return _in_partial_set(
            dict(item["raw_attributes"]) for item in self.conn.response or () if item.get("type") == "searchResEntry"
        )

    # -- writing back

    def modify_many(
        self, requests: Iterable[tuple[str, Sequence[ModifyChange]]], window: int = 1
    ) -> Iterator[tuple[int, BaseException | None]]:
        """Send each (dn, changes) as one modify request, in order (the next request is taken from
        ``requests`` only when it is about to be sent), and yield (index, None) when the
        server applied it or (index, exception) when it refused it. ldap3 here is synchronous: one
        request at a time, whatever ``window`` says. A lost connection raises (``sent`` tells how
        many requests went out)."""
        import ldap3
        from ldap3.core import exceptions as lx

        self.sent = 0
        for index, (dn, changes) in enumerate(requests):
            ops: dict[str, list[tuple[str, list[bytes]]]] = {}
            for attribute, delete, add in changes:
                steps = ops.setdefault(attribute, [])
                if delete:
                    steps.append((ldap3.MODIFY_DELETE, [encode_value(v) for v in delete]))
                if add:
                    steps.append((ldap3.MODIFY_ADD, [encode_value(v) for v in add]))
            self.sent = index + 1
            try:
                self.conn.modify(dn, ops)
            except lx.LDAPOperationResult as exc:
                yield index, exc
            else:
                yield index, None

    def read_values(self, dn: str, attributes: list[str]) -> dict[str, list[bytes]] | None:
        """The current values of these attributes of one object ({lower-case name: values}),
        or None when the object does not exist."""
        from ldap3.core import exceptions as lx

        try:
            self.conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=attributes)
        except lx.LDAPNoSuchObjectResult:
            return None
        for item in self.conn.response or ():
            if item.get("type") == "searchResEntry":
                out: dict[str, list[bytes]] = {}
                for name, values in (item.get("raw_attributes") or {}).items():
                    out.setdefault(_bare(name), []).extend(values)
                return out
        return None

    def refusal(self, exc: BaseException) -> Refusal | None:
        """The server's refusal behind an exception of modify_many, or None when it is not the
        server's answer (connection lost, timeout)."""
        from ldap3.core import exceptions as lx

        if not isinstance(exc, lx.LDAPOperationResult):
            return None
        code = exc.result if isinstance(exc.result, int) else None
        return Refusal(code, str(exc.description or "error"), " ".join(str(exc.message or "").split()))

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # a broken connection has nothing left to report
                self.conn.unbind()


def _lean_search_entries(conn: Any) -> None:
    """Search entries on this connection keep only the raw bytes syncprep uses.

    ldap3 decodes every message into nested lists of every element, then turns every value into
    bytes and again into text, looking up its settings for each value: most of a scan's time.
    While this connection searches (see ``_reading``), a search entry without controls is read
    straight from its bytes instead (``_read_entry``); other responses (bind, controls, results)
    keep ldap3's own path.
    """
    _install_entry_reader()
    strategy = conn.strategy
    general = strategy.decode_response_fast

    def decode(message: dict[str, Any]) -> dict[str, Any]:
        entry = message.get("entry")
        if entry is not None:
            dn, raw = entry
        elif message["protocolOp"] != 4 or message["controls"]:  # 4: searchResEntry
            return general(message)  # type: ignore[no-any-return]
        else:
            payload = message["payload"]
            raw = {
                bytes(item[3][0][3]).decode("utf-8"): [bytes(v[3]) for v in item[3][1][3] or ()]
                for item in payload[1][3]
            }
            dn = bytes(payload[0][3])
        return {
            "raw_dn": dn,
            "dn": dn.decode("utf-8", "replace"),
            "raw_attributes": raw,
            "attributes": raw,
            "type": "searchResEntry",
        }

    strategy.decode_response_fast = decode


# Set while a syncprep connection searches, in the thread that searches (ldap3's synchronous
# strategy decodes in the caller's thread): other ldap3 users in the process keep ldap3's path.
_READING = threading.local()


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    _READING.on = True
    try:
        yield
    finally:
        _READING.on = False


def _install_entry_reader() -> None:
    """Put _read_entry in front of ldap3's message decoder (once per process)."""
    from ldap3.strategy import sync

    general = sync.decode_message_fast
    if getattr(general, "syncprep", False):
        return

    def decode_message(message: bytes) -> dict[str, Any]:
        if getattr(_READING, "on", False):
            found = _read_entry(message)
            if found is not None:
                message_id, dn, raw = found
                return {"messageID": message_id, "protocolOp": 4, "payload": None, "controls": None, "entry": (dn, raw)}
        return general(message)  # type: ignore[no-any-return]

    decode_message.syncprep = True  # type: ignore[attr-defined]
    sync.decode_message_fast = decode_message


# Attribute names as the server spells them, decoded once: a scan sees a few dozen, millions of times.
_NAMES: dict[bytes, str] = {}


class _NotAnEntry(Exception):
    """The message is not one _read_entry reads: ldap3 decodes it."""


def _content(data: bytes, p: int, tag: int) -> tuple[int, int]:
    """Where the content of the BER element at p starts and ends; the element must have this tag.

    Lengths are definite: one byte below 0x80, else 0x8N and N bytes.
    """
    if data[p] != tag:
        raise _NotAnEntry
    n = data[p + 1]
    if n & 0x80:
        k = n & 0x7F
        start = p + 2 + k
        return start, start + int.from_bytes(data[p + 2 : start], "big")
    return p + 2, p + 2 + n


def _read_entry(data: bytes) -> tuple[int, bytes, dict[str, list[bytes]]] | None:
    """messageID, DN and attributes of an LDAP searchResEntry message without controls, or None
    for any other message (or one this reader does not follow: ldap3 then decodes it).

    RFC 4511: SEQUENCE { messageID INTEGER, [APPLICATION 4] { objectName OCTET STRING,
    attributes SEQUENCE OF SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING } } }.
    The values, millions in a scan, have their lengths read inline rather than by _content.
    """
    if not isinstance(data, bytes):
        data = bytes(data)  # a bytearray or memoryview: names must be hashable, values bytes
    end = len(data)
    try:
        p, q = _content(data, 0, 0x30)
        if q != end:
            return None  # cut short, or more than one message
        p, q = _content(data, p, 0x02)
        message_id = int.from_bytes(data[p:q], "big")
        p, q = _content(data, q, 0x64)  # [APPLICATION 4], constructed: searchResEntry
        if q != end:  # controls follow the entry: ldap3 reads those
            return None
        p, q = _content(data, p, 0x04)
        dn = data[p:q]
        p, q = _content(data, q, 0x30)  # the attribute list, to the end of the message
        if q != end:
            return None
        # Each attribute and each value, millions in a scan: their lengths are read here, inline
        # (a call to _content for each costs a third more time).
        attrs: dict[str, list[bytes]] = {}
        while p < end:  # one partial attribute: SEQUENCE { type, SET OF value }
            if data[p] != 0x30:
                return None
            n = data[p + 1]
            p += 2 + (n & 0x7F if n & 0x80 else 0)
            n = data[p + 1]  # the type
            if data[p] != 0x04 or n & 0x80:
                return None  # not a type, or a name of 128 bytes or more (not AD's)
            raw_name = data[p + 2 : p + 2 + n]
            name = _NAMES.get(raw_name)
            if name is None:
                name = raw_name.decode("utf-8")
                if len(_NAMES) < 4096:
                    _NAMES[raw_name] = name
            p += 2 + n
            if data[p] != 0x31:
                return None
            n = data[p + 1]
            p += 2 + (n & 0x7F if n & 0x80 else 0)  # the set's own length: its values say where it ends
            values: list[bytes] = []
            while p < end and data[p] == 0x04:
                n = data[p + 1]
                if n & 0x80:
                    k = n & 0x7F
                    n = int.from_bytes(data[p + 2 : p + 2 + k], "big")
                    p += 2 + k
                else:
                    p += 2
                values.append(data[p : p + n])
                p += n
            attrs[name] = values
        return (message_id, dn, attrs) if p == end else None
    except (_NotAnEntry, IndexError, ValueError):  # not an entry, cut short, or a name not UTF-8
        return None


ROOT_DSE_ATTRIBUTES = [
    "defaultNamingContext",
    "namingContexts",
    "schemaNamingContext",
    "supportedControl",
    "rootDomainNamingContext",
]
SCHEMA_ATTRIBUTES = ["lDAPDisplayName", "isMemberOfPartialAttributeSet"]


def schema_filter(names: list[str]) -> str:
    """attributeSchema objects of these attributes. Names come from our catalogue, never from users."""
    wanted = "".join(f"(lDAPDisplayName={name})" for name in names)
    return f"(&(objectClass=attributeSchema)(|{wanted}))"


def _in_partial_set(items: Iterator[dict[str, list[bytes]]] | Any) -> dict[str, bool]:
    """{lower-case name: replicated to the global catalog} from attributeSchema entries."""
    out: dict[str, bool] = {}
    for raw in items:
        low = {k.lower(): v for k, v in raw.items()}
        name = next(iter(low.get("ldapdisplayname") or []), b"").decode("utf-8", "replace").lower()
        flag = next(iter(low.get("ismemberofpartialattributeset") or []), b"").upper()
        if name:
            out[name] = flag == b"TRUE"
    return out


class PythonLdapClient:
    """python-ldap (OpenLDAP's libldap) behind the Client face: the fast reader."""

    def __init__(self, endpoint: Endpoint, settings: LdapSettings) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.conn: Any = None
        self.writable = False  # libldap connections can always write; kept for the WriteClient face
        self.sent = 0  # requests of the last modify_many handed to the connection

    def connect(self) -> None:
        import ldap

        endpoint, settings = self.endpoint, self.settings
        _check_plain_bind(endpoint, settings)
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        uri = f"{'ldaps' if endpoint.tls else 'ldap'}://{host}:{endpoint.port}"
        conn = ldap.initialize(uri, bytes_mode=False)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)  # AD referrals would need a second sign-in
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, settings.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, settings.timeout)
        if endpoint.tls or settings.start_tls:
            conn.set_option(
                ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER if settings.insecure else ldap.OPT_X_TLS_DEMAND
            )
            if settings.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, settings.ca_file)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # must come last: it freezes the options above
        self.conn = conn
        if settings.start_tls and not endpoint.tls:
            conn.start_tls_s()
        creds = settings.credentials
        if creds.method == "simple":
            conn.simple_bind_s(creds.user or "", _reveal(creds))
        elif creds.method == "kerberos":
            import ldap.sasl

            if endpoint.tls or settings.start_tls:
                # TLS already protects the session; AD refuses a second (SASL) security layer inside it.
                conn.set_option(ldap.OPT_X_SASL_SSF_MAX, 0)
            conn.sasl_interactive_bind_s("", ldap.sasl.gssapi(creds.user or ""))
        elif creds.method == "anonymous":
            conn.simple_bind_s("", "")

    def classify(self, exc: BaseException) -> tuple[Failure, str] | None:
        import ldap

        if not isinstance(exc, ldap.LDAPError):
            return None
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        text = "; ".join(str(info[k]) for k in ("desc", "info") if info.get(k)) or str(exc)
        low = text.lower()
        if any(w in low for w in _CERT_WORDS):
            return Failure.UNTRUSTED, text
        if isinstance(exc, ldap.SERVER_DOWN | ldap.CONNECT_ERROR):
            if "tls" in low or "ssl" in low or "handshake" in low:
                return Failure.TLS, text
            return Failure.CONNECT, "connection refused" if "can't contact" in low else text
        table: list[tuple[Any, Failure]] = [
            (ldap.TIMEOUT, Failure.NO_ANSWER),
            (ldap.INVALID_CREDENTIALS, Failure.CREDENTIALS),
            (ldap.STRONG_AUTH_REQUIRED, Failure.PROTECTION),
            (ldap.CONFIDENTIALITY_REQUIRED, Failure.PROTECTION),
            (ldap.INSUFFICIENT_ACCESS, Failure.RIGHTS),
            (ldap.SIZELIMIT_EXCEEDED, Failure.SIZE_LIMIT),
            (ldap.ADMINLIMIT_EXCEEDED, Failure.SIZE_LIMIT),
            (ldap.NO_SUCH_OBJECT, Failure.NO_BASE),
            (ldap.UNAVAILABLE_CRITICAL_EXTENSION, Failure.NO_PAGING),
            (ldap.FILTER_ERROR, Failure.FILTER),
            (ldap.AUTH_UNKNOWN, Failure.KERBEROS),
            (ldap.LOCAL_ERROR, Failure.KERBEROS),
        ]
        for cls, failure in table:
            if isinstance(exc, cls):
                return failure, text
        if _needs_sign_in(low):
            return Failure.NOT_SIGNED_IN, text
        return Failure.OTHER, text

    def root_dse(self) -> dict[str, list[str]]:
        import ldap

        got = self.conn.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", ROOT_DSE_ATTRIBUTES)
        out: dict[str, list[str]] = {}
        for _dn, attrs in got:
            for key, raws in attrs.items():
                out[key.lower()] = [r.decode("utf-8", "replace") for r in raws]
        return out

    def search(self, base: str, filt: str, attributes: list[str], page_size: int) -> Iterator[Record]:
        import ldap
        from ldap.controls import SimplePagedResultsControl

        control = SimplePagedResultsControl(True, size=page_size, cookie="")
        msgid = self.conn.search_ext(
            base, ldap.SCOPE_SUBTREE, filt, attributes, serverctrls=[control] if page_size else None
        )
        while msgid is not None:
            _type, data, _msgid, controls = self.conn.result3(msgid)
            msgid = None
            cookie = next(
                (c.cookie for c in controls or () if c.controlType == SimplePagedResultsControl.controlType), b""
            )
            if page_size and cookie:
                # Ask for the next page before handing out this one: the server prepares it meanwhile.
                control.cookie = cookie
                msgid = self.conn.search_ext(base, ldap.SCOPE_SUBTREE, filt, attributes, serverctrls=[control])
            for dn, attrs in data:
                if dn is not None:  # None: a search continuation (referral)
                    yield dn, attrs

    def read_attribute(self, dn: str, attribute: str) -> dict[str, list[bytes]]:
        import ldap

        for _dn, attrs in self.conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", [attribute]):
            return dict(attrs)
        return {}

    def attribute_schema(self, schema_dn: str, names: list[str]) -> dict[str, bool]:
        import ldap

        got = self.conn.search_s(schema_dn, ldap.SCOPE_ONELEVEL, schema_filter(names), SCHEMA_ATTRIBUTES)
        return _in_partial_set(attrs for _dn, attrs in got)

    # -- writing back

    def modify_many(
        self, requests: Iterable[tuple[str, Sequence[ModifyChange]]], window: int = 1
    ) -> Iterator[tuple[int, BaseException | None]]:
        """Send each (dn, changes) as one modify request (the next request is taken from
        ``requests`` only when it is about to be sent) and yield (index, None) when the server
        applied it or (index, exception) when it refused it, in request order. Up to ``window``
        requests are outstanding at once (pipelined on the one connection; each is still its own
        atomic modify). A lost connection or timeout raises; ``sent`` tells how many requests went out."""
        import ldap

        self.sent = 0
        outstanding: collections.deque[tuple[int, int]] = collections.deque()
        for index, (dn, changes) in enumerate(requests):
            modlist: list[tuple[int, str, list[bytes]]] = []
            for attribute, delete, add in changes:
                if delete:
                    modlist.append((ldap.MOD_DELETE, attribute, [encode_value(v) for v in delete]))
                if add:
                    modlist.append((ldap.MOD_ADD, attribute, [encode_value(v) for v in add]))
            outstanding.append((index, self.conn.modify_ext(dn, modlist)))
            self.sent = index + 1
            if len(outstanding) >= max(1, window):
                yield self._modify_result(*outstanding.popleft())
        while outstanding:
            yield self._modify_result(*outstanding.popleft())

    def _modify_result(self, index: int, msgid: int) -> tuple[int, BaseException | None]:
        import ldap

        try:
            self.conn.result3(msgid, all=1, timeout=self.settings.timeout)
        except ldap.LDAPError as exc:
            if self.refusal(exc) is None:
                raise
            return index, exc
        return index, None

    def read_values(self, dn: str, attributes: list[str]) -> dict[str, list[bytes]] | None:
        """The current values of these attributes of one object ({lower-case name: values}),
        or None when the object does not exist."""
        import ldap

        try:
            got = self.conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", attributes)
        except ldap.NO_SUCH_OBJECT:
            return None
        for found, attrs in got:
            if found is not None:
                out: dict[str, list[bytes]] = {}
                for name, values in attrs.items():
                    out.setdefault(_bare(name), []).extend(values)
                return out
        return None

    def refusal(self, exc: BaseException) -> Refusal | None:
        """The server's refusal behind an exception of modify_many, or None when it is not the
        server's answer (connection lost, timeout, a local libldap error)."""
        import ldap

        if not isinstance(exc, ldap.LDAPError):
            return None
        if isinstance(exc, ldap.SERVER_DOWN | ldap.CONNECT_ERROR | ldap.TIMEOUT | ldap.LOCAL_ERROR):
            return None
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        code = info.get("result", getattr(exc, "errnum", None))
        if not isinstance(code, int) or code < 0:
            return None
        message = " ".join(str(info.get("info") or "").split())
        return Refusal(code, str(info.get("desc") or type(exc).__name__), message)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.unbind_s()


def _reveal(creds: Credentials) -> str:
    if creds.password is None:
        raise ConfigError("this sign-in needs a password: use --password-env VAR, --password-file FILE or the prompt")
    return creds.password.reveal()


def _ntlm_user(user: str | None) -> str:
    """ldap3's NTLM wants DOMAIN\\name. Ex) 'alice@contoso.com' -> 'CONTOSO\\alice'."""
    if not user:
        raise ConfigError("--auth ntlm needs --user DOMAIN\\name (or name@domain)")
    if "\\" in user:
        return user
    if "@" in user:
        name, domain = user.rsplit("@", 1)
        return f"{domain.split('.')[0].upper()}\\{name}"
    raise ConfigError(f"--user {user!r}: NTLM needs DOMAIN\\name or name@domain")


def _bind_error(conn: Any, exc: BaseException) -> BaseException:
    """ldap3 raises a generic LDAPBindError; turn it into the exception of the server's result code."""
    from ldap3.core import exceptions as lx

    result = getattr(conn, "result", None) or {}
    code = result.get("result")
    by_code: dict[int, type[lx.LDAPOperationResult]] = {
        49: lx.LDAPInvalidCredentialsResult,
        8: lx.LDAPStrongerAuthRequiredResult,
        13: lx.LDAPConfidentialityRequiredResult,
        50: lx.LDAPInsufficientAccessRightsResult,
        48: lx.LDAPInappropriateAuthenticationResult,
    }
    cls = by_code.get(code) if isinstance(code, int) else None
    if cls is not None:
        return cls(result=code, description=result.get("description"), message=result.get("message"))
    return exc
