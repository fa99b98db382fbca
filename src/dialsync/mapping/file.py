"""The mapping file (TOML or YAML): read, validate, and say which line is wrong.

Parsing, validation and line numbers only; what the rules mean is in ``rules.py``. No I/O but
reading the file: the check against the org's describe() takes the field names as an argument.

Python's tomllib reports positions for syntax errors only, so the lines of keys are found by a
light scan of the text (table headers and ``key =`` lines). A value inside an inline table or
an array is reported at the line of its key, which is where the operator looks anyway.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dialsync.errors import ConfigError

from .contact import OPTIONAL_FIELDS
from .rules import (
    FileMapper,
    ListRouter,
    MappingSpec,
    NamesRule,
    PriorityRule,
    RoutingRule,
    TimezoneRule,
    semantic_problems,
)

SETTING = "DIALSYNC_MAPPING__FILE"
Loc = tuple[str | int, ...]

# Where each model sits in the file: an unknown key is answered with the keys it allows.
_SECTIONS: dict[Loc, type[BaseModel]] = {
    (): MappingSpec,
    ("names",): NamesRule,
    ("priority",): PriorityRule,
    ("timezone",): TimezoneRule,
    ("routing",): RoutingRule,
}

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


class MappingFileError(ConfigError):
    """The mapping file is unreadable or invalid; ``problems`` lists every finding.

    ``partial`` holds the sections that are valid on their own (when any are), so their fields
    can still be checked against the org in the same round.
    """

    def __init__(
        self, path: Path, problems: list[Problem], partial: MappingFile | None = None
    ) -> None:
        self.problems = problems
        self.partial = partial
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"{SETTING}: {count} in the mapping file:\n  {lines}", setting=SETTING)


@dataclass(frozen=True)
class MappingFile:
    path: Path
    spec: MappingSpec
    lines: dict[Loc, int]

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of the nearest enclosing key that has one."""
        for end in range(len(loc), 0, -1):
            found = self.lines.get(loc[:end])
            if found is not None:
                return found
        return None

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(self.path, self.line(loc), dotted(loc), message)

    def check_fields(self, org_fields: set[str]) -> tuple[list[Problem], list[Problem]]:
        """(errors, warnings) from comparing the fields the file reads with the org's Contact.

        ``org_fields`` is ``SalesforceSource.describe_fields()``: names, and relationship
        names with a trailing dot ("Account."). A relationship field is checked up to the
        relationship: describe() of Contact does not list the related object's fields.
        """
        errors: list[Problem] = []
        warnings: list[Problem] = []
        for field, loc in self.spec.field_refs():
            relation, dot, _ = field.partition(".")
            if dot:
                if f"{relation}." not in org_fields:
                    errors.append(
                        self.problem(loc, f"Contact has no relationship {relation!r} ({field})")
                    )
                elif loc and loc[0] in ("routing", "priority"):
                    warnings.append(
                        self.problem(
                            loc,
                            f"{field} is read through a relationship: a change on the "
                            f"{relation} does not move the Contact's SystemModstamp, so it "
                            "reaches the dialer when the contact itself changes or after "
                            "`dialsync resync --all`",
                        )
                    )
            elif field not in org_fields:
                if field in OPTIONAL_FIELDS:
                    if (loc[0],) not in self.lines:
                        continue  # a default of the file's, not something the operator wrote
                    warnings.append(
                        self.problem(
                            loc,
                            f"{field} does not exist in this org (state and country picklists "
                            "are off): it is read as blank",
                        )
                    )
                else:
                    errors.append(self.problem(loc, f"Contact has no field {field!r}"))
        if not self.spec.do_not_call:
            warnings.append(
                self.problem(
                    ("do_not_call",),
                    "no Do Not Call field: every contact with a phone is dialled",
                )
            )
        return errors, warnings

    def mapper(self) -> FileMapper:
        return FileMapper(self.spec)

    def router(self, default_list: str | None) -> ListRouter | None:
        rule = self.spec.routing
        if rule is None:
            return None
        chosen = rule.default or default_list
        if not chosen:
            raise ConfigError(
                "the mapping file routes contacts but names no default list: set routing.default "
                "or DIALSYNC_TALKDESK__RECORD_LIST_ID",
                setting=SETTING,
            )
        return ListRouter(rule, chosen)


def dotted(loc: Loc) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            text = part if re.fullmatch(_BARE, part) else f'"{part}"'
            parts.append(("." if parts else "") + text)
    return "".join(parts)


