"""DIALSYNC_* variables that no setting reads: most likely a typo that leaves a default.

Kept apart from the settings model: this walks the model's fields and reads the environment
and .env only to warn, at every command's start and in `dialsync doctor`.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from pydantic import BaseModel

from dialsync.settings import ENV_PREFIX, Settings, env_name

# Prefixes of variables that are not settings: the test suite's and the benchmarks' own.
RESERVED_PREFIXES = ("DIALSYNC_TEST_", "DIALSYNC_BENCH_", "DIALSYNC_FAULTS")


def known_variables() -> tuple[set[str], set[str]]:
    """(every DIALSYNC_* variable a setting reads, prefixes under which any key is valid)."""
    names: set[str] = set()
    open_prefixes: set[str] = set()
    for field_name, info in Settings.model_fields.items():
        if info.validation_alias is not None:
            continue  # REQUESTS_CA_BUNDLE, SSL_CERT_FILE: not ours
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names.add(env_name(field_name))  # a whole section as JSON
            for sub, sub_info in section.model_fields.items():
                names.add(env_name(field_name, sub))
                if "dict" in str(sub_info.annotation):
                    open_prefixes.add(env_name(field_name, sub) + "__")
        else:
            names.add(env_name(field_name))
    return names, open_prefixes


def unknown_variables(
    environ: dict[str, str] | None = None, env_file: Path | None = Path(".env")
) -> list[tuple[str, str | None]]:
    """DIALSYNC_* variables (environment and .env) that no setting reads: misspelled or
    retired. Each with the closest known name, when one is close."""
    seen = set(os.environ if environ is None else environ)
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        seen |= set(dotenv_values(env_file))
    names, open_prefixes = known_variables()
    found = []
    for var in sorted(seen):
        upper = var.upper()
        if not upper.startswith(ENV_PREFIX) or upper in names:
            continue
        if upper.startswith(RESERVED_PREFIXES) or upper.startswith(tuple(open_prefixes)):
            continue
        close = difflib.get_close_matches(upper, sorted(names), n=1, cutoff=0.75)
        found.append((var, close[0] if close else None))
    return found


def unknown_variable_lines(environ: dict[str, str] | None = None) -> list[str]:
    lines = []
    for var, close in unknown_variables(environ):
        hint = f" (did you mean {close}?)" if close else ""
        lines.append(f"{var} is not a known setting{hint}")
    return lines
