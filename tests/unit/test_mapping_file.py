"""The mapping file: validation that names the line, and the mapper and router it builds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dialsync.destinations.talkdesk import render_record
from dialsync.errors import ConfigError
from dialsync.mapping import CONTACT_FIELDS, MappingConfig, map_contact
from dialsync.mapping.file import MappingFileError, parse_mapping
from dialsync.mapping.file_text import toml_key_lines
from dialsync.mapping.rules import FileMapper, MappingSpec
from dialsync.models import DialerRecord, PhoneType, Skip, SkipReason, SourceContact
from dialsync.sandbox import seed

CONFIG = MappingConfig(instance_url="https://acme.my.salesforce.com")
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def contact(cid: str = "003000000000001AAA", **fields: Any) -> SourceContact:
    return SourceContact(id=cid, system_modstamp=STAMP, fields=fields)


def toml(text: str) -> FileMapper:
    return parse_mapping(text, Path("m.toml")).mapper()


def record(mapper: FileMapper, **fields: Any) -> DialerRecord:
    result = mapper(
        contact(**{"LastName": "Lovelace", "MobilePhone": "+1 415 555 1212", **fields}), CONFIG
    )
    assert isinstance(result, DialerRecord), result
    return result


def problems(text: str, name: str = "m.toml") -> list[str]:
    with pytest.raises(MappingFileError) as caught:
        parse_mapping(text, Path(name))
    return [f"{p.line}|{p.key}|{p.message}" for p in caught.value.problems]


# --- an empty file is the default mapping ----------------------------------------------------


def _contacts() -> list[SourceContact]:
    rows = seed.contacts(400, seed=11, account_ids=["001000000000001AAA"])
    out = [contact(f"003000000000{i:03d}AAA", **row) for i, row in enumerate(rows)]
    odd: list[dict[str, Any]] = [
        {"LastName": "", "FirstName": "\u200b", "Phone": "415-555-1212 x23"},
        {"LastName": "A", "MobilePhone": "(415) 555-1212", "OtherPhone": "+1 415 555 1212"},
        {"LastName": "B", "Phone": "+44 20 7946 0958", "MailingCountryCode": "GB"},
        {"LastName": "C", "HomePhone": "020 7946 0958", "MailingCountry": "UK", "Email": "x" * 300},
        {"LastName": "D", "Phone": "+1 415 555 1212", "DoNotCall": "yes"},
        {"LastName": "E", "Phone": "n/a", "MailingState": "CA", "MailingStateCode": "CA"},
    ]
    out += [contact(f"003000000001{i:03d}AAA", **row) for i, row in enumerate(odd)]
    out.append(SourceContact(id="003000000002000AAA", system_modstamp=STAMP, is_deleted=True))
    return out


@pytest.mark.parametrize("text", ["", "# nothing set\n"])
def test_an_empty_file_maps_exactly_like_the_default_mapping(text: str) -> None:
    mapping = parse_mapping(text, Path("m.toml"))
    mapper = mapping.mapper()
    for item in _contacts():
        assert mapper(item, CONFIG) == map_contact(item, CONFIG), item.fields
    assert set(mapping.spec.fields()) == set(CONTACT_FIELDS)
    yaml_mapping = parse_mapping("", Path("m.yaml"))
    assert yaml_mapping.spec == mapping.spec


def test_toml_and_yaml_say_the_same() -> None:
    text_toml = """
[phones]
MobilePhone = "MOBILE"
Custom_Phone__c = "EXTRA_3"

[priority]
field = "LeadSource"
values = { Web = 9, "Partner Referral" = 7 }
default = "none"

[routing]
field = "Owner.Name"
default = "list-0"
[routing.lists]
"Ada Admin" = "list-1"
"""
    text_yaml = """
phones:
  MobilePhone: MOBILE
  Custom_Phone__c: EXTRA_3
priority:
  field: LeadSource
  values: {Web: 9, Partner Referral: 7}
  default: none
routing:
  field: Owner.Name
  default: list-0
  lists:
    Ada Admin: list-1