def load_mapping_file(path: Path) -> MappingFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise MappingFileError(path, [Problem(path, None, "", f"cannot read: {reason}")]) from None
    return parse_mapping(text, path)


def parse_mapping(text: str, path: Path) -> MappingFile:
    """Validate ``text`` (TOML, or YAML for .yaml/.yml) into a MappingFile or raise."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        data, lines, problems = _read_yaml(text, path)
    elif suffix == ".toml":
        data, lines, problems = _read_toml(text, path)
    else:
        problems = [Problem(path, None, "", "the file name must end in .toml, .yaml or .yml")]
        raise MappingFileError(path, problems)
    if problems:
        raise MappingFileError(path, problems)
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        found = MappingFile(path, MappingSpec(), lines)
        issues = [*_pydantic_problems(found, exc), *_section_rules(found, data)]
        raise MappingFileError(path, _sorted(issues), _valid_sections(path, data, lines)) from None
    mapping = MappingFile(path, spec, lines)
    checks = [mapping.problem(loc, message) for loc, message in semantic_problems(spec)]
    if checks:
        raise MappingFileError(path, _sorted(checks), mapping)
    return mapping


def _valid_sections(path: Path, data: Any, lines: dict[Loc, int]) -> MappingFile | None:
    """The file reduced to its sections that validate on their own (the others take their
    defaults), for checking their fields; None when none does."""
    if not isinstance(data, dict):
        return None
    kept = {}
    for key, value in data.items():
        try:
            MappingSpec.model_validate({key: value})
        except ValidationError:
            continue
        kept[key] = value
    try:
        spec = MappingSpec.model_validate(kept)
    except ValidationError:
        return None
    return MappingFile(
        path, spec, {loc: n for loc, n in lines.items() if loc[:1] in {(k,) for k in kept}}
    )


@dataclass(frozen=True)
class MappingCheck:
    """Everything wrong with a mapping file, found in one round."""

    mapping: MappingFile | None  # None when the file could not be read at all
    errors: list[Problem]
    warnings: list[Problem]


def check_mapping(
    path: Path, default_list: str | None, org_fields: set[str] | None = None
) -> MappingCheck:
    """The file's own problems, its routing's default list, and (given the org's Contact
    fields) every field it reads: all reported together, not one kind per run."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    try:
        mapping: MappingFile | None = load_mapping_file(path)
        checked = mapping
    except MappingFileError as exc:
        errors += exc.problems
        mapping, checked = None, exc.partial
    if checked is not None:
        try:
            checked.router(default_list)
        except ConfigError as exc:
            errors.append(checked.problem(("routing",), exc.message))
        if org_fields is not None:
            found, warned = checked.check_fields(org_fields)
            errors += found
            warnings += warned
    return MappingCheck(mapping, _sorted(errors), warnings)


def default_mapping() -> MappingFile:
    """The built-in mapping, as the file that maps like it (an empty one)."""
    return MappingFile(Path("(default mapping)"), MappingSpec(), {})


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.key))


def _section_rules(found: MappingFile, data: Any) -> Iterator[Problem]:
    """The rules across keys of each section that is valid on its own, so that one round
    reports every problem even when another section has a wrong type."""
    for key, value in data.items() if isinstance(data, dict) else ():
        try:
            part = MappingSpec.model_validate({key: value})
        except ValidationError:
            continue
        for loc, message in semantic_problems(part):
            if loc[0] == key:
                yield found.problem(loc, message)


def _pydantic_problems(mapping: MappingFile, exc: ValidationError) -> Iterator[Problem]:
    seen: set[Loc] = set()
    for error in exc.errors():
        # "[key]" marks an error in a dict key; the key itself is the location.
        loc: Loc = tuple(p for p in error["loc"] if p != "[key]")
        if loc in seen:  # one message per key is enough
            continue
        seen.add(loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            model = _SECTIONS.get(loc[:-1])
            known = ", ".join(model.model_fields) if model else ""
            message = f"unknown key{f' (known here: {known})' if known else ''}"
        yield mapping.problem(loc, message)


# -- TOML -------------------------------------------------------------------------------------
def _read_toml(text: str, path: Path) -> tuple[Any, dict[Loc, int], list[Problem]]:
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
def _read_yaml(text: str, path: Path) -> tuple[Any, dict[Loc, int], list[Problem]]:
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
