"""The numeric ids Everbridge's batch schema wants for the configured record type and paths.

The settings name them (``record_type_name``, a path's prompt) or give the id; ``resolve``
reads the organization's listings (``GET /recordTypes/{org}``, ``GET /contactPaths/{org}``)
once and every write carries the ids. Where the listings are not allowed, the names seed 002
shows working are sent instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dialsync.destinations.base import WriteItem
from dialsync.destinations.common import DestinationConfigError
from dialsync.destinations.everbridge_contact import PATH_DEFAULTS, record_type
from dialsync.destinations.http import NotFound, RequestRefused
from dialsync.errors import AuthError
from dialsync.settings import EverbridgeSettings, env_name

log = logging.getLogger(__name__)

SYSTEM = "everbridge"
Listing = Callable[[str], list[dict[str, Any]]]  # a resource name -> every item it lists


class EverbridgeIds:
    def __init__(self, settings: EverbridgeSettings, organization: str) -> None:
        self.settings = settings
        self.organization = organization
        self.record_type_id: int | None = settings.record_type_id
        self.path_ids: dict[str, int] = {}  # a configured prompt -> its pathId
        self.resolved = False

    def resolve(self, listing: Listing) -> None:
        """Names to ids. An organization that does not let this user list them keeps the names
        (seed 002: they work too); a listing that fails for now (a 5xx, the network) raises,
        and the next write tries again."""
        try:
            types = listing("recordTypes")
            paths = listing("contactPaths")
        except (AuthError, NotFound, RequestRefused) as exc:
            self.resolved = True
            log.warning("everbridge: cannot list record types and paths (%s): names are sent", exc)
            return
        self.resolved = True
        by_name = {str(t.get("name")): t.get("id") for t in types if isinstance(t.get("id"), int)}
        wanted_id = self.settings.record_type_id
        if wanted_id is None:
            found = by_name.get(str(self.settings.record_type_name))
            if found is None:
                raise self.unknown_record_type()
            self.record_type_id = found
        elif wanted_id not in by_name.values():
            raise self.unknown_record_type()
        prompts = {
            str(p.get("prompt")): p["pathId"] for p in paths if isinstance(p.get("pathId"), int)
        }
        configured = [("paths", v) for v in self.settings.paths.values()]
        if self.settings.email_path:
            configured.append(("email_path", self.settings.email_path))
        for field, ref in configured:
            known = int(ref) in prompts.values() if ref.isdigit() else ref in prompts
            if not known:
                setting = env_name("everbridge", field)
                raise DestinationConfigError(
                    f"Everbridge organization {self.organization} has no contact path {ref!r} "
                    f"(it has {', '.join(sorted(prompts)) or 'none'}): check {setting}",
                    setting=setting,
                    system=SYSTEM,
                )
            if not ref.isdigit():
                self.path_ids[ref] = prompts[ref]
            else:
                name = next(n for n, i in prompts.items() if i == int(ref))
                self.path_ids[name] = int(ref)

    def found(self) -> dict[str, dict[str, int]]:
        """The ids found for the configured record type and paths, by name (doctor)."""
        out: dict[str, dict[str, int]] = {"record type": {}, "paths": dict(self.path_ids)}
        if self.record_type_id is not None:
            label = self.settings.record_type_name or str(self.record_type_id)
            if self.settings.record_type_id is not None:
                label = str(self.settings.record_type_id)
            out["record type"][label] = self.record_type_id
        return out

    def sendable(self, item: WriteItem) -> dict[str, Any]:
        """The contact as written. The record type and the path ids are settings, not contact
        data: rows queued before a setting was fixed go with the current ones, unchanged
        hashes."""
        payload = {
            k: v
            for k, v in (item.payload or {}).items()
            if k not in ("recordTypeId", "recordTypeName")
        }
        if self.record_type_id is not None:
            payload["recordTypeId"] = self.record_type_id
        else:
            payload.update(record_type(self.settings))
        if isinstance(payload.get("paths"), list):
            payload["paths"] = [self._path(p) for p in payload["paths"]]
        return payload

    def _path(self, path: Any) -> Any:
        if not isinstance(path, dict):
            return path
        out = {**PATH_DEFAULTS, **path}
        prompt = out.get("prompt")
        if isinstance(prompt, str) and prompt in self.path_ids:
            del out["prompt"]
            out["pathId"] = self.path_ids[prompt]
        return out

    def unknown_record_type(self) -> DestinationConfigError:
        field = "record_type_id" if self.settings.record_type_id is not None else "record_type_name"
        setting = env_name("everbridge", field)
        value = getattr(self.settings, field)
        return DestinationConfigError(
            f"the record type {value!r} is not found in Everbridge organization "
            f"{self.organization}: check {setting}",
            setting=setting,
            system=SYSTEM,
        )
