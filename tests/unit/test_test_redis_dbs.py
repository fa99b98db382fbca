"""The test run's own plumbing: xdist workers sharing an explicit Redis never share a DB."""

from __future__ import annotations

import pytest

from tests.conftest import shared_redis_dbs


def test_one_process_uses_every_number_but_zero() -> None:
    assert shared_redis_dbs(None, 1) == list(range(1, 16))


def test_workers_split_the_numbers_between_them() -> None:
    shares = [shared_redis_dbs(f"gw{i}", 3) for i in range(3)]
    assert sorted(db for share in shares for db in share) == list(range(1, 16))
    assert all(len(share) == 5 for share in shares)


def test_more_workers_than_numbers_is_refused() -> None:
    with pytest.raises(pytest.fail.Exception):
        shared_redis_dbs("gw15", 16)
