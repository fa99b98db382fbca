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
from dialsync.store.protocol import RUN_COUNTERS

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
    """One line per run. A run that carries ``pushes`` (service mode: a pull and the pushes
    after it) is one line with their counts added; pushes that sent nothing are not shown."""
    rows = list(runs)
    if not rows:
        return ["no runs yet: run `dialsync sync`"]
    head = f"{'run':>5}  {'kind':<11} {'status':<8} {'started (UTC)':<19}  {'took':>7}"
    head += "".join(f" {name:>9}" for name in RUN_COUNTERS) + "  error"
    lines = [head]
    for run in rows:
        run = merged_run(run)
        started: datetime = run["started_at"]
        line = (
            f"{run['id']:>5}  {run['kind']:<11} {run['status']:<8} "
            f"{started.strftime('%Y-%m-%d %H:%M:%S'):<19}  {_took(run):>7}"
        )
        line += "".join(f" {run.get(name) or 0:>9,}" for name in RUN_COUNTERS)
        lines.append(line + (f"  {run['error']}" if run.get("error") else ""))
    return lines


_WORST = ("failed", "interrupted", "running", "partial", "ok")


def merged_run(run: dict[str, Any]) -> dict[str, Any]:
    """A pull and the pushes after it as one run: counts added, the worst status, the time from
    the pull's start to the last push's end, and every error."""
    pushes = [p for p in run.get("pushes") or () if not _empty(p)]
    if not pushes:
        return run
    merged = dict(run)
    merged["kind"] = f"{run['kind']}+{len(pushes)}"
    for name in RUN_COUNTERS:
        merged[name] = (run.get(name) or 0) + sum(p.get(name) or 0 for p in pushes)
    statuses = [run["status"], *(p["status"] for p in pushes)]
    merged["status"] = min(statuses, key=lambda s: _WORST.index(s) if s in _WORST else len(_WORST))
    ends = [r.get("finished_at") for r in (run, *pushes)]
    merged["finished_at"] = None if None in ends else max(e for e in ends if e is not None)
    errors = [r["error"] for r in (run, *pushes) if r.get("error")]
    merged["error"] = "; ".join(dict.fromkeys(errors)) or None
    return merged


def _empty(run: dict[str, Any]) -> bool:
    """A push that found nothing to send (another worker had claimed the rows)."""
    return run["status"] == "ok" and not any(run.get(name) for name in RUN_COUNTERS)


def errors_lines(
    summary: list[dict[str, Any]], rows: list[dict[str, Any]], limit: int
) -> list[str]:
    """`dialsync errors`: the counts by reason, errors apart from expected skips, then rows."""
    from dialsync.store.views import ERROR_STATUSES

    errors = [s for s in summary if s["status"] in ERROR_STATUSES]
    skips = [s for s in summary if s["status"] not in ERROR_STATUSES]
    lines = []
    total = sum(s["count"] for s in errors)
    lines.append(f"errors: {total:,}" + ("" if total else " (nothing rejected or retrying)"))
    lines += [f"  {s['status']:<9} {s['reason_code'] or '-':<40} {s['count']:>9,}" for s in errors]
    total = sum(s["count"] for s in skips)
    lines.append(f"expected skips (the contact must not be called): {total:,}")
    lines += [f"  {s['status']:<9} {s['reason_code'] or '-':<40} {s['count']:>9,}" for s in skips]
    if not rows:
        return lines
    everything = sum(s["count"] for s in summary)
    lines.append("")
    lines.append(
        f"records ({len(rows):,} of {everything:,}; errors first, newest first"
        + (f"; --limit {limit} to see more)" if len(rows) < everything else ")")
    )
    for r in rows:
        where = r["destination"] if r["destination"] != "talkdesk" else f"talkdesk:{r['list_id']}"
        line = f"  {r['status']:<9} {where} {r['external_id']} {r['reason_code'] or '-'}"
        if r.get("reason_message"):
            line += f": {r['reason_message']}"
        if r["status"] != "skipped":
            line += f" (attempts {r.get('attempts') or 0}"
            at = r.get("next_attempt_at")
            if r["status"] in ("retrying", "blocked"):
                line += f", next attempt {at.strftime('%Y-%m-%d %H:%M:%S') if at else 'now'} UTC"
            line += ")"
        if r.get("must_remove"):  # a contact that must not be called is still in the list
            line += " STILL IN THE LIST, must be removed"
        lines.append(line)
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
