"""Parser and evaluator for the SOQL subset the Salesforce sandbox answers.

Covers what an incremental Contact reader sends: a field list (dotted relationship fields too),
``WHERE`` with AND / OR / NOT and parentheses, comparisons, LIKE, [NOT] IN, typed literals,
``ORDER BY`` (with NULLS FIRST/LAST), ``LIMIT`` and ``SELECT COUNT()``. Where real SOQL is
stricter than SQL the parser is strict too, so a client cannot pass here and fail on the real
org: AND and OR may not be mixed without parentheses, double quotes are not string delimiters,
datetime literals need a zone, and a literal must match its field's type.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cached_property, partial
from typing import Any, TypeVar

T = TypeVar("T")
Getter = Callable[[str], Any]

STRING_TYPES = frozenset(
    {"string", "phone", "email", "picklist", "textarea", "url", "combobox", "multipicklist"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "int", "currency", "percent", "long"})
RESERVED = frozenset(
    {"AND", "ASC", "BY", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN"}
    | {"INCLUDES", "LAST", "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OFFSET", "OR", "ORDER"}
    | {"SELECT", "WHERE", "WITH", "TRUE", "FALSE"}
)


class SoqlError(Exception):
    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class SoqlSyntaxError(SoqlError):
    """Salesforce answers MALFORMED_QUERY."""


class SoqlFieldError(SoqlError):
    """Salesforce answers INVALID_FIELD. ``field`` is the name as the query wrote it."""

    def __init__(
        self,
        field: str,
        entity: str = "Contact",
        position: int | None = None,
        relationships: Iterable[str] = (),
    ) -> None:
        self.field = field
        head, _, column = field.rpartition(".")
        known = {r.lower(): r for r in relationships}
        if head and head.lower() not in known:
            message = (
                f"Didn't understand relationship '{head}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names."
            )
        else:
            message = (
                f"No such column '{column}' on entity '{known.get(head.lower(), entity)}'. If "
                "you are attempting to use a custom field, be sure to append the '__c' after "
                "the custom field name. Please reference your WSDL or the describe call for "
                "the appropriate names."
            )
        super().__init__(message, position)


class SoqlTypeError(SoqlError):
    """A literal does not fit its field; Salesforce answers INVALID_QUERY_FILTER_OPERATOR."""


def salesforce_message(text: str, error: SoqlError) -> str:
    """The error text the way Salesforce shows it: the query, a caret, row and column."""
    if error.position is None:
        return error.message
    before = text[: error.position]
    row = before.count("\n") + 1
    column = error.position - (before.rfind("\n") + 1) + 1
    line = text.splitlines()[row - 1] if text.strip() else text
    caret = " " * (column - 1) + "^"
    return f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{error.message}"


# -- datetimes ---------------------------------------------------------------------------------
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|([+-])(\d{2}):?(\d{2}))\Z"
)


def parse_datetime(text: str) -> datetime:
    """An ISO-8601 datetime with a zone (``Z``, ``+00:00`` or ``+0000``) as aware UTC."""
    m = _DATETIME.match(text)
    if m is None:
        raise ValueError(f"not a datetime with a zone: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0").ljust(6, "0"))
    zone = UTC
    if m.group(8) != "Z":
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        zone = timezone(-offset if m.group(9) == "-" else offset)
    return datetime(year, month, day, hour, minute, second, micro, zone).astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """Salesforce's JSON form: ``2026-11-22T07:54:32.000+0000``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


