"""The JSON schemas under tests/contract/specs/ are valid, name their sources, and catch the
shapes issue 12 found: the checker itself can fail."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from jsonschema import Draft202012Validator

from dialsync.sandbox.server import Exchange, Request, Response
from tests.contract.spec_check import problems, spec


def exchange(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    form: dict[str, str] | None = None,
    status: int = 200,
    answer: Any = None,
) -> Exchange:
    raw = urlencode(form).encode() if form is not None else b""
    if body is not None:
        raw = json.dumps(body).encode()
    request = Request(method, path, {k: [v] for k, v in (query or {}).items()}, {}, raw)
    return Exchange(request, Response(status, answer))


@pytest.mark.parametrize("system", ["everbridge", "conga"])
def test_every_schema_is_valid_and_names_its_sources(system: str) -> None:
    document = spec(system)
    for source in document["written_from"]:
        assert source["repository"] and source["path"] and source["version"]
    for operation in document["operations"]:
        schemas = [*operation["request"].values(), *operation["responses"].values()]
        for schema in schemas:
            Draft202012Validator.check_schema({"$defs": document.get("$defs", {}), **schema})


CONTACT = {
    "externalId": "003000000000001AAA",
    "firstName": "F",
    "lastName": "L",
    "recordTypeId": 1533823015714817,
    "paths": [
        {
            "pathId": 241901148045319,
            "countryCode": "US",
            "value": "+14152000001",
            "waitTime": 0,
            "skipValidation": False,
            "pathEnable": True,
        }
    ],
}
ORG = "/rest/contacts/453003085612771"


def test_a_documented_everbridge_batch_passes() -> None:
    ok = exchange("POST", f"{ORG}/batch", body=[CONTACT], answer={"code": 100, "message": "OK"})
    assert problems("everbridge", ok) == []


@pytest.mark.parametrize(
    ("case", "found"),
    [
        # 1: the token form without its required scope
        (
            exchange(
                "POST",
                "/authorization/v1/tokens",
                form={"grant_type": "password", "client_id": "c", "client_secret": "s"},
                answer={"access_token": "a", "token_type": "bearer", "expires_in": 28800},
            ),
            "'scope' is a required property",
        ),
        # 2: the per-contact results only our old sandbox sent
        (
            exchange(
                "POST",
                f"{ORG}/batch",
                body=[CONTACT],
                answer={"code": 100, "message": "OK", "data": [{"externalId": "x"}]},
            ),
            "Additional properties are not allowed ('data' was unexpected)",
        ),
        # 8: a path named by its prompt, a record type by its name
        (
            exchange(
                "POST",
                f"{ORG}/batch",
                body=[
                    {
                        **CONTACT,
                        "recordTypeId": None,
                        "paths": [{"prompt": "Mobile Phone", "value": "1"}],
                    }
                ],
                answer={"code": 100, "message": "OK"},
            ),
            "'pathId' is a required property",
        ),
        # 8: externalId over 50 characters
        (
            exchange(
                "POST",
                f"{ORG}/batch",
                body=[{**CONTACT, "externalId": "x" * 51}],
                answer={"code": 100, "message": "OK"},
            ),
            "is too long",
        ),
    ],
)
def test_everbridge_shapes_issue_12_found_are_caught(case: Exchange, found: str) -> None:
    assert any(found in p for p in problems("everbridge", case)), problems("everbridge", case)


C = "/api/data/v1/Contact"


@pytest.mark.parametrize(
    ("case", "found"),
    [
        # 5: a total asked of the listing, which documents none
        (
            exchange(
                "GET",
                C,
                query={"pageSize": "1", "pageNumber": "1", "includeTotalCount": "true"},
                answer={"Success": True, "Data": [], "RecordCount": 0, "StatusCode": "OK"},
            ),
            "'includeTotalCount' was unexpected",
        ),
        # 6: the key in the single PUT's body
        (
            exchange(
                "PUT",
                f"{C}/by-externalId/003000000000001AAA",
                body={"ExternalId": "003000000000001AAA", "LastName": "L"},
                answer={"Success": True, "StatusCode": "OK"},
            ),
            "'ExternalId' was unexpected",
        ),
        # 7: StatusCode as a number, errors with more than a Message
        (
            exchange(
                "DELETE",
                f"{C}/by-externalId/003000000000001AAA",
                status=404,
                answer={"Success": False, "Errors": [{"Message": "x"}], "StatusCode": 404},
            ),
            "404 is not one of",
        ),
        (
            exchange(
                "DELETE",
                f"{C}/by-externalId/003000000000001AAA",
                answer={"Success": True, "Data": {"Id": "x"}, "StatusCode": "OK"},
            ),
            "is not of type 'boolean', 'null'",
        ),
    ],
)
def test_conga_shapes_issue_12_found_are_caught(case: Exchange, found: str) -> None:
    assert any(found in p for p in problems("conga", case)), problems("conga", case)


def test_an_undocumented_operation_is_caught() -> None:
    case = exchange("GET", "/api/data/v1/Contact/summary", answer={"Success": True})
    assert problems("conga", case) == [
        "GET /api/data/v1/Contact/summary: not an operation of the conga documents"
    ]
