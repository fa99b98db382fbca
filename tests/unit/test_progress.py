"""The CLI's progress bar: counts from the engine's observer hooks, a bar against the backlog."""

from __future__ import annotations

import io

from dialsync.destinations.base import ItemResult, Outcome
from dialsync.engine import RunReport
from dialsync.errors import TransientError
from dialsync.progress import ProgressBar, terminal_progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ok(n: int) -> list[ItemResult]:
    return [ItemResult(f"id{i}", Outcome.OK, f"r{i}") for i in range(n)]


def test_counts_and_bar_follow_the_hooks() -> None:
    stream, clock = io.StringIO(), Clock()
    backlog = {"due": 300}
    bar = ProgressBar(stream, lambda: backlog["due"], width=10, clock=clock)
    report = RunReport(None, "sync")
    bar.batch_pulled(report, 400)
    clock.now += 1
    backlog["due"] = 200
    bar.batch_sent("talkdesk:L", "create", ok(100))
    clock.now += 1
    backlog["due"] = 0
    bar.batch_sent(
        "talkdesk:L",
        "update",
        [
            ItemResult("a", Outcome.OK),
            ItemResult("b", Outcome.REJECTED, code="PHONE_NUMBER_INVALID"),
            ItemResult("c", Outcome.TRANSIENT),
        ],
    )
    bar.batch_failed("talkdesk:L", "delete", 5, TransientError("503"))
    bar.run_finished(report, 2.0, "ok")
    frames = stream.getvalue().split("\r")
    assert "[##########] 100%" in frames[-1]
    assert "read 400 · created 100 · updated 1 · deleted 0 · rejected 1 · retrying 6" in frames[-1]
    assert frames[-1].endswith("\n")
    # After the first 100 of 300 queued were sent, a third of the bar was full.
    assert any("[###.......]  33%" in frame for frame in frames)


def test_redraws_are_bounded_and_the_bar_clears_for_log_lines() -> None:
    stream, clock = io.StringIO(), Clock()
    reads = []

    def backlog() -> int:
        reads.append(clock.now)
        return 10

    bar = ProgressBar(stream, backlog, clock=clock, every=0.5)
    for _ in range(50):
        bar.batch_sent("talkdesk:L", "create", ok(1))
    assert len(reads) == 1  # one draw, one backlog read, however many batches came in
    length = len(stream.getvalue()) - 1
    bar.clear()
    assert stream.getvalue().endswith("\r" + " " * length + "\r")


def test_a_failing_backlog_read_never_reaches_the_engine() -> None:
    def broken() -> int:
        raise RuntimeError("database is locked")

    bar = ProgressBar(io.StringIO(), broken)
    bar.batch_pulled(RunReport(None, "sync"), 10)  # must not raise


def test_no_bar_unless_stderr_is_a_terminal() -> None:
    assert terminal_progress(lambda: 0, stream=io.StringIO()) is None


def test_with_a_total_the_bar_counts_contacts_handled_and_never_steps_back() -> None:
    stream, clock = io.StringIO(), Clock()
    backlog = {"due": 0}
    bar = ProgressBar(stream, lambda: backlog["due"], total=lambda _r: 1000, width=10, clock=clock)
    report = RunReport(1, "sync")
    bar.run_started(report)
    assert bar.total == 1000
    clock.now += 1
    backlog["due"] = 500  # 500 read, all queued: nothing handled yet
    bar.batch_pulled(report, 500)
    assert bar.share() == 0.0
    clock.now += 1
    backlog["due"] = 100
    bar.batch_sent("talkdesk:L", "create", ok(400))
    assert bar.share() == 0.4  # 400 of 1,000 handled
    backlog["due"] = 600  # another page queued: the share holds, it does not fall to 0.4-0.5
    bar.batch_pulled(report, 500)
    assert bar.share() == 0.4
    line = bar.line()
    assert "read 1,000 of 1,000" in line and "contacts/s" in line
    assert "ETA 0m03s" in line  # 40% in 2 s: 3 s to go at that pace
    bar.run_finished(report, 3.0, "ok")
    assert "[##########] 100%" in stream.getvalue().split("\r")[-1]


def test_a_failing_count_leaves_the_bar_without_a_total() -> None:
    def broken(_report: RunReport) -> int:
        raise TransientError("salesforce: 503")

    bar = ProgressBar(io.StringIO(), lambda: 0, total=broken)
    bar.run_started(RunReport(1, "sync"))  # must not raise
    assert bar.total is None
