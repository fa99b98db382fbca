"""TLS to a private CA (issue 11, item 4): DIALSYNC_CA_BUNDLE wins wherever it is set, for the
Salesforce client (requests) and the dialer client (httpx) alike, and a failed handshake says
why: an untrusted issuer, an expired certificate, a certificate for another host."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import pytest
import trustme

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.tls import make_tls_files, server_context
from tests.integration.helpers import ours, person
from tests.integration.test_cli import cli


def leaf_context(
    directory: Path, *, expired: bool = False, hosts: tuple[str, ...] = ("127.0.0.1",)
) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate of a CA of its own (expired, or for other hosts),
    minted by trustme as the sandboxes' is, and the CA's file."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    not_after = now - timedelta(days=1) if expired else now + timedelta(days=30)
    ca = trustme.CA()
    cert = ca.issue_cert(*hosts, not_before=now - timedelta(days=10), not_after=not_after)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
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
