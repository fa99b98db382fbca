from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialsync.mapping import (
    CONTACT_FIELDS,
    NAME_FALLBACK,
    OPTIONAL_FIELDS,
    MappingConfig,
    clean_text,
    map_contact,
    parse_phone,
    resolve_country,
    truncate,
)
from dialsync.models import DialerRecord, PhoneType, Skip, SkipReason, SourceContact

CONTACT_ID = "003000000000001AAA"
PHONE = "+1 (415) 555-1212"
CONFIG = MappingConfig(instance_url="https://acme.my.salesforce.com")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def contact(
    is_deleted: bool = False, master_record_id: str | None = None, **fields: Any
) -> SourceContact:
    # A valid phone by default, so that tests of other fields get a record, not a Skip.
    defaults: dict[str, Any] = {"FirstName": "Ada", "LastName": "Lovelace", "MobilePhone": PHONE}
    return SourceContact(
        id=CONTACT_ID,
        system_modstamp=datetime(2024, 1, 1, tzinfo=UTC),
        is_deleted=is_deleted,
        master_record_id=master_record_id,
        fields={**defaults, **fields},
    )


def record(config: MappingConfig = CONFIG, **fields: Any) -> DialerRecord:
    result = map_contact(contact(**fields), config)
    assert isinstance(result, DialerRecord), result
    return result


def skip(**fields: Any) -> Skip:
    result = map_contact(contact(**fields), CONFIG)
    assert isinstance(result, Skip), result
    return result


# --- phones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "country", "number", "extension"),
    [
        ("(415) 555-1212", None, "+14155551212", None),
        ("415.555.1212 x23", None, "+14155551212", "23"),
        ("+1-415-555-1212 ext. 5", None, "+14155551212", "5"),
        ("415-555-1212 #7", None, "+14155551212", "7"),
        ("+44 20 7946 0958", None, "+442079460958", None),
        ("+44 (0) 20 7946 0958", None, "+442079460958", None),
        ("020 7946 0958", "GB", "+442079460958", None),
        ("0044 20 7946 0958", "United Kingdom", "+442079460958", None),
        ("020 7946 0958 ext 12", "UK", "+442079460958", "12"),
        ("030 901820", "Deutschland", "+4930901820", None),
        ("+49 30 901820", None, "+4930901820", None),
        ("01 42 68 53 00", "FRA", "+33142685300", None),
        ("06 12 34 56 78", "France", "+33612345678", None),
        ("(11) 91234-5678", "Brazil", "+5511912345678", None),
        ("+55 11 91234-5678", None, "+5511912345678", None),
        ("098765 43210", "India", "+919876543210", None),
        ("03-1234-5678", "Japan", "+81312345678", None),
        ("090-1234-5678", "JPN", "+819012345678", None),
        ("(02) 9374 4000", "Australia", "+61293744000", None),
        ("0412 345 678", "AU", "+61412345678", None),
        # Words around a number are tolerated, without their letters becoming digits.
        ("415-555-1212 (cell)", None, "+14155551212", None),
        ("cell: 415-555-1212", None, "+14155551212", None),
        ("4155551212 ask for Bob", None, "+14155551212", None),
        (
            "\uff14\uff11\uff15\uff15\uff15\uff15\uff11\uff12\uff11\uff12",
            None,
            "+14155551212",
            None,
        ),
        (" 415\t555\n1212\u200b ", None, "+14155551212", None),
        (4155551212, None, "+14155551212", None),
    ],
)
def test_phone_formats(
    text: object, country: str | None, number: str, extension: str | None
) -> None:
    result = record(MobilePhone=text, MailingCountry=country)
    assert [(p.number, p.extension) for p in result.phones] == [(number, extension)]


