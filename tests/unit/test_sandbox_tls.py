"""The sandbox's TLS files: a CA and a localhost certificate it signed, reused while valid."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from dialsync.sandbox.tls import RENEW_MARGIN, VALIDITY, make_tls_files, server_context


def test_certificate_is_for_loopback_signed_by_the_ca_and_short_lived(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert cert.not_valid_after_utc <= datetime.now(UTC) + VALIDITY
    assert cert.not_valid_after_utc > datetime.now(UTC) + RENEW_MARGIN
    assert files.key_file.stat().st_mode & 0o077 == 0  # the key is the owner's alone


def test_files_are_reused_while_valid_and_replaced_when_torn(tmp_path: Path) -> None:
    first = make_tls_files(tmp_path)
    ca_pem = first.ca_file.read_bytes()
    assert make_tls_files(tmp_path).ca_file.read_bytes() == ca_pem
    other = make_tls_files(tmp_path / "other")
    first.key_file.write_bytes(other.key_file.read_bytes())  # key no longer matches the cert
    assert make_tls_files(tmp_path).ca_file.read_bytes() != ca_pem


def test_a_client_trusting_the_ca_file_completes_a_handshake(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = server_context(files)

    def serve() -> None:
        conn, _ = listener.accept()
        with server.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=str(files.ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(10)
    listener.close()
