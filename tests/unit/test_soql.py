from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from dialsync.sandbox import soql
from dialsync.sandbox.soql import SoqlFieldError, SoqlSyntaxError, SoqlTypeError

TYPES = {
    "Id": "id",
    "IsDeleted": "boolean",
    "AccountId": "reference",
    "FirstName": "string",
    "LastName": "string",
    "Phone": "phone",
    "MailingCountry": "string",
    "DoNotCall": "boolean",
    "SystemModstamp": "datetime",
    "Account.Name": "string",
    "Owner.Name": "string",
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
Row = dict[str, Any]


def ids(rows: list[Row]) -> list[str]:
    return [r["Id"] for r in rows]


def run(text: str, rows: list[Row]) -> list[Row]:
    return soql.parse(text, TYPES).apply(rows, lambda row, name: row.get(name))


def make_id(n: int, upper: bool = False) -> str:
    body = f"003{'A' if upper else 'a'}{n:011d}"
    return soql.id18(body)


def test_resume_predicate_returns_exactly_the_rows_after_the_position() -> None:
    rows = [
        {"Id": make_id(i), "SystemModstamp": T0 + timedelta(seconds=s)}
        for i, s in [(5, 0), (1, 0), (3, 0), (2, 1), (4, -1), (9, 0)]
    ]
    after = make_id(3)
    text = (
        f"SELECT Id, SystemModstamp FROM Contact WHERE (SystemModstamp = 2026-01-01T00:00:00Z "
        f"AND Id > '{after}') OR SystemModstamp > 2026-01-01T00:00:00Z "
        "ORDER BY SystemModstamp, Id"
    )
    assert ids(run(text, rows)) == [make_id(5), make_id(9), make_id(2)]


def test_ids_sort_as_strings_so_case_matters() -> None:
    rows = [{"Id": make_id(1)}, {"Id": make_id(1, upper=True)}]
    # 'A' < 'a' in the byte order Ids are compared in
    assert ids(run("SELECT Id FROM Contact ORDER BY Id", rows)) == ids(rows[::-1])


@pytest.mark.parametrize(
    "literal",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:00.000+0000",
        "2026-01-01T02:00:00+02:00",
        "2025-12-31T19:00:00.000-0500",
    ],
)
def test_datetime_literals_in_every_form_compare_as_utc(literal: str) -> None:
    rows = [{"Id": make_id(1), "SystemModstamp": T0}, {"Id": make_id(2), "SystemModstamp": T0}]
    assert len(run(f"SELECT Id FROM Contact WHERE SystemModstamp = {literal}", rows)) == 2
    assert run(f"SELECT Id FROM Contact WHERE SystemModstamp > {literal}", rows) == []


def test_in_and_not_in_ignore_case_and_treat_null_as_a_value() -> None:
    rows = [
        {"Id": make_id(1), "MailingCountry": "France"},
        {"Id": make_id(2), "MailingCountry": "germany"},
        {"Id": make_id(3), "MailingCountry": None},
    ]
    assert ids(
        run("SELECT Id FROM Contact WHERE MailingCountry IN ('FRANCE', 'Germany')", rows)
    ) == [
        make_id(1),
        make_id(2),
    ]
    assert ids(run("SELECT Id FROM Contact WHERE MailingCountry NOT IN ('France')", rows)) == [
        make_id(2),
        make_id(3),
    ]
    assert ids(run("SELECT Id FROM Contact WHERE MailingCountry IN ('France', null)", rows)) == [
        make_id(1),
        make_id(3),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("'smi%'", [1, 2]),
        ("'%TH'", [1]),
        ("'sm_th'", [1]),
        ("'%\\%%'", [3]),
        ("'100\\_%'", [4]),
        ("'%'", [1, 2, 3, 4]),
    ],
)
def test_like(pattern: str, expected: list[int]) -> None:
    rows = [
        {"Id": make_id(1), "LastName": "Smith"},
        {"Id": make_id(2), "LastName": "smithers"},
        {"Id": make_id(3), "LastName": "50% off"},
        {"Id": make_id(4), "LastName": "100_a"},
        {"Id": make_id(5), "LastName": None},
    ]
    found = run(f"SELECT Id FROM Contact WHERE LastName LIKE {pattern}", rows)
    assert ids(found) == [make_id(n) for n in expected]


def test_null_comparisons_follow_soql_not_sql() -> None:
    rows = [{"Id": make_id(1), "Phone": "1"}, {"Id": make_id(2), "Phone": None}]
    assert ids(run("SELECT Id FROM Contact WHERE Phone = null", rows)) == [make_id(2)]
    assert ids(run("SELECT Id FROM Contact WHERE Phone != null", rows)) == [make_id(1)]
    # a null differs from every value, so != keeps it and NOT (=) keeps it
    assert len(run("SELECT Id FROM Contact WHERE Phone != '1'", rows)) == 1
    assert len(run("SELECT Id FROM Contact WHERE Phone <> '2'", rows)) == 2
    assert len(run("SELECT Id FROM Contact WHERE NOT Phone = '1'", rows)) == 1
    assert run("SELECT Id FROM Contact WHERE Phone > '0' AND Phone < '1'", rows) == []


def test_booleans_strings_and_nested_logic() -> None:
    rows = [
        {"Id": make_id(1), "DoNotCall": True, "LastName": "O'Hara", "Account.Name": "Acme"},
        {"Id": make_id(2), "DoNotCall": False, "LastName": "Lee", "Account.Name": None},
    ]
    text = (
        "select id from contact where DoNotCall = false or "
        "(lastname = 'o\\'hara' and NOT (account.name = null))"
    )
    assert len(run(text, rows)) == 2
    assert ids(run("SELECT Id FROM Contact WHERE DoNotCall = TRUE", rows)) == [make_id(1)]