@pytest.mark.parametrize(
    "text",
    [
        "N/A",
        "none",
        "abc",
        "1-800-FLOWERS",  # vanity letters are not turned into digits
        "555-1212",  # too short without an area code
        "0",
        "+",
        "",
        "   ",
        "\x00\x01",
        "+44 7700 90012",  # one digit short
        "+49 6291 1960384422",  # phonenumbers accepts it, but 16 digits is over E.164's 15
        "415-555-1212" + " " * 100,  # over 100 characters: dropped unparsed
        "9" * 10_000,
        True,
        {"number": "4155551212"},
        ["4155551212"],
    ],
)
def test_garbage_phones_are_dropped(text: object) -> None:
    assert parse_phone(text, PhoneType.MOBILE, "US") is None
    assert skip(MobilePhone=text).reason is SkipReason.NO_VALID_PHONE


def test_phone_types_follow_field_order() -> None:
    result = record(
        AssistantPhone="+1 212 555 0105",
        OtherPhone="+1 212 555 0104",
        HomePhone="+1 212 555 0103",
        Phone="+1 212 555 0102",
        MobilePhone="+1 212 555 0101",
    )
    assert [(p.number, p.type) for p in result.phones] == [
        ("+12125550101", PhoneType.MOBILE),
        ("+12125550102", PhoneType.OFFICE),
        ("+12125550103", PhoneType.HOME),
        ("+12125550104", PhoneType.EXTRA_1),
        ("+12125550105", PhoneType.EXTRA_2),
    ]


def test_duplicate_number_sent_once_with_first_type() -> None:
    result = record(
        MobilePhone=None,
        Phone="(415) 555-1212 x9",
        HomePhone="+1 415 555 1212",
        OtherPhone="415.555.1212",
        AssistantPhone="+44 20 7946 0958",
    )
    assert [(p.number, p.type) for p in result.phones] == [
        ("+14155551212", PhoneType.OFFICE),
        ("+442079460958", PhoneType.EXTRA_2),
    ]


def test_phone_region_and_extension() -> None:
    result = record(
        MobilePhone="+44 20 7946 0958", Phone="415.555.1212 x23", OtherPhone="+1 415 555 0000 ext 4"
    )
    regions = {p.number: p.region for p in result.phones}
    assert regions == {"+442079460958": "GB", "+14155551212": "US", "+14155550000": "US"}
    assert result.phones[1].extension == "23"
    assert result.extra_data["office_extension"] == "23"
    assert result.extra_data["extra_1_extension"] == "4"
    assert "mobile_extension" not in result.extra_data


def test_non_geographic_number_has_no_region() -> None:
    (phone,) = record(MobilePhone="+870 773 111 632").phones
    assert phone.number == "+870773111632"
    assert phone.region is None


# --- time zones ---------------------------------------------------------------------------


def test_timezone_from_single_zone_number() -> None:
    assert record(MobilePhone="(415) 555-1212").timezone == "America/Los_Angeles"
    assert record(MobilePhone="+44 20 7946 0958", MailingCountry="USA").timezone == "Europe/London"


def test_timezone_uses_canonical_iana_names() -> None:
    # phonenumbers says "Asia/Calcutta", a backward-compatibility link.
    assert record(MobilePhone="+91 22 2345 6789").timezone == "Asia/Kolkata"


def test_timezone_from_first_single_zone_phone() -> None:
    result = record(
        MobilePhone="+1 800 253 0000", Phone="+44 20 7946 0958", HomePhone="(415) 555-1212"
    )
    assert result.timezone == "Europe/London"


def test_toll_free_number_falls_back_to_country() -> None:
    assert record(MobilePhone="+1 800 253 0000", MailingCountry="France").timezone == "Europe/Paris"
    # Non-geographic: phonenumbers answers Etc/Unknown, which is ignored.
    assert record(MobilePhone="+870 773 111 632", MailingCountryCode="JP").timezone == "Asia/Tokyo"


def test_no_timezone_when_number_and_country_have_many() -> None:
    assert record(MobilePhone="+1 800 253 0000").timezone is None
    assert record(MobilePhone="+1 800 253 0000", MailingCountry="United States").timezone is None


# --- names and text -----------------------------------------------------------------------


def test_long_name_cut_to_80_without_trailing_space() -> None:
    result = record(FirstName="a" * 79 + " " + "b" * 10_000, LastName="x" * 10_000)
    assert result.first_name == "a" * 79
    assert result.last_name == "x" * 80


