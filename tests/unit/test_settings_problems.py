"""Settings checked the way an operator needs: every problem at once, typos named."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialsync.errors import ConfigError
from dialsync.settings import Settings, load_settings
from dialsync.settings_vars import unknown_variables


def test_unknown_variables_suggest_the_closest_setting(tmp_path: Path) -> None:
    env = {
        "DIALSYNC_TALKDESK__CLIENT_SECRT": "x",
        "DIALSYNC_COMPLETELY_MADE_UP": "1",
        "DIALSYNC_EVERBRIDGE__PATHS__MOBILE": "Cell",  # a key of a map setting: valid
        "DIALSYNC_TEST_POSTGRES_URL": "postgresql://",  # the test suite's own
        "DIALSYNC_SYNC": "{}",  # a whole section as JSON
        "PATH": "/bin",
    }
    found = dict(unknown_variables(env, env_file=None))
    assert found == {
        "DIALSYNC_TALKDESK__CLIENT_SECRT": "DIALSYNC_TALKDESK__CLIENT_SECRET",
        "DIALSYNC_COMPLETELY_MADE_UP": None,
    }


def test_dotenv_variables_are_checked_too(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DIALSYNC_LOGLEVEL=DEBUG\nDIALSYNC_LOG_FORMAT=json\n")
    assert unknown_variables({}, env_file=dotenv) == [("DIALSYNC_LOGLEVEL", "DIALSYNC_LOG_LEVEL")]


def test_every_invalid_setting_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALSYNC_LOG_LEVEL", "chatty")
    monkeypatch.setenv("DIALSYNC_SYNC__INTERVAL_SECONDS", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "2 settings must be fixed" in caught.value.message
    assert "DIALSYNC_LOG_LEVEL" in caught.value.message
    assert "DIALSYNC_SYNC__INTERVAL_SECONDS" in caught.value.message


def test_problems_lists_every_missing_setting_of_every_destination() -> None:
    settings = Settings(_env_file=None, destinations="talkdesk,conga")  # type: ignore[call-arg]
    named = {p.setting for p in settings.problems()}
    assert named == {
        "DIALSYNC_SALESFORCE__CLIENT_ID",
        "DIALSYNC_TALKDESK__TOKEN_URL",
        "DIALSYNC_TALKDESK__CLIENT_ID",
        "DIALSYNC_TALKDESK__CLIENT_SECRET",
        "DIALSYNC_TALKDESK__RECORD_LIST_ID",
        "DIALSYNC_CONGA__CLIENT_ID",
        "DIALSYNC_CONGA__CLIENT_SECRET",
    }


def test_dialsync_ca_bundle_wins_over_the_standard_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DIALSYNC_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    ours, theirs = tmp_path / "ours.pem", tmp_path / "theirs.pem"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, ca_bundle=ours, REQUESTS_CA_BUNDLE=theirs, SSL_CERT_FILE=theirs
    )
    assert settings.ca_file == (ours, "DIALSYNC_CA_BUNDLE")
    fallback = Settings(_env_file=None, SSL_CERT_FILE=theirs)  # type: ignore[call-arg]
    assert fallback.ca_file == (theirs, "SSL_CERT_FILE")
