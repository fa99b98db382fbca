"""Before a long-running process starts, and while it runs: is it fit to work?

``preflight`` is what `worker`, `beat`, `run` and `flower` check before they start: every
setting the configured source and destinations need, the mapping file, the broker, and the state
database's schema. A process that starts with a setting missing would log "ready" and then fail
every task; it exits 2 instead, naming every setting to fix.

``health`` is `dialsync health`, the container healthcheck: it reads the state database and
reports unhealthy when the last pull failed for a reason only the operator can fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from dialsync.errors import ConfigError, TransientError
from dialsync.settings import Settings, combined, env_name

log = logging.getLogger(__name__)

# Runs that read Salesforce and write the sync table: the embedded `run` records "sync" (and
# "full"), the service "pull".
PULL_KINDS = ("pull", "sync", "full")
# Waits between attempts to reach a database (or broker) that is down: growing, then capped.
BACKOFF_START, BACKOFF_CAP = 1.0, 30.0


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused connection to the state database or the broker: transient."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return isinstance(exc, (RedisConnectionError, RedisTimeout))


def backoff(attempt: int, start: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> float:
    """The wait before attempt ``attempt + 1``: start, 2x start, 4x start ... up to cap."""
    return float(min(cap, start * 2 ** max(0, attempt - 1)))


def preflight(
    settings: Settings,
    *,
    broker: bool,
    flower: bool = False,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Raise one ConfigError naming every problem; wait (with backoff, logged) for a state
    database that cannot be reached, since it may simply be starting."""
    check_settings(settings, broker=broker, flower=flower)
    wait_for_database(settings, sleep=sleep)


def check_settings(settings: Settings, *, broker: bool, flower: bool = False) -> None:
    """Raise one ConfigError naming every setting (and mapping file error) to fix."""
    problems = settings.problems()
    if broker and not settings.broker_url:
        name = env_name("broker_url")
        problems.append(
            ConfigError(
                f"{name} is not set (e.g. redis://localhost:6379/0); without a broker use "
                "`dialsync run` or `dialsync sync`",
                setting=name,
            )
        )
    if flower:
        problems += settings.flower.auth_problems()
    if settings.mapping.file is not None and settings.mapping.file.is_file():
        from dialsync.mapping.file import MappingFileError, check_mapping

        found = check_mapping(settings.mapping.file, settings.talkdesk.record_list_id)
        if found.errors:
            problems.append(MappingFileError(settings.mapping.file, found.errors))
    if problems:
        raise combined(problems)


def wait_for_database(
    settings: Settings,
    *,
    sleep: Callable[[float], object] = time.sleep,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Reach the state database and check its schema: a PostgreSQL schema behind is a
    ConfigError (`dialsync db upgrade`). Nothing is created or migrated here: SQLite is
    migrated by the first process that writes to it, and processes starting together (a
    worker and a beat) must not race to do it."""
    from sqlalchemy.engine import make_url

    from dialsync.store import migrate
    from dialsync.store.store import open_store

    url = make_url(settings.database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and not Path(url.database).exists():
        return  # created by the first sync
    attempt = 0
    while not stopped():
        attempt += 1
        try:
            store = open_store(settings.database_url, auto_migrate=False)
            try:
                current = migrate.is_current(store.engine)
            finally:
                store.engine.dispose()
        except (TransientError, SQLAlchemyError) as exc:
            wait = backoff(attempt)
            log.warning("state database unavailable (%s); trying again in %.0f s", exc, wait)
            sleep(wait)
            continue
        if not current and not sqlite:
            name = env_name("database_url")
            raise ConfigError(
                f"the state database ({name}) is not at the current schema: run "
                "`dialsync db upgrade`",
                setting=name,
            )
        return


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "detail": self.detail}


def health(settings: Settings) -> Health:
    """Healthy unless the state database cannot be read, its schema is behind, or the last
    pull failed (or partly failed) because a setting or a credential is wrong."""
    from sqlalchemy.engine import make_url

    from dialsync.store import migrate
    from dialsync.store.store import open_store

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return Health(True, "no state database yet: nothing has run")  # and do not create one
    try:
        store = open_store(settings.database_url, auto_migrate=False)
        try:
            if not migrate.is_current(store.engine):
                return Health(False, "the state database schema is behind: `dialsync db upgrade`")
            last = next(
                (run for run in store.recent_runs(5, PULL_KINDS) if run["status"] != "running"),
                None,
            )
        finally:
            store.engine.dispose()
    except (TransientError, ConfigError, SQLAlchemyError) as exc:
        return Health(False, f"state database: {exc}")
    if last is None:
        return Health(True, "no pull has finished yet")
    when = last["finished_at"] or last["started_at"]
    label = f"last pull #{last['id']} ({last['kind']}, {when:%Y-%m-%d %H:%M:%S} UTC)"
    if last["status"] in ("failed", "partial") and last.get("error_kind") == "config":
        return Health(False, f"{label} {last['status']}: a setting or credential: {last['error']}")
    if last["status"] in ("failed", "partial", "interrupted"):
        return Health(True, f"{label} {last['status']} (transient: retried): {last['error']}")
    return Health(True, f"{label} ok")
