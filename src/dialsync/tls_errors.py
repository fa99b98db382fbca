"""Say why a TLS handshake failed, not just "SSLError".

requests wraps the ``ssl`` error three times (SSLError > MaxRetryError > urllib3's SSLError),
httpx twice (ConnectError > httpcore.ConnectError); both keep the original in ``args``,
``reason``, ``__cause__`` or ``__context__``. We walk those to the ``ssl`` error and read its
verify code: an operator fixes an unknown issuer, an expired certificate and a wrong host name in
three different places.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from dialsync.errors import TlsError

# OpenSSL's X509_V_ERR_* codes that an operator meets.
_EXPIRED = 10
_NOT_YET_VALID = 9
_HOST_MISMATCH = (62, 64)  # a host name, an IP address
_UNKNOWN_ISSUER = (2, 18, 19, 20, 21)
CA_SETTING = "DIALSYNC_CA_BUNDLE"


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLError):
            return item
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return None


def tls_failure(exc: BaseException, url: str, *, system: str) -> TlsError | None:
    """A TlsError naming the host and the cause when ``exc`` is a failed TLS handshake."""
    found = _ssl_error(exc)
    if found is None:
        return None
    host = urlsplit(url).hostname or url
    if not isinstance(found, ssl.SSLCertVerificationError):
        reason = found.reason or found.__class__.__name__
        return TlsError(f"TLS handshake with {host} failed: {reason}", system=system)
    code = found.verify_code
    detail = found.verify_message or "certificate verify failed"
    if code == _EXPIRED:
        why = "the server's certificate has expired (the server must renew it)"
        setting = None
    elif code == _NOT_YET_VALID:
        why = "the server's certificate is not valid yet (check this host's clock)"
        setting = None
    elif code in _HOST_MISMATCH:
        why = f"the certificate is not for {host}: check the URL setting ({detail})"
        setting = None
    elif code in _UNKNOWN_ISSUER:
        why = (
            f"{detail}: the issuer is not trusted; set {CA_SETTING} to the CA file that "
            "signed the server's certificate"
        )
        setting = CA_SETTING
    else:
        why = detail
        setting = CA_SETTING
    return TlsError(
        f"certificate verify failed for {host}: {why}",
        system=system,
        code="TLS_VERIFY_FAILED",
        setting=setting,
    )
