"""The mapping file (TOML or YAML): read, validate, and say which line is wrong.

Parsing, validation and line numbers only; what the rules mean is in ``rules.py``. No I/O but
reading the file: the check against the org's describe() takes the field names as an argument.
Reading the text and finding each key's line is in ``file_text.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dialsync.errors import ConfigError

from .contact import OPTIONAL_FIELDS
from .file_text import Loc, Problem, dotted, read_toml, read_yaml
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

# Where each model sits in the file: an unknown key is answered with the keys it allows.
_SECTIONS: dict[Loc, type[BaseModel]] = {
    (): MappingSpec,
    ("names",): NamesRule,
    ("priority",): PriorityRule,
    ("timezone",): TimezoneRule,
    ("routing",): RoutingRule,
}


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
        data, lines, problems = read_yaml(text, path)
    elif suffix == ".toml":
        data, lines, problems = read_toml(text, path)
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