"""
    a = parse_mapping(text_toml, Path("m.toml")).spec
    b = parse_mapping(text_yaml, Path("m.yml")).spec
    assert a == b
    assert list(a.phones.items()) == [
        ("MobilePhone", PhoneType.MOBILE),
        ("Custom_Phone__c", PhoneType.EXTRA_3),
    ]


# --- problems name the line -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[phones]\nMobilePhone = 'MOBILE'\nPhone = 'PAGER'\n", "3|phones.Phone|Input should be"),
        ("\n\n[names]\nfirst = 'FirstName'\nmiddle = 'X'\n", "5|names.middle|unknown key"),
        ("colour = 'blue'\n", "1|colour|unknown key (known here: phones, names"),
        (
            "[priority]\nfield = 'LeadSource'\nvalues = { Web = 11 }\n",
            "3|priority.values.Web|less than or equal to 10",
        ),
        ("[priority]\ndefault = 0\n", '2|priority.default|must be 1..10, or "none"'),
        ("[timezone]\nstrategy = 'fixed'\nzone = 'Mars/Olympus'\n", "3|timezone.zone|IANA"),
        ("[routing]\nfield = 'Account.Type'\n", "1|routing.lists|Field required"),
        (
            "[routing]\nfield = 'Account.Type'\n[routing.lists]\nA = 'list 1'\n",
            "4|routing.lists.A|not a record list id",
        ),
        ("[extra_data]\ncity = 'Mailing City'\n", "2|extra_data.city[0]|not a Salesforce field"),
        ("email = 'Email; DROP'\n", "1|email|not a Salesforce field"),
        (
            "[phones]\n\nMobilePhone = 'MOBILE'\nPhone = 'MOBILE'\n",
            "4|phones.Phone|MOBILE is already",
        ),
        (
            "[routing]\nfield = 'Account.Type'\n[routing.lists]\nCustomer = 'a'\ncustomer = 'b'\n",
            "5|routing.lists.customer|case is ignored",
        ),
        ("[timezone]\nstrategy = 'field'\n", '2|timezone.strategy|strategy "field" needs'),
        ("[priority]\nvalues = { Web = 9 }\n", "1|priority|values and scale need priority.field"),
        ("[priority]\nfield = 'Score__c'\nscale = [100, 0]\n", "3|priority.scale|low < high"),
        ("[phones]\n", "1|phones|name at least one phone field"),
        ("[phones\nMobilePhone = 'MOBILE'\n", "1||TOML syntax"),
        ('[names]\nfirst = "a"\nfirst = "b"\n', "3||TOML syntax"),
    ],
)
def test_problems_name_the_line(text: str, expected: str) -> None:
    found = problems(text)
    assert any(_matches(p, expected) for p in found), found


def _matches(problem: str, expected: str) -> bool:
    """Line and key exactly, the message by a fragment."""
    line, key, fragment = expected.split("|")
    got_line, got_key, message = problem.split("|", 2)
    return (got_line, got_key) == (line, key) and fragment in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phones:\n  MobilePhone: MOBILE\n  MobilePhone: HOME\n", "3|phones.MobilePhone|duplicate"),
        ("names:\n  first: [FirstName\n", "3||YAML syntax"),
        ("- just\n- a list\n", "1||the file must hold a mapping"),
        (
            "priority:\n  field: LeadSource\n  values:\n    Web: 0\n",
            "4|priority.values.Web|greater",
        ),
    ],
)
def test_yaml_problems_name_the_line(text: str, expected: str) -> None:
    found = problems(text, "m.yaml")
    assert any(_matches(p, expected) for p in found), found


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = "[phones]\nMobilePhone = 'X'\n\n[names]\nlast = 'Last Name'\nnickname = 'y'\n"
    found = problems(text)
    assert [p.split("|")[0] for p in found] == ["2", "5", "6"]
    with pytest.raises(MappingFileError) as caught:
        parse_mapping(text, Path("/etc/dialsync/m.toml"))
    assert "/etc/dialsync/m.toml:5: names.last[0]: 'Last Name' is not" in caught.value.message
    assert caught.value.setting == "DIALSYNC_MAPPING__FILE"


def test_other_file_types_are_refused() -> None:
    assert problems("{}", "m.json") == ["None||the file name must end in .toml, .yaml or .yml"]


def test_key_lines_follow_tables_dotted_and_quoted_keys() -> None:
    text = '''# comment
title = """
not = a key
"""
[routing]
field = "Account.Type"   # inline comment
[routing.lists]
"Key Account" = "a"
'dotted.literal' = "b"
[[rules]]
x = 1
[[rules]]
x = 2
priority.values.Web = 9
'''
    lines = toml_key_lines(text)
    assert lines[("title",)] == 2
    assert ("not",) not in lines
    assert lines[("routing", "field")] == 6
    assert lines[("routing", "lists", "Key Account")] == 8
    assert lines[("routing", "lists", "dotted.literal")] == 9
    assert lines[("rules", 0, "x")] == 11
    assert lines[("rules", 1, "x")] == 13
    assert lines[("rules", 1, "priority", "values", "Web")] == 14


# --- the checks against the org ---------------------------------------------------------------


def test_fields_are_checked_against_describe_with_their_lines() -> None:
    text = """
