from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsync.salesforce_ids import is_valid_id, normalize_id

KNOWN = [
    ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
    ("003000000000001", "003000000000001AAA"),
    ("001D000000IqhSL", "001D000000IqhSLIAZ"),
    # Every letter upper case sets all 5 bits of each chunk: 31 -> "5".
    ("ABCDEFGHIJKLMNO", "ABCDEFGHIJKLMNO555"),
    ("abcdefghijklmno", "abcdefghijklmnoAAA"),
]

bodies = st.text(alphabet=string.ascii_letters + string.digits, min_size=15, max_size=15)


@pytest.mark.parametrize(("short", "full"), KNOWN)
def test_15_to_18(short: str, full: str) -> None:
    assert normalize_id(short) == full
    assert is_valid_id(short)


@pytest.mark.parametrize(("short", "full"), KNOWN)
def test_18_is_kept(short: str, full: str) -> None:
    assert normalize_id(full) == full
    assert is_valid_id(full)


def test_18_suffix_compared_case_insensitively() -> None:
    assert normalize_id("001A0000006Vm9riac") == "001A0000006Vm9rIAC"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "001A0000006Vm9",  # 14
        "001A0000006Vm9rI",  # 16
        "001A0000006Vm9rIA",  # 17
        "001A0000006Vm9rIACX",  # 19
        "001A0000006Vm9rAAA",  # suffix of another body
        "001a0000006Vm9rIAC",  # body case changed: the suffix no longer matches
        "001A0000006Vm9rIA9",  # 9 is not a suffix character
        "003' OR Id != '",  # SOQL injection, 15 characters
        "003000000000001' OR Id != '",
        "001A0000006Vm9r\n",
        " 001A0000006Vm9r",
        "001A0000006Vm9-",
        "001A0000006Vm9\u0661",  # Arabic-Indic digit one: isalnum() but not an Id character
        "001A0000006Vm9\u00e9",
        "001A0000006Vm9\x00",
    ],
)
def test_invalid(value: str) -> None:
    with pytest.raises(ValueError):
        normalize_id(value)
    assert not is_valid_id(value)


@pytest.mark.parametrize("value", [None, 1, 1.5, b"001A0000006Vm9r", ["001A0000006Vm9r"]])
def test_non_strings(value: object) -> None:
    with pytest.raises(ValueError):
        normalize_id(value)  # type: ignore[arg-type]
    assert not is_valid_id(value)


def test_error_names_the_expected_id() -> None:
    with pytest.raises(ValueError, match="001A0000006Vm9rIAC"):
        normalize_id("001A0000006Vm9rAAA")


@settings(max_examples=200)
@given(bodies)
def test_roundtrip(body: str) -> None:
    full = normalize_id(body)
    assert len(full) == 18
    assert full[:15] == body
    assert normalize_id(full) == full
    assert normalize_id(full[:15] + full[15:].lower()) == full


@settings(max_examples=200)
@given(bodies, st.integers(min_value=0, max_value=14))
def test_changed_case_is_detected(body: str, index: int) -> None:
    char = body[index]
    if not char.isalpha():
        return
    full = normalize_id(body)
    flipped = full[:index] + char.swapcase() + full[index + 1 :]
    assert not is_valid_id(flipped)


@given(st.text(max_size=30))
def test_is_valid_id_never_raises(value: str) -> None:
    assert is_valid_id(value) in (True, False)
