"""The README keeps up with the code: every setting and every command is documented, and
everything documented exists. Settings and commands are added in parallel by several people;
this test is what keeps the tables honest."""

from __future__ import annotations

import re
from pathlib import Path

import click
from pydantic import BaseModel

from dialsync.cli import main
from dialsync.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
# Variables of the test harness and of other programs, documented for the tests, not settings.
NOT_SETTINGS = re.compile(r"DIALSYNC_TEST_\w+")


def defined_settings() -> set[str]:
    """Every DIALSYNC_* variable Settings reads: DIALSYNC_X, and DIALSYNC_SECTION__FIELD."""
    names = set()
    for name, field in Settings.model_fields.items():
        if field.validation_alias is not None:
            continue  # read from a standard variable (REQUESTS_CA_BUNDLE), not a DIALSYNC_ one
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            for inner in kind.model_fields:
                names.add(f"{ENV_PREFIX}{name}__{inner}".upper())
        else:
            names.add(f"{ENV_PREFIX}{name}".upper())
    return names


def settings_tables(text: str) -> list[list[str]]:
    """The rows of every table whose first column is `variable`."""
    tables, current, inside = [], [], False
    for line in text.splitlines():
        if not line.startswith("|"):
            if current:
                tables.append(current)
            current, inside = [], False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not inside:
            inside = cells[0] == "variable"
            continue
        if set(cells[0]) <= set("-: "):
            continue
        current.append(cells[0])
    if current:
        tables.append(current)
    return tables


def documented_settings(text: str) -> set[str]:
    """Names in the first cell of each settings table row; `__FIELD` continues the section of
    the last full name in the same cell (`DIALSYNC_SALESFORCE__CLIENT_ID`, `__CLIENT_SECRET`)."""
    names = set()
    for table in settings_tables(text):
        for cell in table:
            section = ""
            for token in re.findall(r"`([A-Z_]+)`", cell):
                if token.startswith("__") and section:
                    names.add(section + token)
                elif token.startswith(ENV_PREFIX.upper()):
                    names.add(token)
                    section = token.rsplit("__", 1)[0] if "__" in token else ""
    return {n for n in names if not NOT_SETTINGS.fullmatch(n)}


def cli_commands() -> set[str]:
    """`dialsync x`, `dialsync x y` ... for every command and subcommand of the click CLI."""
    found = set()

    def walk(group: click.Group, prefix: str) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None
            found.add(f"{prefix} {name}")
            if isinstance(cmd, click.Group):
                walk(cmd, f"{prefix} {name}")

    walk(main, "dialsync")
    return found


def documented_commands(text: str) -> set[str]:
    """`dialsync ...` in the README: the words after `dialsync` up to the first option,
    argument or punctuation, in code spans and code blocks."""
    spans = re.findall(r"`([^`\n]+)`", text)
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    lines = spans + [line for block in blocks for line in block.splitlines()]
    found = set()
    for line in lines:
        for match in re.finditer(r"(?:^|[\s;$(|&/])dialsync((?: [a-z][a-z-]*)+)", line):
            words = match.group(1).split()
            found.add(" ".join(["dialsync", *words]))
    return found


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    text = README.read_text()
    defined, documented = defined_settings(), documented_settings(text)
    assert sorted(defined - documented) == [], "settings missing from the README tables"
    assert sorted(documented - defined) == [], "README documents settings that do not exist"


def test_every_command_is_documented_and_every_documented_one_exists() -> None:
    text = README.read_text()
    commands = cli_commands()
    documented = documented_commands(text)
    # A documented line names an existing command when its longest known prefix is a command
    # and the next word (if any) is not an unknown subcommand of a group.
    unknown = set()
    for line in documented:
        words = line.split()
        known = max(
            (n for n in range(2, len(words) + 1) if " ".join(words[:n]) in commands),
            default=0,
        )
        if known == 0:
            unknown.add(line)
            continue
        name = " ".join(words[:known])
        sub = [c for c in commands if c.startswith(name + " ")]
        if sub and len(words) > known:
            unknown.add(line)  # a group followed by a word that is not one of its commands
    assert sorted(unknown) == [], "README names dialsync commands that do not exist"
    named = {" ".join(line.split()[:n]) for line in documented for n in range(2, 5)}
    assert sorted(commands - named) == [], "commands missing from the README"
