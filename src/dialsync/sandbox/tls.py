"""Throw-away TLS material for the loopback sandboxes.

simple-salesforce always speaks ``https``, so the Salesforce sandbox must serve TLS. A private CA
(minted by trustme) signs a ``localhost`` certificate; clients trust the CA file
(``session.verify`` or ``REQUESTS_CA_BUNDLE``). Files are reused while valid so parallel
processes (demo, workers) share one CA instead of each minting its own.
"""

from __future__ import annotations

import fcntl
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

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
    ca = trustme.CA(organization_unit_name="dialsync sandbox CA")
    # trustme's default lifetime is centuries; ours is short, so a stale file gets replaced
    cert = ca.issue_cert(
        *DNS_NAMES, *IP_NAMES, not_before=now - timedelta(days=1), not_after=now + VALIDITY
    )
    # each file is replaced atomically; readers outside the lock still see whole files
    _write_atomic(files.key_file, cert.private_key_pem.bytes(), mode=0o600)
    _write_atomic(files.cert_file, cert.cert_chain_pems[0].bytes())
    _write_atomic(files.ca_file, ca.cert_pem.bytes())


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
