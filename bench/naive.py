"""The naive baseline: how ad-hoc sync scripts do it, for comparison only.

`query_all` every Contact into memory, then one create call per contact (no batching, no
state: every run sends everything again). Uses the same mapper, so only the strategy differs.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import requests
from simple_salesforce.api import Salesforce

from dialsync.destinations.talkdesk import render_record
from dialsync.mapping import MappingConfig, map_contact
from dialsync.models import DialerRecord
from dialsync.sources.salesforce_records import to_contact


def run_naive(env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = env["DIALSYNC_CA_BUNDLE"]
    login = env["DIALSYNC_SALESFORCE__LOGIN_URL"]
    token = session.post(
        f"{login}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["DIALSYNC_SALESFORCE__CLIENT_ID"],
            "client_secret": env["DIALSYNC_SALESFORCE__CLIENT_SECRET"],
        },
    ).json()
    sf = Salesforce(
        session_id=token["access_token"],
        instance_url=token["instance_url"],
        session=session,
        version="62.0",
    )
    fields = (
        "Id, IsDeleted, MasterRecordId, SystemModstamp, FirstName, LastName, Phone, "
        "MobilePhone, HomePhone, OtherPhone, AssistantPhone, DoNotCall, MailingCity, "
        "MailingCountry, Email, Title"
    )
    rows = sf.query_all(f"SELECT {fields} FROM Contact")["records"]
    config = MappingConfig(instance_url=token["instance_url"])
    td = httpx.Client(timeout=30)
    auth = td.post(
        env["DIALSYNC_TALKDESK__TOKEN_URL"],
        auth=(env["DIALSYNC_TALKDESK__CLIENT_ID"], env["DIALSYNC_TALKDESK__CLIENT_SECRET"]),
        data={"grant_type": "client_credentials", "scope": "record-lists:manage"},
    ).json()
    headers = {"Authorization": f"Bearer {auth['access_token']}"}
    url = (
        f"{env['DIALSYNC_TALKDESK__API_URL']}/record-lists/"
        f"{env['DIALSYNC_TALKDESK__RECORD_LIST_ID']}/records"
    )
    calls = 0
    for row in rows:
        record = map_contact(to_contact(row), config)
        if isinstance(record, DialerRecord):
            td.post(url, json=render_record(record), headers=headers)
            calls += 1
    return {
        "seconds": time.perf_counter() - started,
        "dialer_calls": calls,
        "salesforce_requests": 1 + -(-len(rows) // 2000),
    }