[phones]
MobilePhone = "MOBILE"
Pager__c = "EXTRA_1"

[extra_data]
state = "MailingStateCode"
region = "Territory.Name"

[routing]
field = "Account.Type"
[routing.lists]
Customer = "a"
"""
    mapping = parse_mapping(text, Path("m.toml"))
    org = {"MobilePhone", "FirstName", "LastName", "DoNotCall", "Email", "Account."}
    errors, warnings = mapping.check_fields(org)
    assert [(p.line, p.key) for p in errors] == [
        (4, "phones.Pager__c"),
        (8, "extra_data.region[0]"),
    ]
    assert "no field 'Pager__c'" in errors[0].message
    assert "no relationship 'Territory'" in errors[1].message
    keys = [p.key for p in warnings]
    assert "extra_data.state[0]" in keys  # a picklist code field this org lacks: read as blank
    assert "routing.field" in keys  # Account.Type does not move the Contact's SystemModstamp


# --- what the rules do ----------------------------------------------------------------------


def test_phones_names_and_extra_data_from_the_fields_named() -> None:
    mapper = toml(
        """
do_not_call = ["DoNotCall", "Opt_Out__c"]
email = ""
[phones]
Work__c = "OFFICE"
MobilePhone = "MOBILE"
[names]
first = ["Nickname__c", "FirstName"]
last = ["LastName", "Account.Name"]
fallback = "Customer"
[extra_data]
segment = ["Segment__c", "Account.Type"]
"""
    )
    got = record(
        mapper,
        Work__c="(212) 555-0100",
        FirstName="Augusta",
        Nickname__c="  ",
        LastName="",
        **{"Account.Name": "Acme", "Account.Type": "Customer"},
        Email="a@example.com",
    )
    assert [(p.number, p.type) for p in got.phones] == [
        ("+12125550100", PhoneType.OFFICE),
        ("+14155551212", PhoneType.MOBILE),
    ]
    assert (got.first_name, got.last_name) == ("Augusta", "Acme")
    assert got.extra_data == {"segment": "Customer"}
    assert got.email is None
    bare = record(mapper, FirstName=None, LastName=None, **{"Account.Name": None})
    assert (bare.first_name, bare.last_name) == ("Customer", "Customer")
    skip = mapper(contact(LastName="x", MobilePhone="+14155551212", Opt_Out__c=True), CONFIG)
    assert isinstance(skip, Skip) and skip.reason is SkipReason.DO_NOT_CALL
    assert "Opt_Out__c" in skip.message


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ('values = { Web = 9, "Partner Referral" = 7 }', "partner  referral", 7),
        ('values = { Web = 9, "Partner Referral" = 7 }', "Trade Show", 5),
        ('values = { Web = 9, "Partner Referral" = 7 }', None, 5),
        ("", 3, 3),
        ("", "7.6", 8),
        ("", 42, 10),
        ("", -1, 1),
        ("", "n/a", 5),
        ("", True, 5),
        ("scale = [0, 100]", 100, 10),
        ("scale = [0, 100]", 0, 1),
        ("scale = [0, 100]", "50", 6),
        ('default = "none"', None, None),
        ("default = 2", "junk", 2),
    ],
)
def test_priority_from_a_picklist_or_a_number(rule: str, value: Any, expected: int | None) -> None:
    mapper = toml(f"[priority]\nfield = 'Score__c'\n{rule}\n")
    assert record(mapper, Score__c=value).priority == expected


def test_priority_without_a_field_is_the_setting_or_the_file_default() -> None:
    assert record(toml("")).priority == CONFIG.priority
    assert record(toml("[priority]\ndefault = 8\n")).priority == 8
    assert record(toml('[priority]\ndefault = "none"\n')).priority is None


@pytest.mark.parametrize(
    ("rule", "fields", "expected"),
    [
        ("strategy = 'phone'", {}, "America/Los_Angeles"),
        ("strategy = 'country'", {"MailingCountry": "France"}, "Europe/Paris"),
        ("strategy = 'country'", {}, None),
        ("strategy = 'country'\nfallback = 'America/Chicago'", {}, "America/Chicago"),
        ("strategy = 'field'\nfield = 'TZ__c'", {"TZ__c": "Asia/Tokyo"}, "Asia/Tokyo"),
        ("strategy = 'field'\nfield = 'TZ__c'", {"TZ__c": "PST8PDT-ish"}, "America/Los_Angeles"),
        ("strategy = 'fixed'\nzone = 'Europe/Berlin'", {}, "Europe/Berlin"),
        ("strategy = 'none'", {"MailingCountry": "France"}, None),
    ],
)
def test_timezone_strategies(rule: str, fields: dict[str, Any], expected: str | None) -> None:
    assert record(toml(f"[timezone]\n{rule}\n"), **fields).timezone == expected


class _Dest:
    def __init__(self, name: str, target: str) -> None:
        self.name, self.target = name, target


def test_the_router_picks_a_list_by_value_case_insensitively() -> None:
    mapping = parse_mapping(
        "[routing]\nfield = 'Account.Type'\n[routing.lists]\nCustomer = 'a'\nProspect = 'b'\n",
        Path("m.toml"),
    )
    router = mapping.router("default-list")
    assert router is not None
    assert router.lists == ("default-list", "a", "b")
    cases = {"Customer": "a", " customer ": "a", "PROSPECT": "b", "Partner": "default-list"}
    for value, expected in cases.items():
        assert router.list_for(contact(**{"Account.Type": value})) == expected
    assert router.list_for(contact()) == "default-list"
    rec = record(toml(""))
    customer = contact(**{"Account.Type": "Customer"})
    assert router(customer, rec, _Dest("talkdesk", "a"))  # type: ignore[arg-type]
    assert not router(customer, rec, _Dest("talkdesk", "b"))  # type: ignore[arg-type]
    assert router(customer, rec, _Dest("everbridge", "org"))  # type: ignore[arg-type]
    assert parse_mapping("", Path("m.toml")).router("x") is None


def test_routing_needs_a_default_list() -> None:
    mapping = parse_mapping(
        "[routing]\nfield = 'OwnerId'\n[routing.lists]\n005000000000001AAA = 'a'\n", Path("m.toml")
    )
    with pytest.raises(ConfigError, match=r"routing\.default"):
        mapping.router(None)
    routed = parse_mapping(
        "[routing]\nfield = 'OwnerId'\ndefault = 'z'\n[routing.lists]\nX = 'a'\n", Path("m.toml")
    ).router(None)
    assert routed is not None and routed.default_list == "z"


def test_a_rendered_record_passes_through_the_talkdesk_renderer() -> None:
    spec = MappingSpec()
    got = FileMapper(spec)(contact(LastName="Lovelace", Phone="415.555.1212 x7"), CONFIG)
    assert isinstance(got, DialerRecord)
    payload = render_record(got)
    assert payload["extra_data"]["office_extension"] == "7"


def test_rules_across_keys_are_reported_with_type_errors_elsewhere() -> None:
    text = "[phones]\nMobilePhone = 'MOBILE'\nPhone = 'MOBILE'\n\n[priority]\ndefault = 11\n"
    assert [p.split("|")[:2] for p in problems(text)] == [
        ["3", "phones.Phone"],
        ["6", "priority.default"],
    ]
