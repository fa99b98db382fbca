"""What every `dialsync` command shares: the --debug option, one-line errors with exit codes,
and JSON or human output. Kept apart from cli.py so command modules can use it too."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from dialsync.errors import ConfigError, DialsyncError, operator_fix
from dialsync.logs import redact, setup_logging
from dialsync.settings import load_settings
from dialsync.settings_vars import unknown_variable_lines

F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: BaseException, debug: bool) -> None:
    """One line and the exit code: 2 when the operator must fix a setting or a credential
    (the line names it), 1 for anything else (transient, or a bug)."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    if isinstance(exc, ConfigError):
        click.echo(f"configuration error: {redact(exc.message)}", err=True)
        sys.exit(2)
    fix = operator_fix(exc)
    if fix is not None:
        text = redact(str(exc))
        hint = "" if fix in text else f" (check {fix})"
        click.echo(f"error: {text}{hint}", err=True)
        sys.exit(2)
    if isinstance(exc, DialsyncError):
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(1)
    click.echo(
        f"error: unexpected {exc.__class__.__name__}: {redact(str(exc))[:300]} "
        "(run with --debug for the traceback)",
        err=True,
    )
    sys.exit(1)


def command(fn: F) -> F:
    """Adds --debug and turns exceptions into one line and an exit code."""

    @click.option("--debug", is_flag=True, help="Log at DEBUG level and show tracebacks.")
    @functools.wraps(fn)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        try:
            warn_unknown_variables()  # first: a typo may be why a setting is missing
            settings = load_settings()
            setup_logging("DEBUG" if debug else settings.log_level, settings.log_format)
            return fn(settings, *args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BaseException as exc:
            fail(exc, debug)

    return wrapper  # type: ignore[return-value]


def warn_unknown_variables() -> None:
    """A DIALSYNC_* variable no setting reads is most likely a typo that leaves a default."""
    for line in unknown_variable_lines():
        click.echo(f"warning: {line}", err=True)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, default=json_default, sort_keys=True))
    else:
        human()


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