def test_order_by_desc_nulls_and_limit() -> None:
    rows = [
        {"Id": make_id(1), "LastName": "b"},
        {"Id": make_id(2), "LastName": None},
        {"Id": make_id(3), "LastName": "A"},
    ]
    assert ids(run("SELECT Id FROM Contact ORDER BY LastName", rows)) == ids(
        [rows[1], rows[2], rows[0]]
    )
    desc = run("SELECT Id FROM Contact ORDER BY LastName DESC", rows)
    assert ids(desc) == ids([rows[0], rows[2], rows[1]])
    last = run("SELECT Id FROM Contact ORDER BY LastName ASC NULLS LAST LIMIT 2", rows)
    assert ids(last) == ids([rows[2], rows[0]])


def test_parse_exposes_the_parts_with_canonical_names() -> None:
    query = soql.parse(
        "SELECT id, account.NAME FROM contact WHERE lastname = 'x' ORDER BY systemmodstamp DESC "
        "LIMIT 10",
        TYPES,
    )
    assert query.fields == ("Id", "Account.Name")
    assert query.object_name == "contact"
    assert query.limit == 10
    assert [(o.field.name, o.descending) for o in query.order_by] == [("SystemModstamp", True)]
    assert isinstance(query.where, soql.Comparison)
    assert query.matches(lambda name: {"LastName": "X"}[name])


def test_count_and_15_character_id_literals() -> None:
    query = soql.parse("SELECT COUNT() FROM Contact WHERE Id = '003000000000001'", TYPES)
    assert query.count_only
    assert query.matches(lambda name: "003000000000001AAA")


def test_unbound_parse_only_checks_syntax() -> None:
    query = soql.parse("SELECT Foo, Bar.Baz FROM Lead WHERE Foo = 1")
    assert query.fields == ("Foo", "Bar.Baz")
    assert query.object_name == "Lead"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT FROM Contact",
        "SELECT Id, FROM Contact",
        "SELECT Id Contact",
        "SELECT Id FROM Contact WHERE",
        'SELECT Id FROM Contact WHERE LastName = "x"',
        "SELECT Id FROM Contact WHERE LastName = 'x",
        "SELECT Id FROM Contact WHERE LastName = 'a\\qb'",
        "SELECT Id FROM Contact WHERE LastName = 'a' AND Phone = 'b' OR Phone = 'c'",
        "SELECT Id FROM Contact WHERE (LastName = 'a'",
        "SELECT Id FROM Contact WHERE LastName IN ()",
        "SELECT Id FROM Contact WHERE LastName NOT LIKE 'a%'",
        "SELECT Id FROM Contact WHERE LastName LIKE 5",
        "SELECT Id FROM Contact WHERE Phone > null",
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00",
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-02-30T00:00:00Z",
        "SELECT Id FROM Contact LIMIT -1",
        "SELECT Id FROM Contact LIMIT 10 extra",
        "SELECT Id FROM Contact ORDER Id",
        "SELECT Id, id FROM Contact",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(SoqlSyntaxError):
        soql.parse(text, TYPES)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("SELECT Id, MailingCountryCode FROM Contact", "MailingCountryCode", "No such column"),
        ("SELECT Id FROM Contact WHERE Foo = 'x'", "Foo", "No such column"),
        ("SELECT Id FROM Contact ORDER BY Bar", "Bar", "No such column"),
        ("SELECT Account.Foo FROM Contact", "Account.Foo", "on entity 'Account'"),
        ("SELECT Boss.Name FROM Contact", "Boss.Name", "Didn't understand relationship 'Boss'"),
    ],
)
def test_unknown_fields(text: str, field: str, message: str) -> None:
    with pytest.raises(SoqlFieldError) as caught:
        soql.parse(text, TYPES)
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize(
    "where",
    [
        "SystemModstamp > 2026-01-01",
        "SystemModstamp > '2026-01-01T00:00:00Z'",
        "DoNotCall = 'true'",
        "LastName = 5",
        "Id = 'not-an-id'",
        "Id > ''",
        "DoNotCall LIKE 'x'",
    ],
)
def test_type_mismatches(where: str) -> None:
    with pytest.raises(SoqlTypeError):
        soql.parse(f"SELECT Id FROM Contact WHERE {where}", TYPES)


def test_error_message_points_at_the_token() -> None:
    text = "SELECT Id, Nope FROM Contact"
    with pytest.raises(SoqlFieldError) as caught:
        soql.parse(text, TYPES)
    message = soql.salesforce_message(text, caught.value)
    assert "ERROR at Row:1:Column:12" in message
    assert "No such column 'Nope' on entity 'Contact'" in message


def test_datetime_helpers_round_trip() -> None:
    value = datetime(2026, 11, 22, 7, 54, 32, tzinfo=timezone(timedelta(hours=1)))
    text = soql.format_datetime(value)
    assert text == "2026-11-22T06:54:32.000+0000"
    assert soql.parse_datetime(text) == value
    with pytest.raises(ValueError):
        soql.parse_datetime("2026-11-22T07:54:32")
    assert soql.parse("SELECT Id FROM Contact WHERE X = 2026-11-22").where == soql.Comparison(
        soql.FieldRef("X", 29), "=", soql.Literal("date", date(2026, 11, 22), 33)
    )


def test_id18_checksum() -> None:
    assert soql.id18("a0D30000001n7Pi") == "a0D30000001n7PiEAI"
    assert soql.id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
