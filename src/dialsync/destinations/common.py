"""What the natively upserting adapters (Everbridge, Conga) share."""

from __future__ import annotations

from typing import TypeGuard

from dialsync.errors import ConfigError, TerminalError
from dialsync.salesforce_ids import is_valid_id

CONTACT_KEY_PREFIX = "003"  # Salesforce's key prefix for Contact Ids


class DestinationConfigError(ConfigError, TerminalError):
    """The destination refused something every record would hit: a setting must change.

    A ConfigError, so the CLI exits 2 and names the setting; also a TerminalError, so the engine
    releases the rows it claimed for the refused call before the error goes up.
    """

    def __init__(self, message: str, *, setting: str, system: str) -> None:
        super().__init__(message, setting=setting)
        self.system = system


def is_contact_id(value: object) -> TypeGuard[str]:
    """Whether an external id is one of ours: an 18-character Salesforce Contact Id.

    Both systems hold contacts from other sources too; only ours are scanned, adopted or removed.
    """
    return (
        isinstance(value, str)
        and len(value) == 18
        and value.startswith(CONTACT_KEY_PREFIX)
        and is_valid_id(value)
    )
