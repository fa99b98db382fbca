"""What every settings section builds on: the DIALSYNC_* names and the ConfigErrors they raise.

Kept apart from ``settings.py`` (the root object) and ``settings_dialers.py`` (the destination
sections), which both use it.
"""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from dialsync.errors import ConfigError

ENV_PREFIX = "DIALSYNC_"


def env_name(*path: str | int) -> str:
    """``env_name("talkdesk", "record_list_id")`` -> ``DIALSYNC_TALKDESK__RECORD_LIST_ID``."""
    return ENV_PREFIX + "__".join(str(p).upper() for p in path)


def http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be a URL starting with https://")
    return value


def missing_settings(
    section: str, model: BaseModel, names: tuple[str, ...], why: str
) -> list[ConfigError]:
    """One error per unset (or blank) setting of ``names``."""
    found = []
    for name in names:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            setting = env_name(section, name)
            found.append(ConfigError(f"{setting} is not set (needed {why})", setting=setting))
    return found


def combined(problems: list[ConfigError]) -> ConfigError:
    """One ConfigError for all of ``problems`` (every one listed, the first one's setting)."""
    if len(problems) == 1:
        return problems[0]
    lines = "\n  ".join(p.message for p in problems)
    return ConfigError(
        f"{len(problems)} settings must be fixed:\n  {lines}", setting=problems[0].setting
    )


def raise_all(problems: list[ConfigError]) -> None:
    if problems:
        raise combined(problems)
