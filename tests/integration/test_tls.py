"""TLS to a private CA (issue 11, item 4): DIALSYNC_CA_BUNDLE wins wherever it is set, for the
Salesforce client (requests) and the dialer client (httpx) alike, and a failed handshake says
why: an untrusted issuer, an expired certificate, a certificate for another host."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.tls import make_tls_files, server_context
from tests.integration.helpers import ours, person
from tests.integration.test_cli import cli


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def leaf_context(
    directory: Path, *, expired: bool = False, hosts: tuple[str, ...] = ("127.0.0.1",)
) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate of our own CA (expired, or for other hosts), and
    the CA's file."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    not_after = now - timedelta(days=1) if expired else now + timedelta(days=30)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=10))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    ca_file = directory / "ca.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context, ca_file


def test_ca_bundle_in_dotenv_wins_over_the_standard_variables(tmp_path: Path) -> None:
    workdir = tmp_path / "box"
    # The dialer serves TLS too (the sandbox CA), so both clients are put to the test.
    talkdesk_tls = server_context(make_tls_files(workdir / "tls"))
    with Sandboxes(workdir, talkdesk={"tls": talkdesk_tls}) as box:
        ids = box.salesforce.insert_many([person(i) for i in range(3)])
        env = box.env()
        assert box.talkdesk.url.startswith("https://")
        sandbox_ca = env.pop("DIALSYNC_CA_BUNDLE")
        # The environment names a bundle that does not trust the sandboxes ...
        env["SSL_CERT_FILE"] = env["REQUESTS_CA_BUNDLE"] = certifi.where()
        # ... and .env the one that does: the dialsync setting wins.
        (tmp_path / ".env").write_text(f"DIALSYNC_CA_BUNDLE={sandbox_ca}\n")
        result = cli(["sync"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert set(ours(box)) == set(ids)


def test_untrusted_issuer_names_the_host_and_the_setting(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    env = {**sandboxes.env(), "DIALSYNC_CA_BUNDLE": certifi.where()}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("error"))
    assert "certificate verify failed for 127.0.0.1" in line, line
    assert "DIALSYNC_CA_BUNDLE" in line and "SSLError" not in line


@pytest.mark.parametrize(
    ("expired", "hosts", "cause"),
    [
        (True, ("127.0.0.1",), "the server's certificate has expired"),
        (False, ("dialer.example.org",), "the certificate is not for 127.0.0.1"),
    ],
)
def test_expired_or_wrong_host_certificate_says_so(
    tmp_path: Path, expired: bool, hosts: tuple[str, ...], cause: str
) -> None:
    context, dialer_ca = leaf_context(tmp_path / "dialer-tls", expired=expired, hosts=hosts)
    with Sandboxes(tmp_path / "box", talkdesk={"tls": context}) as box:
        env = box.env()
        bundle = tmp_path / "bundle.pem"  # trusts both sandboxes' CAs
        bundle.write_text(Path(env["DIALSYNC_CA_BUNDLE"]).read_text() + dialer_ca.read_text())
        env["DIALSYNC_CA_BUNDLE"] = str(bundle)
        result = cli(["sync"], env, tmp_path)
    assert result.returncode != 0
    line = next(line for line in result.stderr.splitlines() if line.startswith("error"))
    assert "talkdesk: certificate verify failed for 127.0.0.1" in line, line
    assert cause in line, line