# -- tokens ------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))(?![\w:.])
    |(?P<baddate>\d{4}-\d{2}-\d{2}T[\w:.+-]*)
    |(?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
    |(?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
    |(?P<ident>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),])""",
    re.X,
)
# escaped LIKE wildcards become private-use characters so a decoded backslash stays unambiguous
_LIKE_ESCAPES = {"%": "\ue000", "_": "\ue001"}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, string, number, datetime, date, op, punct, eof
    text: str
    pos: int
    value: Any = None

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "'":
            end, value = _read_string(text, pos)
            tokens.append(_Token("string", text[pos:end], pos, value))
            pos = end
            continue
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup == "baddate":
            bad = text[pos:].split()[0] if text[pos:].split() else text[pos]
            raise SoqlSyntaxError(f"unexpected token: '{bad}'", pos)
        kind = m.lastgroup or ""
        raw = m.group()
        if kind in ("datetime", "date"):
            convert = parse_datetime if kind == "datetime" else date.fromisoformat
            try:
                tokens.append(_Token(kind, raw, pos, convert(raw)))
            except ValueError as exc:  # 2026-02-30 and the like
                raise SoqlSyntaxError(f"no viable alternative at '{raw}'", pos) from exc
        elif kind == "number":
            tokens.append(_Token(kind, raw, pos, float(raw) if "." in raw else int(raw)))
        elif kind != "ws":
            tokens.append(_Token(kind, raw, pos))
        pos = m.end()
    tokens.append(_Token("eof", "<EOF>", len(text)))
    return tokens


def _read_string(text: str, start: int) -> tuple[int, str]:
    """Decode a quoted literal; escaped ``%`` and ``_`` stay marked for LIKE to interpret."""
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "'":
            return pos + 1, "".join(out)
        if char == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt.lower() in _ESCAPES:
                out.append(_ESCAPES[nxt.lower()])
            elif nxt in _LIKE_ESCAPES:
                out.append(_LIKE_ESCAPES[nxt])
            else:
                raise SoqlSyntaxError(
                    f"Invalid string literal '{text[start : pos + 2]}'. Illegal escape sequence",
                    start,
                )
            pos += 2
            continue
        out.append(char)
        pos += 1
    raise SoqlSyntaxError("unterminated string literal", start)


# -- syntax tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldRef:
    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, boolean, null, datetime, date
    value: Any
    pos: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >=
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: FieldRef
    pattern: Literal


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND or OR
    operands: tuple[Expr, ...]


Expr = Comparison | InList | Like | Not | BoolOp


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool = False
    nulls_first: bool = True


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: _Token | None = None) -> SoqlSyntaxError:
        token = token or self.peek()
        return SoqlSyntaxError(f"unexpected token: '{token.text}'", token.pos)

    def expect_word(self, word: str) -> _Token:
        if not self.peek().is_word(word):
            raise self.fail()
        return self.take()

    def expect_punct(self, char: str) -> None:
        token = self.take()
        if token.kind != "punct" or token.text != char:
            raise self.fail(token)

    def query(self, text: str) -> Query:
        self.expect_word("SELECT")
        count_only = False
        fields: list[FieldRef] = []
        nxt = self.tokens[min(self.i + 1, len(self.tokens) - 1)]
        if self.peek().is_word("COUNT") and nxt.kind == "punct" and nxt.text == "(":
            self.take(), self.take()
            self.expect_punct(")")
            count_only = True
        else:
            fields.append(self.field())
            while self.peek().text == ",":
                self.take()
                fields.append(self.field())
        self.expect_word("FROM")
        obj = self.take()
        if obj.kind != "ident" or "." in obj.text or obj.text.upper() in RESERVED:
            raise self.fail(obj)
        where = None
        if self.peek().is_word("WHERE"):
            self.take()
            where = self.condition()
        order: list[OrderItem] = []
        if self.peek().is_word("ORDER"):
            self.take()
            self.expect_word("BY")
            order.append(self.order_item())
            while self.peek().text == ",":
                self.take()
                order.append(self.order_item())
        limit = None
        if self.peek().is_word("LIMIT"):
            self.take()
            token = self.take()
            if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
                raise self.fail(token)
            limit = token.value
        if self.peek().kind != "eof":
            raise self.fail()
        return Query(tuple(fields), obj.text, where, tuple(order), limit, count_only, text)

    def field(self) -> FieldRef:
        token = self.take()
        if token.kind != "ident" or token.text.upper() in RESERVED:
            raise self.fail(token)
        return FieldRef(token.text, token.pos)

    def order_item(self) -> OrderItem:
        ref = self.field()
        descending = False
        if self.peek().is_word("ASC", "DESC"):
            descending = self.take().text.upper() == "DESC"
        nulls_first = not descending  # Salesforce's default: nulls sort low
        if self.peek().is_word("NULLS"):
            self.take()
            if not self.peek().is_word("FIRST", "LAST"):
                raise self.fail()
            nulls_first = self.take().text.upper() == "FIRST"
        return OrderItem(ref, descending, nulls_first)

    def condition(self) -> Expr:
        operands = [self.unary()]
        joiner: str | None = None
        while self.peek().is_word("AND", "OR"):
            token = self.take()
            if joiner is not None and token.text.upper() != joiner:
                # SOQL has no precedence between AND and OR: mixing needs parentheses
                raise self.fail(token)
            joiner = token.text.upper()
            operands.append(self.unary())
        return BoolOp(joiner, tuple(operands)) if joiner else operands[0]

    def unary(self) -> Expr:
        if self.peek().is_word("NOT"):
            self.take()
            return Not(self.unary())
        if self.peek().kind == "punct" and self.peek().text == "(":
            self.take()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.simple()

    def simple(self) -> Expr:
        ref = self.field()
        token = self.peek()
        if token.is_word("NOT", "IN"):
            negated = self.take().text.upper() == "NOT"
            if negated:
                self.expect_word("IN")
            self.expect_punct("(")
            values = [self.literal()]
            while self.peek().text == ",":
                self.take()
                values.append(self.literal())
            self.expect_punct(")")
            return InList(ref, tuple(values), negated)
        if token.is_word("LIKE"):
            self.take()
            pattern = self.literal()
            if pattern.kind != "string":
                raise SoqlSyntaxError("LIKE needs a quoted string pattern", pattern.pos)
            return Like(ref, pattern)
        if token.kind != "op":
            raise self.fail()
        self.take()
        op = "!=" if token.text == "<>" else token.text
        value = self.literal()
        if value.kind == "null" and op not in ("=", "!="):
            raise SoqlSyntaxError(f"invalid operator on null: {token.text}", token.pos)
        return Comparison(ref, op, value)

    def literal(self) -> Literal:
        token = self.take()
        if token.kind in ("string", "number", "datetime", "date"):
            return Literal(token.kind, token.value, token.pos)
        if token.is_word("TRUE", "FALSE"):
            return Literal("boolean", token.text.upper() == "TRUE", token.pos)
        if token.is_word("NULL"):
            return Literal("null", None, token.pos)
        raise self.fail(token)


def parse(text: str, fields: Mapping[str, str] | Iterable[str] | None = None) -> Query:
    """Parse ``text``; with ``fields`` (name -> describe type, or bare names) also validate."""
    query = _Parser(text).query(text)
    return query if fields is None else query.bind(fields)


# -- the query and its evaluator -------------------------------------------------------------
def _unescape_like(value: str) -> str:
    return value.replace(_LIKE_ESCAPES["%"], "%").replace(_LIKE_ESCAPES["_"], "_")


def _like_regex(pattern: str) -> re.Pattern[str]:
    wild = {"%": ".*", "_": "."}
    parts = [wild.get(c) or re.escape(_unescape_like(c)) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _fold(value: Any) -> Any:
    # text comparisons in SOQL ignore case; Ids are compared exactly
    return value.lower() if isinstance(value, str) else value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id18(id15: str) -> str:
    """The 18-character, case-safe form of a 15-character Salesforce Id."""
    suffix = ""
    for chunk in range(3):
        part = id15[chunk * 5 : chunk * 5 + 5]
        suffix += _ID_SUFFIX[sum(1 << i for i, c in enumerate(part) if "A" <= c <= "Z")]
    return id15 + suffix


@dataclass(frozen=True)
class Query:
    select: tuple[FieldRef, ...]
    object_name: str
    where: Expr | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    count_only: bool = False
    text: str = ""
    types: Mapping[str, str] | None = None  # canonical field name -> describe type, once bound

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(ref.name for ref in self.select)

    def bind(self, fields: Mapping[str, str] | Iterable[str]) -> Query:
        """Canonical field names (SOQL names are case-insensitive) and literal type checks."""
        types = dict(fields) if isinstance(fields, Mapping) else dict.fromkeys(fields, "any")
        by_lower = {name.lower(): name for name in types}

        relationships = {n.rpartition(".")[0] for n in types if "." in n}

        def ref(r: FieldRef) -> FieldRef:
            name = by_lower.get(r.name.lower())
            if name is None:
                raise SoqlFieldError(r.name, self.object_name, r.pos, relationships)
            return FieldRef(name, r.pos)

        seen: set[str] = set()
        select = []
        for r in self.select:
            bound = ref(r)
            if bound.name in seen:
                raise SoqlSyntaxError(f"duplicate field selected: {bound.name}", r.pos)
            seen.add(bound.name)
            select.append(bound)

        def walk(expr: Expr) -> Expr:
            if isinstance(expr, BoolOp):
                return BoolOp(expr.op, tuple(walk(e) for e in expr.operands))
            if isinstance(expr, Not):
                return Not(walk(expr.operand))
            bound = ref(expr.field)
            ftype = types[bound.name]
            if isinstance(expr, Comparison):
                return Comparison(bound, expr.op, _check(bound.name, ftype, expr.value))
            if isinstance(expr, InList):
                values = tuple(_check(bound.name, ftype, v) for v in expr.values)
                return InList(bound, values, expr.negated)
            if ftype not in STRING_TYPES | ID_TYPES | {"any"}:
                raise SoqlTypeError(f"invalid operator on field: {bound.name}", expr.pattern.pos)
            return Like(bound, expr.pattern)

        return replace(
            self,
            select=tuple(select),
            where=walk(self.where) if self.where is not None else None,
            order_by=tuple(replace(o, field=ref(o.field)) for o in self.order_by),
            types=types,
        )

    # -- evaluation -------------------------------------------------------------------------
    def _type(self, name: str) -> str:
        return (self.types or {}).get(name, "any")

    @cached_property
    def _predicate(self) -> Callable[[Getter], bool]:
        return self._compile(self.where) if self.where is not None else (lambda get: True)

    def _compile(self, expr: Expr) -> Callable[[Getter], bool]:
        if isinstance(expr, BoolOp):
            parts = [self._compile(e) for e in expr.operands]
            if expr.op == "AND":
                return lambda get: all(p(get) for p in parts)
            return lambda get: any(p(get) for p in parts)
        if isinstance(expr, Not):
            inner = self._compile(expr.operand)
            return lambda get: not inner(get)
        name = expr.field.name
        key: Callable[[Any], Any] = (lambda v: v) if self._type(name) in ID_TYPES else _fold
        if isinstance(expr, Like):
            regex = _like_regex(expr.pattern.value)
            return lambda get: isinstance(v := get(name), str) and bool(regex.fullmatch(v))
        if isinstance(expr, InList):
            wanted = {key(v.value) for v in expr.values if v.kind != "null"}
            has_null = any(v.kind == "null" for v in expr.values)
            negated = expr.negated

            def in_list(get: Getter) -> bool:
                value = get(name)
                found = has_null if value is None else key(value) in wanted
                return found != negated

            return in_list
        op, literal = expr.op, expr.value
        if literal.kind == "null":
            return (
                (lambda get: get(name) is None)
                if op == "="
                else (lambda get: get(name) is not None)
            )
        compare, target = _OPS[op], key(literal.value)

        def comparison(get: Getter) -> bool:
            value = get(name)
            if value is None:
                return op == "!="  # SOQL has no unknown: a null differs from any value
            try:
                return bool(compare(key(value), target))
            except TypeError:
                return op == "!="

        return comparison

    def matches(self, get: Getter) -> bool:
        """Whether the row whose field values ``get(name)`` returns passes WHERE."""
        return self._predicate(get)

    def filter(self, rows: Iterable[T], get: Callable[[T, str], Any]) -> list[T]:
        predicate = self._predicate
        return [row for row in rows if predicate(partial(get, row))]

    def sort(self, rows: Sequence[T], get: Callable[[T, str], Any]) -> list[T]:
        """Rows in ORDER BY order (stable; insertion order when there is no ORDER BY)."""
        result = list(rows)
        # one stable sort per key, last key first, gives the multi-key order
        for item in reversed(self.order_by):
            result.sort(key=self._sort_key(item, get), reverse=item.descending)
        return result

    def _sort_key(
        self, item: OrderItem, get: Callable[[T, str], Any]
    ) -> Callable[[T], tuple[Any, ...]]:
        name = item.field.name
        fold: Callable[[Any], Any] = (lambda v: v) if self._type(name) in ID_TYPES else _fold
        # reverse=True flips the null rank too, so pick it from where nulls must end up
        null_key = (0,) if item.nulls_first != item.descending else (2,)

        def key(row: T) -> tuple[Any, ...]:
            value = get(row, name)
            return null_key if value is None else (1, fold(value))

        return key

    def apply(self, rows: Iterable[T], get: Callable[[T, str], Any]) -> list[T]:
        """WHERE, ORDER BY and LIMIT in one go."""
        result = self.sort(self.filter(rows, get), get)
        return result if self.limit is None else result[: self.limit]


def _check(name: str, ftype: str, literal: Literal) -> Literal:
    """Reject a literal of the wrong type the way Salesforce does; normalise Id literals."""
    if literal.kind == "null" or ftype == "any":
        return literal
    if ftype in STRING_TYPES | ID_TYPES:
        if literal.kind != "string":
            kind = "id" if ftype in ID_TYPES else "string"
            raise SoqlTypeError(
                f"value of filter criterion for field '{name}' must be of type {kind} and "
                "should be enclosed in quotes",
                literal.pos,
            )
        if ftype in ID_TYPES:
            value = _unescape_like(literal.value)
            if len(value) not in (15, 18) or not value.isalnum() or not value.isascii():
                raise SoqlTypeError(f"invalid ID field: {value}", literal.pos)
            return replace(literal, value=id18(value) if len(value) == 15 else value)
        return replace(literal, value=_unescape_like(literal.value))
    wanted = {"boolean": "boolean", "datetime": "datetime", "date": "date"}.get(
        ftype, "number" if ftype in NUMBER_TYPES else ftype
    )
    if literal.kind != wanted:
        label = {"datetime": "dateTime"}.get(wanted, wanted)
        raise SoqlTypeError(
            f"value of filter criterion for field '{name}' must be of type {label} and "
            "should not be enclosed in quotes",
            literal.pos,
        )
    return literal
