"""Realistic fake contacts: names from several countries, phones typed every which way.

Deterministic for a given seed, so tests and benchmarks are repeatable.
"""

from __future__ import annotations

import random
from typing import Any

FIRST = [
    "James",
    "Mary",
    "José",
    "Zoë",
    "Aoife",
    "Łukasz",
    "Mohammed",
    "Priya",
    "Chen",
    "Yuki",
    "Olga",
    "François",
    "Sören",
    "Ana",
    "Kwame",
    "Fatima",
    "Liam",
    "Noah",
    "Emma",
    "Olivia",
    "Mateo",
    "Sofía",
    "Hiroshi",
    "Ngozi",
    "Pedro",
    "Ingrid",
    "Raj",
    "Mei",
    "",
]
LAST = [
    "Smith",
    "García",
    "Müller",
    "O'Brien",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Silva",
    "Tanaka",
    "Patel",
    "Ivanova",
    "Okafor",
    "Johansson",
    "Murphy",
    "Lee",
    "van der Berg",
    "Al-Sayed",
    "Fernández",
    "Kim",
    "Wang",
    "Brown",
    "Wilson",
    "Martin",
]
TITLES = ["CEO", "Buyer", "Office Manager", "CTO", "Procurement Lead", None, None]
CITIES = {
    "US": ["San Francisco", "New York", "Chicago", "Austin"],
    "GB": ["London", "Manchester", "Leeds"],
    "DE": ["Berlin", "München", "Hamburg"],
    "FR": ["Paris", "Lyon"],
    "BR": ["São Paulo", "Rio de Janeiro"],
    "IN": ["Mumbai", "Bengaluru"],
    "AU": ["Sydney", "Melbourne"],
    "JP": ["Tokyo", "Osaka"],
    "CA": ["Toronto", "Vancouver"],
}
COUNTRY_FORMS = {
    "US": ["United States", "USA", "US", "United States of America"],
    "GB": ["United Kingdom", "UK", "GB"],
    "DE": ["Germany", "DE"],
    "FR": ["France", "FR"],
    "BR": ["Brazil", "BR"],
    "IN": ["India", "IN"],
    "AU": ["Australia", "AU"],
    "JP": ["Japan", "JP"],
    "CA": ["Canada", "CA"],
}


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def phone(rng: random.Random, country: str) -> str:
    """A valid-looking number in one of the ways people type them."""
    if country in ("US", "CA"):
        area = rng.choice(["415", "212", "312", "512", "646", "416", "604"])
        line = f"{rng.randint(200, 999)}{_digits(rng, 4)}"
        return rng.choice(
            [
                f"({area}) {line[:3]}-{line[3:]}",
                f"{area}.{line[:3]}.{line[3:]}",
                f"+1 {area} {line[:3]} {line[3:]}",
                f"{area}-{line[:3]}-{line[3:]} x{rng.randint(2, 999)}",
                f"1{area}{line}",
            ]
        )
    if country == "GB":
        local = f"20 7{_digits(rng, 3)} {_digits(rng, 4)}"
        mobile = f"7{rng.choice(['700', '911', '400'])} {_digits(rng, 6)}"
        return rng.choice([f"+44 {local}", f"0{local}", f"0044 {local}", f"0{mobile}"])
    if country == "DE":
        return rng.choice(
            [f"+49 30 {_digits(rng, 8)}", f"030 {_digits(rng, 8)}", f"+49 151 {_digits(rng, 8)}"]
        )
    if country == "FR":
        return rng.choice(
            [
                f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
                f"06 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
            ]
        )
    if country == "BR":
        return f"+55 11 9{_digits(rng, 4)}-{_digits(rng, 4)}"
    if country == "IN":
        return f"+91 98{_digits(rng, 3)} {_digits(rng, 5)}"
    if country == "AU":
        return rng.choice(
            [
                f"+61 2 {_digits(rng, 4)} {_digits(rng, 4)}",
                f"04{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}",
            ]
        )
    return f"+81 3-{_digits(rng, 4)}-{_digits(rng, 4)}"  # JP


def contact(rng: random.Random, index: int, account_ids: list[str] | None = None) -> dict[str, Any]:
    """One Contact's fields. About 5% DoNotCall, 3% without phones, 2% with garbage phones."""
    country = rng.choice(list(CITIES))
    fields: dict[str, Any] = {
        "FirstName": rng.choice(FIRST),
        "LastName": rng.choice(LAST),
        "Email": f"contact{index}@example.com",
        "Title": rng.choice(TITLES),
        "MailingCity": rng.choice(CITIES[country]),
        "MailingCountry": rng.choice(COUNTRY_FORMS[country]),
        "DoNotCall": rng.random() < 0.05,
    }
    if account_ids:
        fields["AccountId"] = rng.choice(account_ids)
    roll = rng.random()
    if roll < 0.03:
        return fields  # no phone at all
    if roll < 0.05:
        fields["Phone"] = rng.choice(["n/a", "call reception", "12", "+", "555-CALL-NOW"])
        return fields
    fields["MobilePhone"] = phone(rng, country)
    if rng.random() < 0.6:
        fields["Phone"] = phone(rng, country)
    if rng.random() < 0.2:
        fields["HomePhone"] = phone(rng, country)
    if rng.random() < 0.1:
        fields["OtherPhone"] = fields["MobilePhone"]  # the same number typed twice
    return fields


def contacts(n: int, seed: int = 7, account_ids: list[str] | None = None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [contact(rng, i, account_ids) for i in range(n)]
