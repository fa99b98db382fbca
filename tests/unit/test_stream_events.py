"""The stream's pure parts: decoding a change event with the schema GetSchema gives, which
contacts a batch of events asks to re-read, the tenant id, and gRPC errors translated."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from dialsync.errors import AuthError, TerminalError, TransientError
from dialsync.sandbox.cdc import ChangeEventSchema
from dialsync.stream.client import AllocationExceeded, ReplayRefused, tenant_id, translate
from dialsync.stream.events import ChangeEvent, SchemaCache
from dialsync.stream.subscriber import contact_ids

JOEY = "003000000000001AAA"
ROSS = "003000000000002AAA"
SCHEMA = ChangeEventSchema([("FirstName", "string"), ("DoNotCall", "boolean")])


def event(kind: str, *ids: str, entity: str = "Contact") -> ChangeEvent:
    return ChangeEvent(b"\x01", kind, entity, ids, None, "tx", 1)


def test_decodes_the_header_with_the_schema_fetched_once_per_id() -> None:
    fetched: list[str] = []

    def fetch(schema_id: str) -> str:
        fetched.append(schema_id)
        return SCHEMA.json

    at = datetime(2026, 12, 4, 22, 0, 1, tzinfo=UTC)
    payload = SCHEMA.encode(
        change_type="UPDATE",
        record_ids=[JOEY],
        changed=["DoNotCall"],
        at=at,
        transaction_key="abc",
        sequence=3,
        values={"DoNotCall": True},
    )
    cache = SchemaCache(fetch)
    first = cache.decode(SCHEMA.id, payload, b"\x00\x07")
    again = cache.decode(SCHEMA.id, payload, b"\x00\x08")
    assert fetched == [SCHEMA.id]
    assert (first.change_type, first.record_ids, first.commit_time) == ("UPDATE", (JOEY,), at)
    assert (first.transaction_key, first.sequence, again.replay_id) == ("abc", 3, b"\x00\x08")


def test_a_payload_that_does_not_decode_is_terminal() -> None:
    cache = SchemaCache(lambda _: SCHEMA.json)
    with pytest.raises(TerminalError):
        cache.decode(SCHEMA.id, b"\x02", b"\x01")


def test_ids_of_a_batch_are_unique_normalized_and_overflow_is_flagged() -> None:
    ids, overflow = contact_ids(
        [
            event("CREATE", JOEY),
            event("UPDATE", JOEY[:15], ROSS),  # a 15-char Id is the same contact
            event("GAP_DELETE", ROSS),
            event("UPDATE", "001000000000001AAA", entity="Account"),
            event("DELETE", "not-an-id"),
        ]
    )
    assert (ids, overflow) == ([JOEY, ROSS], False)
    assert contact_ids([event("GAP_OVERFLOW")]) == ([], True)


def test_a_wildcard_record_id_asks_for_a_window_read() -> None:
    """Salesforce names every record of the entity with a wildcard ("003*") when a field's
    type is converted: no id to re-read, so the window read must cover them (it was skipped
    as malformed, and the position moved past it)."""
    assert contact_ids([event("UPDATE", "003*"), event("UPDATE", JOEY)]) == ([JOEY], True)


def test_tenant_id_is_the_org_of_the_identity_url_else_of_the_session_token() -> None:
    org = "00D5e000000AbCdEAK"
    assert tenant_id(f"https://login.salesforce.com/id/{org}/005000000000001AAA", "t") == org
    assert tenant_id(None, f"{org[:15]}!AQ0AQ.secret") == org
    with pytest.raises(AuthError):
        tenant_id(None, "opaque-token")


class FakeRpcError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, error_code: str = "") -> None:
        self._code, self._error_code = code, error_code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "details rpcId: 1"

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("error-code", self._error_code),) if self._error_code else ()

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


@pytest.mark.parametrize(
    ("code", "error_code", "expected"),
    [
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted",
            ReplayRefused,
        ),
        (
            grpc.StatusCode.UNAUTHENTICATED,
            "sfdc.platform.eventbus.grpc.service.auth.error",
            AuthError,
        ),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "", AllocationExceeded),
        (grpc.StatusCode.UNAVAILABLE, "", TransientError),
        (grpc.StatusCode.NOT_FOUND, "sfdc.platform.eventbus.grpc.topic.not.found", TerminalError),
    ],
)
def test_grpc_failures_become_dialsync_errors(
    code: grpc.StatusCode, error_code: str, expected: type[Exception]
) -> None:
    translated = translate(FakeRpcError(code, error_code))
    assert type(translated) is expected
