"""The alert and compliance settings the README documents exist, with the issue's defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialsync.errors import ConfigError
from dialsync.settings import load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert settings.alerts.webhook_url is None
    assert settings.alerts.min_interval_seconds == 300
    assert settings.alerts.failed_runs == 3
    assert settings.alerts.rejected_percent == 5
    assert settings.compliance.opt_out_seconds == 900


def test_every_documented_alert_setting_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    names = set(re.findall(r"DIALSYNC_(?:ALERTS|COMPLIANCE)__[A-Z_]+", README))
    assert "DIALSYNC_ALERTS__WEBHOOK_URL" in names and len(names) >= 6
    values = {"WEBHOOK_URL": "https://hooks.example.com/T/B/x/"}
    for name in names:
        field = name.split("__", 1)[1]
        monkeypatch.setenv(name, values.get(field, "7"))
    settings = load_settings(_env_file=None)
    for name in names:
        section, field = name.removeprefix("DIALSYNC_").lower().split("__")
        got = getattr(getattr(settings, section), field)
        assert str(got).rstrip("0").rstrip(".") == values.get(field.upper(), "7"), name


def test_a_webhook_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALSYNC_ALERTS__WEBHOOK_URL", "hooks.example.com/x")
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert exc.value.setting == "DIALSYNC_ALERTS__WEBHOOK_URL"