def test_unicode_names() -> None:
    result = record(FirstName="Jose\u0301", LastName="\u738b\u5c0f\u660e")
    assert result.first_name == "Jos\u00e9"  # NFC
    assert result.last_name == "\u738b\u5c0f\u660e"


def test_astral_characters_count_twice_toward_the_limit() -> None:
    result = record(FirstName="\U0001f600" * 50)
    assert result.first_name == "\U0001f600" * 40


@pytest.mark.parametrize(
    "blank",
    [None, "", "   ", "\u200b\u200e\ufeff", "\x00\x07\x1b", "\t\n", True, False, {}, [], {"a": 1}],
)
def test_blank_names_fall_back(blank: object) -> None:
    result = record(FirstName=blank, LastName=blank)
    assert (result.first_name, result.last_name) == (NAME_FALLBACK, NAME_FALLBACK)
    assert NAME_FALLBACK == "Unknown"


def test_absent_first_name_keeps_last_name() -> None:
    source = SourceContact(
        id=CONTACT_ID,
        system_modstamp=datetime(2024, 1, 1, tzinfo=UTC),
        fields={"LastName": "Smith", "MobilePhone": PHONE},
    )
    result = map_contact(source, CONFIG)
    assert isinstance(result, DialerRecord)
    assert (result.first_name, result.last_name) == ("Unknown", "Smith")


def test_control_and_format_characters() -> None:
    result = record(
        FirstName="Ann\tMarie\r\n",
        LastName="\u202eSmi\u200bth\x00  Jr.",
        Title="Head\x0bof   Sales",
    )
    assert result.first_name == "Ann Marie"
    assert result.last_name == "Smith Jr."
    assert result.extra_data["title"] == "Head of Sales"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "42"),
        (4.5, "4.5"),
        (Decimal("1.50"), "1.50"),
        (float("nan"), None),
        (float("inf"), None),
        (Decimal("sNaN"), None),
        (Decimal("-Infinity"), None),
        pytest.param(10**5000, None, id="int-over-str-digit-limit"),
        (True, None),
        ("a\ud800b", "ab"),
        ("e\u200b\u0301", "\u00e9"),
        ("\u00a0 x \u3000 y\u2028", "x y"),
    ],
)
def test_clean_text(value: object, expected: str | None) -> None:
    assert clean_text(value) == expected


def test_truncate() -> None:
    assert truncate("abc def", 4) == "abc"
    assert truncate("abc", 3) == "abc"
    assert truncate("a\U0001f600", 2) == "a"


# --- skips --------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [True, "true", "TRUE", " True ", "1", 1, 1.0, Decimal("1"), "yes"])
def test_do_not_call(flag: object) -> None:
    result = skip(DoNotCall=flag, MobilePhone="(415) 555-1212")
    assert result.reason is SkipReason.DO_NOT_CALL


@pytest.mark.parametrize(
    "flag",
    [False, "false", "False", None, "", "no", 0, "0", {}, [], float("nan"), Decimal("sNaN")],
)
def test_callable(flag: object) -> None:
    record(DoNotCall=flag, MobilePhone="(415) 555-1212")


def test_deleted_and_merged() -> None:
    phone: dict[str, Any] = {"MobilePhone": "(415) 555-1212", "DoNotCall": True}
    deleted = map_contact(contact(is_deleted=True, **phone), CONFIG)
    merged = map_contact(
        contact(is_deleted=True, master_record_id="003000000000002AAA", **phone), CONFIG
    )
    blank_master = map_contact(contact(is_deleted=True, master_record_id=" ", **phone), CONFIG)
    assert isinstance(deleted, Skip) and deleted.reason is SkipReason.DELETED
    assert isinstance(merged, Skip) and merged.reason is SkipReason.MERGED
    assert isinstance(blank_master, Skip) and blank_master.reason is SkipReason.DELETED


