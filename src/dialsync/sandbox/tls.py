"""Throw-away TLS material for the loopback sandboxes.

simple-salesforce always speaks ``https``, so the Salesforce sandbox must serve TLS. A private CA
signs a ``localhost`` certificate; clients trust the CA file (``session.verify`` or
``REQUESTS_CA_BUNDLE``). Files are reused while valid so parallel processes (demo, workers)
share one CA instead of each minting its own.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "sandbox-ca.pem"
CERT_NAME = "sandbox-cert.pem"
KEY_NAME = "sandbox-key.pem"
VALIDITY = timedelta(days=30)
# regenerate a little before expiry so a long test run never sees the certificate lapse
RENEW_MARGIN = timedelta(days=1)
DNS_NAMES = ("localhost",)
IP_NAMES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class TLSFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """CA + server certificate + key in ``directory``; existing valid files are reused."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / CA_NAME, directory / CERT_NAME, directory / KEY_NAME)
    # processes starting together must not interleave their key, certificate and CA files
    with open(directory / ".sandbox-tls.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _still_valid(files):
            _generate(files)
    return files


def _generate(files: TLSFiles) -> None:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dialsync sandbox CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName(name) for name in DNS_NAMES]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in IP_NAMES]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # each file is replaced atomically; readers outside the lock still see whole files
    _write_atomic(files.key_file, key_pem, mode=0o600)
    _write_atomic(files.cert_file, cert.public_bytes(serialization.Encoding.PEM))
    _write_atomic(files.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))


def server_context(files: TLSFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(files.cert_file), str(files.key_file))
    return context


def _still_valid(files: TLSFiles) -> bool:
    try:
        ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    deadline = datetime.now(UTC) + RENEW_MARGIN
    if min(ca.not_valid_after_utc, cert.not_valid_after_utc) < deadline:
        return False
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):  # a torn pair from an older run
        return False
    cert_pub = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert_pub == key_pub


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
