"""Reading a refusal's code and message: the common shape, and Conga's envelope in conga.py."""

from __future__ import annotations

import httpx

from dialsync.destinations import conga, http


def _answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_the_common_reader_takes_code_message_and_fields() -> None:
    body = {"code": "1234", "message": "bad phone", "fields": [{"name": "phone"}, "x"]}
    assert http.error_fields(_answer(400, body)) == ("1234", "bad phone", [{"name": "phone"}])
    oauth = {"error": "invalid_client", "error_description": "unknown client"}
    assert http.error_fields(_answer(401, oauth)) == ("invalid_client", "unknown client", [])
    assert http.error_fields(httpx.Response(502, text="<html>")) == (None, "<html>", [])


def test_conga_reads_its_envelope_where_the_common_shape_is_absent() -> None:
    envelope = {
        "Success": False,
        "StatusCode": "BadRequest",
        "Errors": [{"Message": "Found unknown field(s): Foo"}, {"Message": "second"}],
    }
    assert conga.error_fields(_answer(400, envelope)) == (
        "BadRequest",
        "Found unknown field(s): Foo; second",
        [],
    )
    assert conga.error_fields(_answer(403, {"StatusCode": "Forbidden", "Message": "no"})) == (
        "Forbidden",
        "no",
        [],
    )
    # the OAuth shape still wins where it is present (Conga's token endpoint answers it)
    assert conga.error_fields(_answer(401, {"error": "invalid_client"}))[0] == "invalid_client"