def test_skip_messages_carry_no_personal_data() -> None:
    fields: dict[str, Any] = {"FirstName": "Ada", "LastName": "Lovelace", "MobilePhone": PHONE}
    results = [
        map_contact(contact(is_deleted=True, **fields), CONFIG),
        map_contact(
            contact(is_deleted=True, master_record_id="003000000000002AAA", **fields), CONFIG
        ),
        map_contact(contact(DoNotCall=True, **fields), CONFIG),
        map_contact(contact(FirstName="Ada", MobilePhone="555"), CONFIG),
    ]
    for result in results:
        assert isinstance(result, Skip)
        assert result.message
        assert not re.search(r"\d|Ada|Lovelace", result.message)


# --- countries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("U.S.", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("united states", "US"),
        ("GB", "GB"),
        ("GBR", "GB"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("DEU", "DE"),
        ("The Netherlands", "NL"),
        ("C\u00f4te d\u2019Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("South Korea", "KR"),
        ("Korea (South)", "KR"),
        ("North Korea", "KP"),
        ("St Lucia", "LC"),
        ("Saint Lucia", "LC"),
        ("Bosnia & Herzegovina", "BA"),
        ("Bosnia and Herzegovina", "BA"),
        ("Falkland Islands (Malvinas)", "FK"),
        ("  brasil ", "BR"),
        ("México", "MX"),
        ("Türkiye", "TR"),
        ("XX", None),
        ("Narnia", None),
        ("", None),
        (None, None),
        ("U" * 1000, None),
    ],
)
def test_resolve_country(value: str | None, code: str | None) -> None:
    assert resolve_country(value) == code


def test_every_pytz_country_resolves_by_code_and_name() -> None:
    for code, name in pytz.country_names.items():
        assert resolve_country(code) == code
        assert resolve_country(code.lower()) == code
        assert resolve_country(name) == code, name


def test_country_code_field_wins_and_garbage_falls_through() -> None:
    phone: dict[str, Any] = {"Phone": "020 7946 0958"}
    assert (
        record(MailingCountryCode="GB", MailingCountry="USA", **phone).mailing_country_code == "GB"
    )
    assert (
        record(MailingCountryCode="??", MailingCountry="UK", **phone).mailing_country_code == "GB"
    )
    result = record(MobilePhone="(415) 555-1212")
    assert result.mailing_country_code is None  # the default region is not the contact's country


def test_default_region_from_config() -> None:
    config = MappingConfig(instance_url="https://acme.my.salesforce.com", default_region="gb")
    assert config.default_region == "GB"
    assert record(config, MobilePhone="020 7946 0958").phones[0].number == "+442079460958"


# --- record fields ------------------------------------------------------------------------


def test_record_fields() -> None:
    config = MappingConfig(
        instance_url="https://acme.my.salesforce.com/", priority=None, provider="sf"
    )
    result = record(
        config,
        Email="  ada@example.com ",
        Title="CTO",
        **{"Account.Name": "Analytical Engines"},
        MailingCity="London",
        MailingStateCode="LND",
        MailingPostalCode=12345,
        MailingCountry="United Kingdom",
    )
    assert result.external_provider == "sf"
    assert result.external_id == CONTACT_ID
    assert (
        result.external_url
        == f"https://acme.my.salesforce.com/lightning/r/Contact/{CONTACT_ID}/view"
    )
    assert result.sync_external_id is True
    assert result.priority is None
    assert result.email == "ada@example.com"
    assert result.mailing_country_code == "GB"
    assert result.extra_data == {
        "email": "ada@example.com",
        "title": "CTO",
        "account_name": "Analytical Engines",
        "mailing_city": "London",
        "mailing_state": "LND",
        "mailing_postal_code": "12345",
        "mailing_country": "United Kingdom",
    }


def test_default_priority_and_absent_extra_data() -> None:
    result = record(MobilePhone="(415) 555-1212", Title="  ", Email=None)
    assert result.priority == 5
    assert result.email is None
    assert result.extra_data == {}


def test_extra_data_values_cut_to_255() -> None:
    result = record(MobilePhone="(415) 555-1212", Title="t" * 300, Email="a" * 300 + "@x.com")
    assert result.extra_data["title"] == "t" * 255
    assert result.email is None  # longer than any address can be
    assert "email" not in result.extra_data


