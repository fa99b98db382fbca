"""Notice that what a sync would send differs from what it sent, though no contact changed.

Per target, the fingerprint of everything that shapes its payloads (``mapping.fingerprint``)
is stored once a pull has rendered every contact with it. When the current fingerprint
differs, the next pull reads every contact again and re-renders it; the sync table then queues
only the records whose payload really changed (an unchanged one costs no call), and the
fingerprint is stored when that pass is durable. A pull that fails half-way leaves the old
fingerprint, so the next one re-renders again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialsync.destinations.base import Destination
from dialsync.mapping.contact import MappingConfig
from dialsync.mapping.fingerprint import changed_inputs, describe, fingerprint, target_inputs
from dialsync.models import DialerRecord, Skip, SourceContact
from dialsync.store.protocol import SyncStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetChange:
    """A target whose stored fingerprint differs from the current one."""

    destination: str
    target: str
    changed: list[str]  # input names; empty when none was recorded

    @property
    def reason(self) -> str:
        return describe(self.changed)


class MappingWatch:
    """Compares, then records, the fingerprints of an engine's targets."""

    def __init__(self, store: SyncStore) -> None:
        self.store = store
        # "name:target" -> (destination, fingerprint, inputs) with the current settings
        self._targets: dict[str, tuple[Destination, str, dict[str, Any]]] = {}
        self._current: dict[str, tuple[Destination, str, dict[str, Any]]] = {}

    def compute(
        self,
        destinations: Sequence[Destination],
        *,
        config: MappingConfig,
        fields: Sequence[str],
        mapper: Callable[[SourceContact, MappingConfig], DialerRecord | Skip],
        payload_settings: Mapping[str, Any],
    ) -> None:
        """Fingerprint each target's current inputs. They hold for the life of the engine (its
        settings, the org's fields read as the source opens): done once, not every pull."""
        self._targets.clear()
        for dest in destinations:
            inputs = target_inputs(
                config=config,
                fields=fields,
                mapper=mapper,
                render=dest.render,
                payload_settings=payload_settings,
            )
            self._targets[f"{dest.name}:{dest.target}"] = (dest, fingerprint(inputs), inputs)

    def check(self, *, synced_before: bool) -> dict[str, TargetChange]:
        """Targets to re-render, by "name:target".

        Before the first pull nothing was rendered: the fingerprint is stored at once, so a
        first pass that fails half-way resumes incrementally, and a mapping changed before the
        resume re-renders the part already written. After it, a target with no fingerprint (a
        list new to the routing, or a table from before fingerprints) is re-rendered too.
        """
        changes: dict[str, TargetChange] = {}
        self._current.clear()
        for key, (dest, digest, inputs) in self._targets.items():
            recorded = self.store.target(dest.name, dest.target).fingerprint()
            if recorded is not None and recorded.fingerprint == digest:
                continue
            if recorded is None and not synced_before:
                self.store.target(dest.name, dest.target).save_fingerprint(digest, inputs)
                continue
            self._current[key] = (dest, digest, inputs)
            change = TargetChange(
                dest.name,
                dest.target,
                changed_inputs(recorded.inputs if recorded else None, inputs),
            )
            changes[key] = change
            log.warning(
                "%s: the mapping changed since its records were rendered (%s): every contact "
                "is read and rendered again; only records whose payload changed are sent",
                key,
                change.reason,
            )
        return changes

    def record(self) -> None:
        """Called when the pass that rendered every contact with the current inputs is
        durable in the sync table."""
        for dest, digest, inputs in self._current.values():
            self.store.target(dest.name, dest.target).save_fingerprint(digest, inputs)
        self._current.clear()
