"""One Talkdesk destination per record list a mapping file routes contacts to.

Rows are keyed (destination, list, external id), so each list is a destination of its own to
the engine; they share one rate limiter, because the limit is Talkdesk's, not the list's.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence

import httpx

from dialsync.destinations.base import Destination
from dialsync.destinations.talkdesk import TalkdeskDestination
from dialsync.errors import ConfigError
from dialsync.mapping.file import SETTING
from dialsync.mapping.rules import ListRouter


def routed_destinations(
    built: Sequence[Destination],
    router: ListRouter,
    verify: ssl.SSLContext | bool,
    transport: Callable[[], httpx.BaseTransport] | None = None,  # one per list's client
) -> list[Destination]:
    """``built`` with its Talkdesk destination replaced by one per routed list."""
    talkdesk = next((d for d in built if isinstance(d, TalkdeskDestination)), None)
    if talkdesk is None:
        raise ConfigError(
            "the mapping file routes contacts to Talkdesk record lists, but talkdesk is not in "
            "DIALSYNC_DESTINATIONS",
            setting=SETTING,
        )
    out: list[Destination] = []
    for dest in built:
        if dest is not talkdesk:
            out.append(dest)
            continue
        for list_id in router.lists:
            if list_id == talkdesk.target:
                out.append(talkdesk)
                continue
            out.append(
                TalkdeskDestination(
                    talkdesk.settings.model_copy(update={"record_list_id": list_id}),
                    provider=talkdesk.provider,
                    verify=verify,
                    transport=transport() if transport else None,
                    limiter=talkdesk.api.limiter,
                )
            )
    if talkdesk not in out:
        talkdesk.close()  # its list receives nothing: routing.default names another one
    return out