def test_external_url_cannot_be_reshaped_by_the_id() -> None:
    odd = SourceContact(
        id="../x?y#z",
        system_modstamp=datetime(2024, 1, 1, tzinfo=UTC),
        fields={"Phone": "(415) 555-1212"},
    )
    result = map_contact(odd, CONFIG)
    assert isinstance(result, DialerRecord)
    assert (
        result.external_url
        == "https://acme.my.salesforce.com/lightning/r/Contact/..%2Fx%3Fy%23z/view"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"priority": 0},
        {"priority": 11},
        {"priority": True},
        {"default_region": "XX"},
        {"provider": ""},
    ],
)
def test_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MappingConfig(instance_url="https://acme.my.salesforce.com", **kwargs)


def test_field_lists() -> None:
    expected = {
        *("FirstName", "LastName", "DoNotCall", "Email", "Title", "Account.Name"),
        *("MobilePhone", "Phone", "HomePhone", "OtherPhone", "AssistantPhone"),
        *("MailingCity", "MailingState", "MailingStateCode", "MailingPostalCode"),
        *("MailingCountry", "MailingCountryCode"),
    }
    assert set(CONTACT_FIELDS) == expected
    assert len(CONTACT_FIELDS) == len(expected)
    assert {"MailingCountryCode", "MailingStateCode"} == OPTIONAL_FIELDS


# --- property: total on arbitrary input ---------------------------------------------------

_any_char = st.characters(exclude_categories=())  # includes control, format and surrogates
_samples = st.sampled_from(
    [
        "(415) 555-1212",
        "415.555.1212 x23",
        "+44 20 7946 0958 ext. 4",
        "020 7946 0958",
        "+1 800 253 0000",
        "+870 773 111 632",
        "+49 30 901820",
        "1-800-FLOWERS",
        "true",
        "TRUE",
        "UK",
        "Deutschland",
        "USA",
        "JP",
        "N/A",
    ]
)
_texts = st.one_of(
    st.text(_any_char, max_size=40),
    st.text(st.sampled_from(" \t\n\x00\u200b\u202eaZ9+()-.x#\u00e9\U0001f600"), max_size=40),
    st.text(_any_char, min_size=1, max_size=5).map(lambda s: (s * 10_000)[:10_000]),
    _samples,
)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(10**5000),
    st.floats(),
    st.decimals(),
    _texts,
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)
# Phone fields lean towards real numbers so that many examples reach a DialerRecord.
_fields = st.fixed_dictionaries(
    {field: st.one_of(_samples, _values) for field in CONTACT_FIELDS if field.endswith("Phone")},
    optional={field: _values for field in CONTACT_FIELDS if not field.endswith("Phone")},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=_fields,
    is_deleted=st.booleans(),
    master=st.one_of(st.none(), st.just("003000000000002AAA")),
    region=st.sampled_from(["US", "GB", "DE"]),
    priority=st.one_of(st.none(), st.integers(1, 10)),
)
def test_map_contact_is_total(
    fields: dict[str, Any], is_deleted: bool, master: str | None, region: str, priority: int | None
) -> None:
    source = SourceContact(
        id=CONTACT_ID,
        system_modstamp=datetime(2024, 1, 1, tzinfo=UTC),
        is_deleted=is_deleted,
        master_record_id=master,
        fields=fields,
    )
    config = MappingConfig(
        instance_url="https://acme.my.salesforce.com", default_region=region, priority=priority
    )
    result = map_contact(source, config)
    if isinstance(result, Skip):
        assert result.message
        return
    assert isinstance(result, DialerRecord)
    assert not is_deleted
    for name in (result.first_name, result.last_name):
        assert 1 <= len(name) <= 80
        assert name == name.strip()
    numbers = [phone.number for phone in result.phones]
    assert numbers
    assert all(E164.fullmatch(number) for number in numbers)
    assert len(set(numbers)) == len(numbers)
    assert result.timezone is None or (
        result.timezone in pytz.all_timezones_set and len(result.timezone) <= 35
    )
    assert result.priority == priority
    for key, value in result.extra_data.items():
        assert isinstance(key, str) and isinstance(value, str)
        assert 1 <= len(value) <= 255
