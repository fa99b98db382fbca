"""One exception tree for the whole service.

Library exceptions (httpx, requests, simple_salesforce, sqlalchemy) are translated into these at
the adapter's edge, so the engine only ever sees three kinds of failure:

* ``TransientError``: try again later (timeouts, 429, 5xx, a lock held elsewhere).
* ``TerminalError``: retrying will not help until someone changes something (bad credentials,
  a list that does not exist, a field the destination does not know).
* ``RecordRejected``: one record was refused; the rest of its batch goes on.

Every exception carries fields (status, code, record id) and never a secret.
"""

from __future__ import annotations

from typing import TypedDict, Unpack


class DialsyncError(Exception):
    """Root of every error dialsync raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        code: str | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.code = code
        # The environment variable an operator must correct, when a setting is what must change
        # (a ConfigError, or a TerminalError such as a list id the dialer does not know).
        self.setting = setting

    def __str__(self) -> str:
        prefix = f"{self.system}: " if self.system else ""
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code:
            details.append(self.code)
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{prefix}{self.message}{suffix}"


class ErrorFields(TypedDict, total=False):
    """The root's fields, for subclasses that add one of their own and pass these through."""

    system: str
    status: int | None
    code: str | None
    setting: str | None


class ConfigError(DialsyncError):
    """A setting is missing or invalid. ``setting`` names the environment variable."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message, system="config", setting=setting)


class TerminalError(DialsyncError):
    """Retrying will not help: credentials, permissions, a missing list, a schema mismatch.

    ``setting`` names the variable to correct when a setting is what must change.
    """


class TransientError(DialsyncError):
    """Try again later. ``retry_after`` is a hint in seconds when the remote gave one."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, **fields: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class AmbiguousWriteError(TransientError):
    """A write failed in a way that leaves unknown whether the remote applied it.

    A timeout after the request was sent, a dropped connection, a 5xx: the remote may have created
    the records. The caller must find out (for Talkdesk: page the list and adopt) before it
    creates them again, or it may duplicate them.
    """


class RateLimited(TransientError):
    """The remote refused for quota reasons (429, Salesforce REQUEST_LIMIT_EXCEEDED)."""


class AuthError(TerminalError):
    """Credentials were refused."""


class LockBusy(TransientError):
    """Another sync holds the lock on this state database."""


class RecordRejected(DialsyncError):
    """A write was refused for what it carried (a bad record, a bad field): sending it again
    unchanged will not help, but the other records of its batch may go through.

    ``external_id`` names the record when the request carried one; None when it carried a
    batch, one or more of whose records were refused (send fewer to find which).
    """

    def __init__(
        self,
        message: str,
        *,
        external_id: str | None = None,
        code: str | None = None,
        system: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status, code=code)
        self.external_id = external_id


class Refused(DialsyncError):
    """A request (a resync's arguments) that can never be carried out as given."""


class TlsError(TerminalError):
    """The TLS handshake failed: an untrusted, expired or wrong-host certificate."""


def first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def summary(exc: BaseException) -> str:
    """``Class: first line of the message``: one log line, whatever the error carries."""
    return f"{exc.__class__.__name__}: {first_line(exc)}"


def operator_fix(exc: BaseException) -> str | None:
    """The setting(s) an operator must correct when ``exc`` is theirs to fix (a setting or a
    credential), else None (transient, or a bug)."""
    if isinstance(exc, ConfigError):
        return exc.setting or "a setting"
    if isinstance(exc, AuthError):
        if exc.setting:
            return exc.setting
        section = f"DIALSYNC_{exc.system.upper()}__" if exc.system else "DIALSYNC_"
        return f"{section}CLIENT_ID / {section}CLIENT_SECRET"
    if isinstance(exc, TerminalError) and exc.setting:
        return exc.setting
    return None


ErrorKind = str  # "config" (a setting or credential), "transient", "error" (anything else)


def error_kind(exc: BaseException) -> ErrorKind:
    """How a failure is recorded with its run: `dialsync health` reports "config" ones."""
    if operator_fix(exc) is not None:
        return "config"
    if isinstance(exc, TransientError):
        return "transient"
    return "error"
