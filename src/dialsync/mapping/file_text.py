"""A mapping file's text (TOML or YAML) read into data and the line of every key.

Python's tomllib reports positions for syntax errors only, so the lines of keys are found by a
light scan of the text (table headers and ``key =`` lines). A value inside an inline table or
an array is reported at the line of its key, which is where the operator looks anyway. YAML
gives them from its node tree, where a duplicate key (PyYAML keeps the last silently) is found.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where a value stands in the file: its keys (and list indexes) from the top.
Loc = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\\n]|\\.)*"'
_LITERAL = r"'[^'\n]*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_TABLE = re.compile(rf"^\s*\[\s*(?P<name>{_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY_TABLE = re.compile(rf"^\s*\[\[\s*(?P<name>{_DOTTED})\s*\]\]\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*(?P<name>{_DOTTED})\s*=")
_PARTS = re.compile(_PART)
_TOML_POSITION = re.compile(r"\s*\(at line (?P<line>\d+), column \d+\)$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the mapping file, at a line when it can be told."""

    path: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def dotted(loc: Loc) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            text = part if re.fullmatch(_BARE, part) else f'"{part}"'
            parts.append(("." if parts else "") + text)
    return "".join(parts)


# -- TOML -------------------------------------------------------------------------------------
def read_toml(text: str, path: Path) -> tuple[Any, dict[Loc, int], list[Problem]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line = int(found.group("line")) if found else None
        text_only = _TOML_POSITION.sub("", message)
        return None, {}, [Problem(path, line, "", f"TOML syntax: {text_only}")]
    return data, toml_key_lines(text), []


def toml_key_lines(text: str) -> dict[Loc, int]:
    """Line (1-based) of every table header and ``key =`` line, by dotted path."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    arrays: dict[Loc, int] = {}
    quote: str | None = None  # inside a multi-line string: its delimiter
    for number, line in enumerate(text.splitlines(), start=1):
        if quote is not None:
            if line.count(quote) % 2 == 1:
                quote = None
            continue
        if array := _ARRAY_TABLE.match(line):
            name = _split(array.group("name"))
            index = arrays[name] = arrays.get(name, -1) + 1
            table = (*name, index)
            lines.setdefault(name, number)
            lines[table] = number
        elif header := _TABLE.match(line):
            table = _split(header.group("name"))
            lines[table] = number
        elif key := _KEY.match(line):
            lines[(*table, *_split(key.group("name")))] = number
            rest = line[key.end() :]
            for delimiter in ('"""', "'''"):
                if rest.count(delimiter) % 2 == 1:
                    quote = delimiter
    return lines


def _split(dotted_key: str) -> tuple[str, ...]:
    return tuple(_unquote(m.group()) for m in _PARTS.finditer(dotted_key))


def _unquote(part: str) -> str:
    if part.startswith("'"):
        return part[1:-1]
    if part.startswith('"'):
        # TOML's own reading of the escapes, so the scanned key equals the parsed one.
        return str(tomllib.loads(f"k = {part}")["k"])
    return part


# -- YAML -------------------------------------------------------------------------------------
def read_yaml(text: str, path: Path) -> tuple[Any, dict[Loc, int], list[Problem]]:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return None, {}, [Problem(path, line, "", f"YAML syntax: {problem}")]
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    if root is not None:
        _walk_yaml(root, (), lines, problems, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(path, 1, "", "the file must hold a mapping of keys"))
    return data, lines, problems


def _walk_yaml(
    node: Any, loc: Loc, lines: dict[Loc, int], problems: list[Problem], path: Path
) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, str(key_node.value))
            line = key_node.start_mark.line + 1
            if child in lines:  # PyYAML keeps the last silently; a mapping file must not
                problems.append(Problem(path, line, dotted(child), "duplicate key"))
            lines[child] = line
            _walk_yaml(value_node, child, lines, problems, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _walk_yaml(item, (*loc, index), lines, problems, path)
