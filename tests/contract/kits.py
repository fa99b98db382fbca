"""One adapter and its sandbox behind the same small interface, so one contract suite runs
against Talkdesk, Everbridge and Conga alike: real HTTP on loopback, nothing mocked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from dialsync.destinations.base import Destination, Outcome, WriteItem
from dialsync.destinations.conga import CongaDestination
from dialsync.destinations.everbridge import EverbridgeDestination
from dialsync.destinations.talkdesk import TalkdeskDestination
from dialsync.models import DialerRecord, Phone, PhoneType
from dialsync.sandbox.conga import CongaSandbox
from dialsync.sandbox.everbridge import EverbridgeSandbox
from dialsync.sandbox.salesforce import make_id
from dialsync.sandbox.talkdesk import TalkdeskSandbox
from dialsync.settings import CongaSettings, EverbridgeSettings, TalkdeskSettings
from tests.contract.spec_check import check_exchanges

DESTINATIONS = ("talkdesk", "everbridge", "conga")


def record(n: int, *, last_name: str | None = None, mobile: str | None = None) -> DialerRecord:
    """A mapped contact whose external id is a real-looking Salesforce Contact Id."""
    contact_id = make_id("003", n)
    return DialerRecord(
        external_provider="salesforce",
        external_id=contact_id,
        external_url=f"https://acme.my.salesforce.com/lightning/r/Contact/{contact_id}/view",
        first_name=f"First{n}",
        last_name=last_name or f"Last{n}",
        phones=(
            Phone(number=mobile or f"+1415{2000000 + n:07d}", type=PhoneType.MOBILE, region="US"),
        ),
        timezone="America/Los_Angeles",
        extra_data={"title": "Buyer", "email": f"p{n}@example.com"},
        email=f"p{n}@example.com",
        mailing_country_code="US",
    )


def upsert(dest: Destination, *numbers: int) -> list[Outcome]:
    """Create records ``numbers`` in one call; their outcomes."""
    recs = [record(n) for n in numbers]
    results = dest.create([WriteItem(r.external_id, None, dest.render(r)) for r in recs])
    return [r.outcome for r in results]


def eb_settings(box: EverbridgeSandbox, **overrides: Any) -> EverbridgeSettings:
    values: dict[str, Any] = {
        "api_url": box.api_url,
        "token_url": box.token_url,
        "organization_id": box.organization_id,
        "client_id": box.client_id,
        "client_secret": SecretStr(box.client_secret),
        "username": box.username,
        "password": SecretStr(box.password),
        "max_writes_per_minute": None,  # the sandbox's own limit is what these tests meet
        "timeout_seconds": 5,
    }
    return EverbridgeSettings(**{**values, **overrides})


def cg_settings(box: CongaSandbox, **overrides: Any) -> CongaSettings:
    values: dict[str, Any] = {
        "api_url": box.url,
        "token_url": box.token_url,
        "client_id": box.client_id,
        "client_secret": SecretStr(box.client_secret),
        "timeout_seconds": 5,
    }
    return CongaSettings(**{**values, **overrides})


@dataclass
class Kit:
    """What the suite needs from one destination and its sandbox."""

    name: str
    build: Callable[..., Destination]  # build(sleep=...) -> a fresh adapter on the sandbox
    held: Callable[[], dict[str, list[dict[str, Any]]]]  # ours: external id -> stored records
    last_name: Callable[[dict[str, Any]], str]
    add_foreign: Callable[[], None]  # a record from another source
    remove_by_hand: Callable[[str], None]
    spoil: Callable[[dict[str, Any]], dict[str, Any]]  # a payload refused for this record only
    expire_tokens: Callable[[], None]
    fail_next: Callable[[int, int, float | None], None]
    stats: Callable[[], dict[str, Any]]
    set_faults: Callable[..., None]  # error_500_rate=, drop_after_apply_rate=
    sleeps: list[float] = field(default_factory=list)
    # Every request and answer of the test against the vendor's documents (none for Talkdesk,
    # whose checks live in its sandbox's own tests).
    check_spec: Callable[[], None] = lambda: None

    def one(self, external_id: str) -> dict[str, Any]:
        found = self.held().get(external_id, [])
        assert len(found) == 1, f"{self.name}: {len(found)} records for {external_id}"
        return found[0]


def _group(records: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        out.setdefault(str(rec[key]), []).append(rec)
    return out


@contextmanager
def talkdesk_kit() -> Iterator[Kit]:
    with TalkdeskSandbox() as box:
        list_id = box.create_list("Contract", "EXTERNAL")
        settings = TalkdeskSettings(
            api_url=box.url,
            token_url=box.token_url,
            client_id=box.client_id,
            client_secret=SecretStr(box.client_secret),
            record_list_id=list_id,
            timeout_seconds=5,
        )

        def held() -> dict[str, list[dict[str, Any]]]:
            mine = [r for r in box.records(list_id) if r.get("external_provider") == "salesforce"]
            return _group(mine, "external_id")

        def remove(external_id: str) -> None:
            box.remove_record(list_id, kit.one(external_id)["id"])

        def spoil(payload: dict[str, Any]) -> dict[str, Any]:
            return {**payload, "phone_numbers": [{"phone_number": "12", "phone_type": "MOBILE"}]}

        def add_foreign() -> None:
            box.add_record(
                list_id,
                {
                    "first_name": "Csv",
                    "last_name": "Row",
                    "phone_numbers": [{"phone_number": "+14155550000", "phone_type": "HOME"}],
                    "external_provider": "csv",
                    "external_id": "row-1",
                },
            )

        kit = Kit(
            name="talkdesk",
            build=lambda **kw: TalkdeskDestination(settings, **kw),
            held=held,
            last_name=lambda r: str(r["last_name"]),
            add_foreign=add_foreign,
            remove_by_hand=remove,
            spoil=spoil,
            expire_tokens=box.expire_tokens,
            fail_next=box.fail_next,
            stats=box.stats,
            set_faults=box.set_faults,
        )
        yield kit


@contextmanager
def everbridge_kit() -> Iterator[Kit]:
    with EverbridgeSandbox() as box:
        box.server.record = True
        settings = eb_settings(box, attributes={"title": "Job Title"})

        def spoil(payload: dict[str, Any]) -> dict[str, Any]:
            path = {"prompt": "Mobile Phone", "countryCode": "US", "value": "12"}
            return {**payload, "paths": [path]}

        yield Kit(
            name="everbridge",
            build=lambda **kw: EverbridgeDestination(settings, **kw),
            held=lambda: _group(
                [c for c in box.contacts() if c["externalId"][:3] == "003"], "externalId"
            ),
            last_name=lambda c: str(c["lastName"]),
            add_foreign=lambda: box.add_contact(
                {"externalId": "hr-0001", "firstName": "Hr", "lastName": "Import"}
            ),
            remove_by_hand=box.remove,
            spoil=spoil,
            expire_tokens=box.expire_tokens,
            fail_next=box.fail_next,
            stats=box.stats,
            set_faults=box.set_faults,
            check_spec=lambda: check_exchanges("everbridge", box.server.exchanges),
        )


@contextmanager
def conga_kit() -> Iterator[Kit]:
    with CongaSandbox() as box:
        box.server.record = True
        settings = cg_settings(box)
        yield Kit(
            name="conga",
            build=lambda **kw: CongaDestination(settings, **kw),
            held=lambda: _group(
                [c for c in box.contacts() if c["ExternalId"][:3] == "003"], "ExternalId"
            ),
            last_name=lambda c: str(c["LastName"]),
            add_foreign=lambda: box.add_contact(
                {"ExternalId": "erp-0001", "FirstName": "Erp", "LastName": "Import"}
            ),
            remove_by_hand=box.remove,
            spoil=lambda payload: {**payload, "Email": "not an address"},
            expire_tokens=box.expire_tokens,
            fail_next=box.fail_next,
            stats=box.stats,
            set_faults=box.set_faults,
            check_spec=lambda: check_exchanges("conga", box.server.exchanges),
        )


KITS = {"talkdesk": talkdesk_kit, "everbridge": everbridge_kit, "conga": conga_kit}


def duplicates(kit: Kit) -> Counter[str]:
    return Counter({k: len(v) for k, v in kit.held().items() if len(v) > 1})
