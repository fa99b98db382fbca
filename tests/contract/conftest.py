"""Everbridge and Conga sandboxes whose every exchange is checked against the vendor's
documents when the test ends (``spec_check``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dialsync.sandbox.conga import CongaSandbox
from dialsync.sandbox.everbridge import EverbridgeSandbox
from tests.contract.spec_check import checked


@pytest.fixture
def eb() -> Iterator[EverbridgeSandbox]:
    with EverbridgeSandbox() as box, checked("everbridge", box):
        yield box


@pytest.fixture
def cg() -> Iterator[CongaSandbox]:
    with CongaSandbox() as box, checked("conga", box):
        yield box
