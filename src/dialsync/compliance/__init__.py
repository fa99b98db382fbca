"""Compliance evidence read back: the opt-out report and its latencies (see README,
"Compliance"). The events themselves are written by dialsync.store.history."""

from __future__ import annotations

from dialsync.compliance.report import Entry, Leg, latency_summary, opt_outs

__all__ = ["Entry", "Leg", "latency_summary", "opt_outs"]
