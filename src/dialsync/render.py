"""Human-readable text of the operator commands: plan, runs, preview, mapping check.

Output for people at a terminal; scripts use --json. Names and numbers of contacts are shown
here on purpose (the operator asked for them); logs never carry them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dialsync.mapping.rules import OMIT, MappingSpec
from dialsync.plan import ListPlan, Plan
from dialsync.preview import Preview
from dialsync.store.tables import RUN_COUNTERS

_VERBS = {"create": "create", "update": "update", "delete": "remove", "skip": "skip"}


def plan_lines(plan: Plan) -> list[str]:
    lines = [f"plan: a sync would read {plan.window}"]
    for item in plan.lists:
        lines += _list_lines(item)
    for note in plan.notes:
        lines.append(f"note: {note}")
    for name, reason in plan.failed.items():
        lines.append(f"error: {name}: {reason} (the sync would be partial)")
    lines.append(
        "a sync would report: " + ", ".join(f"{k} {plan.counts.get(k, 0):,}" for k in RUN_COUNTERS)
    )
    lines.append("(nothing was written to the dialer, and the cursor did not move)")
    return lines


def _list_lines(item: ListPlan) -> list[str]:
    title = f"{item.destination} list {item.list_id}" if item.destination == "talkdesk" else ""
    title = title or item.destination
    name = f" {item.name!r}" if item.name and item.name != item.list_id else ""
    lines = [
        f"{title}{name}: {item.records_now:,} of our records now, {item.records_after:,} after"
    ]
    for category in ("create", "update", "delete", "skip"):
        count = item.counts.get(category, 0)
        why = _counts(item.reasons.get(category, {}))
        lines.append(f"  {_VERBS[category]:<9} {count:>7,}" + (f"  {why}" if why else ""))
    lines.append(f"  {'unchanged':<9} {item.counts.get('unchanged', 0):>7,}")
    shown = [(c, e) for c in ("create", "update", "delete", "skip") for e in item.examples[c]]
    for i, (category, example) in enumerate(shown):
        lead = "  e.g. " if i == 0 else "       "
        lines.append(f"{lead}{_VERBS[category]:<7} {_example(example)}")
    return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in counts.items())


def _example(example: dict[str, Any]) -> str:
    parts = [example["id"]]
    if example.get("name"):
        parts.append(example["name"])
    if example.get("phones"):
        parts.append(" ".join(example["phones"]))
    changes = example.get("changes")
    if changes:
        parts.append("; ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, (a, b) in changes.items()))
    else:
        reason = example.get("reason", "")
        message = example.get("message")
        parts.append(f"({reason}{': ' + message if message else ''})")
    return "  ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def runs_lines(runs: Iterable[dict[str, Any]]) -> list[str]:
    rows = list(runs)
    if not rows:
        return ["no runs yet: run `dialsync sync`"]
    head = f"{'run':>5}  {'kind':<9} {'status':<8} {'started (UTC)':<19}  {'took':>7}"
    head += "".join(f" {name:>9}" for name in RUN_COUNTERS) + "  error"
    lines = [head]
    for run in rows:
        started: datetime = run["started_at"]
        line = (
            f"{run['id']:>5}  {run['kind']:<9} {run['status']:<8} "
            f"{started.strftime('%Y-%m-%d %H:%M:%S'):<19}  {_took(run):>7}"
        )
        line += "".join(f" {run.get(name) or 0:>9,}" for name in RUN_COUNTERS)
        lines.append(line + (f"  {run['error']}" if run.get("error") else ""))
    return lines


def _took(run: dict[str, Any]) -> str:
    if run.get("finished_at") is None:
        return "-"
    seconds = (run["finished_at"] - run["started_at"]).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def preview_lines(preview: Preview) -> list[str]:
    if not preview.found:
        return [f"no Contact {preview.contact_id} in Salesforce (deleted ones included)"]
    lines = [f"Contact {preview.contact_id} (SystemModstamp {preview.system_modstamp})"]
    width = max((len(k) for k in preview.fields), default=0)
    for name, value in preview.fields.items():
        if value not in (None, ""):
            lines.append(f"  {name.ljust(width)}  {value}")
    for item in preview.lists:
        where = f"{item.destination} list {item.list_id}"
        if item.payload is not None:
            lines.append(f"{where}: maps to")
            text = json.dumps(item.payload, ensure_ascii=False, indent=2, sort_keys=True)
            lines += [f"  {line}" for line in text.splitlines()]
        else:
            lines.append(f"{where}: not in this list ({item.reason}: {item.message})")
        row = f"{item.status}" + (f" ({item.row_reason})" if item.row_reason else "")
        row += f", record {item.record_id}" if item.record_id else ""
        lines.append(f"  sync table: {row if item.status else 'no row yet'}")
        lines.append(f"  next sync: {item.next_sync}")
        if item.note:
            lines.append(f"  note: {item.note}")
    return lines


def mapping_lines(
    spec: MappingSpec, default_priority: int | None, default_list: str | None
) -> list[str]:
    """What a mapping file does, in words."""
    lines = [f"  reads {len(spec.fields())} Contact fields: {', '.join(spec.fields())}"]
    lines.append(
        "  phones: " + ", ".join(f"{field} -> {kind.value}" for field, kind in spec.phones.items())
    )
    names = spec.names
    lines.append(
        f"  names: first from {' or '.join(names.first)}, last from {' or '.join(names.last)}, "
        f"else {names.fallback!r}"
    )
    lines.append(f"  do not call when: {' or '.join(spec.do_not_call) or '(never)'}")
    extra = ", ".join(f"{k} <- {' or '.join(v)}" for k, v in spec.extra_data.items())
    lines.append(f"  extra_data: {extra or '(none)'}")
    rule = spec.priority
    fallback = default_priority if rule.default is None else rule.default
    otherwise = "no priority" if fallback in (None, OMIT) else str(fallback)
    if rule.field is None:
        lines.append(f"  priority: {otherwise}")
    elif rule.values is not None:
        values = ", ".join(f"{k} -> {v}" for k, v in rule.values.items())
        lines.append(f"  priority: {rule.field}: {values}; otherwise {otherwise}")
    else:
        scale = f" scaled from {rule.scale[0]:g}..{rule.scale[1]:g}" if rule.scale else ""
        lines.append(f"  priority: {rule.field}{scale} (1..10); otherwise {otherwise}")
    zone = spec.timezone
    how = {
        "phone": "the first phone's zone, else the mailing country's",
        "country": "the mailing country's zone",
        "field": f"{zone.field}, else the first phone's zone, else the mailing country's",
        "fixed": str(zone.zone),
        "none": "none sent",
    }[zone.strategy]
    lines.append(f"  timezone: {how}" + (f", else {zone.fallback}" if zone.fallback else ""))
    if spec.routing is not None:
        routes = ", ".join(f"{v} -> {k}" for v, k in spec.routing.lists.items())
        default = spec.routing.default or default_list or "DIALSYNC_TALKDESK__RECORD_LIST_ID"
        lines.append(f"  routing: {spec.routing.field}: {routes}; otherwise {default}")
    return lines
