"""The LDAP source's pure parts: URLs, filters, secrets, option handling and offline errors.

Everything that talks to a server lives in tests/integration/ against real Samba and slapd.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncprep.cli import run
from syncprep.errors import ConfigError
from syncprep.sources import open_source
from syncprep.sources.ldap import _RANGE, LdapSettings, LdapSource, Secret, escape_filter_value, parse_url, user_filter
from syncprep.sources.ldapclient import Credentials


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "gc", "base"),
    [
        ("ldap://dc1.contoso.com", "dc1.contoso.com", 389, False, False, None),
        ("LDAPS://dc1.contoso.com", "dc1.contoso.com", 636, True, False, None),
        ("gc://dc1", "dc1", 3268, False, True, None),
        ("gcs://dc1", "dc1", 3269, True, True, None),
        ("ldaps://127.0.0.1:1636", "127.0.0.1", 1636, True, False, None),
        ("ldap://[::1]:3890", "::1", 3890, False, False, None),
        ("ldap://dc1/OU=Staff,DC=contoso,DC=com", "dc1", 389, False, False, "OU=Staff,DC=contoso,DC=com"),
        ("ldap://dc1/OU=R%26D,DC=contoso,DC=com", "dc1", 389, False, False, "OU=R&D,DC=contoso,DC=com"),
    ],
)
def test_parse_url(url: str, host: str, port: int, tls: bool, gc: bool, base: str | None) -> None:
    endpoint = parse_url(url)
    assert (endpoint.host, endpoint.port, endpoint.tls, endpoint.global_catalog, endpoint.base) == (
        host,
        port,
        tls,
        gc,
        base,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ldap://", "no host name"),
        ("ldap://dc1:99999", "port"),
        ("ldap://dc1:abc", "port"),
        ("ldaps://admin:Secr3t@dc1", "credentials do not belong in the URL"),
        ("ldap://dc1/DC=x??sub?(cn=*)", "search options in the URL"),
    ],
)
def test_parse_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as caught:
        parse_url(url)
    assert "Secr3t" not in str(caught.value)


def test_escape_filter_value() -> None:
    assert escape_filter_value("R&D (Paris)\\") == "R&D \\28Paris\\29\\5c"
    assert escape_filter_value("a*b") == "a*b"
    assert escape_filter_value("nul\0") == "nul\\00"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("(department=Sales)", "(department=Sales)"),
        ("(|(company=A)(company=B))", "(|(company=A)(company=B))"),
        ("company=R&D (Paris)", "(company=R&D \\28Paris\\29)"),
        ("  department = Sales ", "(department=Sales)"),
        ("extensionAttribute1>=5", "(extensionAttribute1>=5)"),
        ("", None),
        (None, None),
    ],
)
def test_user_filter(typed: str | None, expected: str | None) -> None:
    assert user_filter(typed) == expected


@pytest.mark.parametrize("bad", ["(department=Sales", "(department=Sales))", "just words", "(&(a=1)(b=2)"])
def test_user_filter_refuses(bad: str) -> None:
    with pytest.raises(ConfigError, match="filter"):
        user_filter(bad)


def test_range_pattern() -> None:
    match = _RANGE.match("member;range=0-1499")
    assert match is not None and (match["attr"], match["lo"], match["hi"]) == ("member", "0", "1499")
    last = _RANGE.match("proxyAddresses;range=1500-*")
    assert last is not None and last["hi"] == "*"
    assert _RANGE.match("member") is None


def test_secret_never_shows_itself() -> None:
    secret = Secret("Hunter2!")
    creds = Credentials("simple", "admin@contoso.com", secret)
    settings = LdapSettings(credentials=creds)
    for text in (repr(secret), str(secret), repr(creds), repr(settings), f"{secret}"):
        assert "Hunter2" not in text
    assert secret.reveal() == "Hunter2!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("client", ["ldap3", "python-ldap"])
def test_unreachable_port_is_one_line(client: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ldap" if client == "python-ldap" else "ldap3")
    port = _free_port()
    code = run(["scan", f"ldap://127.0.0.1:{port}", "--auth", "anonymous", "--client", client, "--timeout", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"cannot connect to 127.0.0.1:{port}" in err and "check the host name and port" in err


def test_simple_bind_in_clear_text_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SP_TEST_PASSWORD", "Hunter2!")
    port = _free_port()  # nothing listens: the refusal must come before any connection attempt
    code = run(["scan", f"ldap://127.0.0.1:{port}", "--user", "admin@x.test", "--password-env", "SP_TEST_PASSWORD"])
    err = capsys.readouterr().err
    assert code == 2
    assert "clear text" in err and "--start-tls" in err and "cannot connect" not in err
    assert "Hunter2" not in err


def test_password_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["scan", "ldaps://127.0.0.1", "--user", "a@b", "--password", "Hunter2!"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--password-env" in err and "Hunter2" not in err


def test_missing_password_variable(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["scan", "ldaps://127.0.0.1", "--user", "a@b", "--password-env", "SP_TEST_NOT_SET_ANYWHERE"])
    assert code == 2
    assert "SP_TEST_NOT_SET_ANYWHERE" in capsys.readouterr().err


def test_no_terminal_for_a_password_prompt() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncprep", "scan", "ldaps://127.0.0.1", "--user", "a@b"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--password-env" in done.stderr and "Traceback" not in done.stderr


def test_password_file_first_line(tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "pw"
    secret.write_text("Hunter2!\nignored\n", encoding="utf-8")
    port = _free_port()
    code = run(["scan", f"ldaps://127.0.0.1:{port}", "--user", "a@b", "--password-file", str(secret), "--timeout", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot connect" in err and "Hunter2" not in err


def test_open_source_recognises_urls() -> None:
    source = open_source("gcs://dc1.contoso.com", ldap=LdapSettings())
    assert isinstance(source, LdapSource)
    assert source.name == "gcs://dc1.contoso.com:3269"
    assert source.size is None


def test_prefetch_keeps_order_and_raises_errors_in_place() -> None:
    from syncprep.sources.base import ahead

    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("server gone")

    got: list[int] = []
    with pytest.raises(ValueError, match="server gone"):
        for item in ahead(items, 2, "test-reader"):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_prefetch_closes_the_reader_when_the_consumer_stops() -> None:
    import threading

    from syncprep.sources.base import ahead

    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    stream = ahead(items, 2, "test-reader")
    assert next(stream) == 0
    stream.close()  # type: ignore[attr-defined]
    assert closed.wait(5), "the reader thread should stop and close its source"


# ---------------------------------------------------------------------------------------------
# The search-entry reader for ldap3 (_read_entry): the same entries as ldap3's own decoder,
# messages built by ldap3's own encoder.


def _message(dn: bytes, attributes: dict[str, list[bytes]], *, message_id: int = 7, control: bool = False) -> bytes:
    from ldap3.protocol.rfc4511 import (
        LDAPOID,
        AttributeDescription,
        AttributeValue,
        Control,
        Controls,
        LDAPMessage,
        MessageID,
        PartialAttribute,
        PartialAttributeList,
        ProtocolOp,
        SearchResultEntry,
        Vals,
    )
    from pyasn1.codec.ber import encoder

    entry = SearchResultEntry()
    entry["object"] = dn
    listed = PartialAttributeList()
    for i, (name, values) in enumerate(attributes.items()):
        attribute = PartialAttribute()
        attribute["type"] = AttributeDescription(name)
        vals = Vals()
        for j, value in enumerate(values):
            vals.setComponentByPosition(j, AttributeValue(value))
        attribute["vals"] = vals
        listed.setComponentByPosition(i, attribute)
    entry["attributes"] = listed
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    op = ProtocolOp()
    op.setComponentByName("searchResEntry", entry)
    message["protocolOp"] = op
    if control:
        controls = Controls()
        one = Control()
        one["controlType"] = LDAPOID("1.2.840.113556.1.4.319")
        controls.setComponentByPosition(0, one)
        message["controls"] = controls
    return bytes(encoder.encode(message))


def _ldap3_reads(data: bytes) -> tuple[int, bytes, dict[str, list[bytes]]]:
    from ldap3.utils.asn1 import decode_message_fast

    message = decode_message_fast(data)
    payload = message["payload"]
    attributes = {bytes(a[3][0][3]).decode(): [bytes(v[3]) for v in a[3][1][3] or ()] for a in payload[1][3]}
    return message["messageID"], bytes(payload[0][3]), attributes


@pytest.mark.parametrize(
    "dn, attributes, message_id",
    [
        (b"CN=Bob,DC=x", {"mail": [b"bob@x.com"]}, 7),
        # Long-form lengths: values of 128 and 70,000 bytes, a DN of 300, many values, message 2**31-1.
        (b"CN=" + b"b" * 300, {"thumbnailPhoto": [b"\xff" * 70_000], "cn": [b"c" * 128]}, 2**31 - 1),
        (b"CN=Many", {"proxyAddresses": [f"smtp:a{i}@x.com".encode() for i in range(400)], "x": []}, 300),
        (b"", {}, 1),
        ("CN=Jörg,DC=x".encode(), {"member;range=0-1499": [b"CN=a", b"CN=b"], "displayName": [b"J\xc3\xb6rg"]}, 5),
    ],
)
def test_entry_reader_matches_ldap3(dn: bytes, attributes: dict[str, list[bytes]], message_id: int) -> None:
    from syncprep.sources.ldapclient import _read_entry

    data = _message(dn, attributes, message_id=message_id)
    assert _read_entry(data) == _ldap3_reads(data) == (message_id, dn, attributes)
    assert _read_entry(bytearray(data)) == (message_id, dn, attributes)  # however ldap3 holds the bytes


def test_entry_reader_leaves_everything_else_to_ldap3() -> None:
    from syncprep.sources.ldapclient import _read_entry

    data = _message(b"CN=Bob", {"mail": [b"bob@x.com"]})
    assert _read_entry(_message(b"CN=Bob", {"mail": [b"bob@x.com"]}, control=True)) is None  # controls: ldap3's
    assert _read_entry(data[:-3]) is None  # cut short
    assert _read_entry(b"\x30\x0c\x02\x01\x07\x65\x07\x0a\x01\x00\x04\x00\x04\x00") is None  # searchResDone
    assert _read_entry(b"") is None


@pytest.mark.parametrize(
    "user, urls, start_tls, expected",
    [
        (None, ["ldaps://dc1"], False, "kerberos"),
        ("CONTOSO\\ann", ["ldaps://dc1"], False, "simple"),  # AD and Samba take DOMAIN\name in a simple bind
        ("CONTOSO\\ann", ["gcs://dc1"], False, "simple"),
        ("CONTOSO\\ann", ["ldap://dc1"], True, "simple"),
        ("CONTOSO\\ann", ["ldap://dc1"], False, "ntlm"),  # no TLS: the password stays off the wire
        ("CONTOSO\\ann", ["gc://dc1"], False, "ntlm"),
        ("CONTOSO\\ann", ["ldaps://dc1", "ldap://dc2", "x.ldif"], False, "ntlm"),
        ("ann@contoso.com", ["ldap://dc1"], False, "simple"),  # then refused without --allow-plain-bind
    ],
)
def test_default_sign_in(user: str | None, urls: list[str], start_tls: bool, expected: str) -> None:
    from syncprep.cli import _default_auth

    assert _default_auth(user, urls, start_tls) == expected


@pytest.fixture
def tls_server_for_another_name(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS listener on 127.0.0.1 whose certificate (from a CA of its own) names only dc1.contoso.test."""
    import datetime
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dc1.contoso.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("dc1.contoso.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass  # the client gives up after the handshake
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], ca_file
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("client", ["python-ldap", "ldap3"])
def test_certificate_for_another_name(tls_server_for_another_name: tuple[int, Path], client: str) -> None:
    """A trusted certificate for another name: one line that names the names it is for."""
    port, ca_file = tls_server_for_another_name
    sign_in = ["--user", "a@b", "--password-env", "SP_PW", "--ca-file", str(ca_file), "--timeout", "5"]
    done = subprocess.run(
        [sys.executable, "-m", "syncprep", "scan", f"ldaps://127.0.0.1:{port}", "--client", client, *sign_in],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SP_PW": "x"},
        stdin=subprocess.DEVNULL,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "is not for '127.0.0.1' but for dc1.contoso.test" in lines[0] and "--insecure" in lines[0], lines[0]
