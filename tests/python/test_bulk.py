"""``bulk_award`` against the sandbox: every input shape, both validation modes, faults mid-job,
fatal errors, the journal, Ctrl-C, async, progress. Every job is checked against the sandbox's
ledger: every row has exactly one outcome, awarded rows are credited exactly once, unknown rows
at most once, and every other row never."""

from __future__ import annotations

import _thread
import asyncio
import collections
import importlib.util
import logging
import pathlib
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from conftest import FAST

import rewardkit

POINTS = "questionpro_points"


def make_rows(n: int, base: int = 1_000_000) -> list[dict[str, Any]]:
    return [{"panel_member_id": base + i, "points": 1 + i % 7, "comments": f"row {i}"} for i in range(n)]


def member(row: Any) -> int:
    if isinstance(row, tuple):
        return int(row[0])
    for key in ("panel_member_id", "panelMemberID", "panelMemberId"):
        if key in row:
            return int(row[key])
    raise AssertionError(row)


def check_exactly_once(
    report: rewardkit.BulkReport, rows: Sequence[Any], sb: rewardkit.Sandbox, *, so_far: bool = False
) -> None:
    """design.md point 1, against what the sandbox credited. `so_far`: the job was stopped, and
    the report covers the rows it got to (the rest were never sent)."""
    records = report.records()
    if so_far:
        credited_ids = {a["panel_member_id"] for a in sb.awards()}
        assert not credited_ids & {member(r) for r in rows[report.rows_read :]}, "rows past the stop not sent"
        rows = rows[: report.rows_read]
    assert [r["row"] for r in records] == list(range(len(rows))), "every row has one outcome, in order"
    credited = collections.Counter(a["panel_member_id"] for a in sb.awards())
    for r in records:
        n = credited[member(rows[r["row"]])]
        if r["outcome"] == "awarded":
            assert n == 1, f"row {r['row']} awarded but credited {n} times"
        elif r["outcome"] == "unknown":
            assert n <= 1, f"row {r['row']} unknown but credited {n} times"
        else:
            assert n == 0, f"row {r['row']} is {r['outcome']} but was credited"
    t = report.totals
    assert t.rows == len(rows) == report.rows_read == len(report)
    assert t.awarded + t.skipped + t.invalid + t.rejected + t.failed + t.unknown == len(rows), t
    assert collections.Counter(r["outcome"] for r in records) == {
        k: v for k, v in t.to_dict().items() if k not in ("rows", "points_awarded") and v
    }


def test_a_clean_job_awards_every_row_once(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    rows = make_rows(2_000)
    report = qp.bulk_award(rows, batch_size=100, concurrency=4)
    assert isinstance(report, rewardkit.BulkReport)
    assert report.totals.awarded == 2_000
    assert report.totals.points_awarded == sum(r["points"] for r in rows)
    assert report.requests == 20 == sb.request_count(POINTS)
    assert report.is_complete and report.stopped_by is None and report.unknown_chunks == []
    assert [c.chunk for c in report.chunks] == list(range(20))
    assert all(c.request_id and c.outcome == "awarded" and c.rows == 100 for c in report.chunks)
    assert report.exceptions == [] and report.resumed_chunks == 0
    check_exactly_once(report, rows, sb)
    assert sb.ledger()[1_000_006] == 7
    assert repr(report).startswith("BulkReport(rows=2000, awarded=2000, ")
    d = report.to_dict()
    assert d["totals"]["awarded"] == 2_000 and len(d["chunks"]) == 20 and d["is_complete"] is True
    assert isinstance(report.totals, rewardkit.Totals) and "awarded=2000" in repr(report.totals)


def test_tuples_wire_names_and_skipped_members(sb: rewardkit.Sandbox) -> None:
    with rewardkit.Sandbox(members=range(1, 1_000)) as small:
        qp = small.questionpro(**FAST)
        rows: list[Any] = [
            (1, 10),
            (2, 20, "hi"),
            {"panelMemberID": 5_000, "points": 5},
            {"panelMemberId": 3, "points": 1},
        ]
        report = qp.bulk_award(rows, batch_size=2)
        assert report.totals.awarded == 3 and report.totals.skipped == 1
        [skipped] = report.exceptions
        assert isinstance(skipped, rewardkit.RowOutcome)
        assert (skipped.row, skipped.outcome, skipped.panel_member_id) == (2, "skipped", 5_000)
        assert skipped.request_id
        check_exactly_once(report, rows, small)


@pytest.mark.parametrize("on_invalid", ["stop", "send_valid"])
def test_a_generator_is_streamed(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, on_invalid: str) -> None:
    rows = make_rows(1_500)
    seen: list[int | None] = []
    pulled = 0

    def gen() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for r in rows:
            pulled += 1
            yield r

    report = qp.bulk_award(
        gen(),
        batch_size=100,
        on_invalid=on_invalid,
        progress=lambda p: seen.append(p.rows_total),  # type: ignore[arg-type]
    )
    assert pulled == 1_500, "a generator is read once"
    assert report.totals.awarded == 1_500 and report.requests == 15
    check_exactly_once(report, rows, sb)
    if on_invalid == "stop":
        assert seen[0] == 1_500, "after the validation pass the total is known"
    else:
        assert seen[0] is None


def test_a_pandas_dataframe_is_read_by_column(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    pd = pytest.importorskip("pandas")
    n = 3_000
    df = pd.DataFrame(
        {
            "panelMemberID": range(2_000_000, 2_000_000 + n),
            "points": [1 + i % 5 for i in range(n)],
            "comments": [None if i % 3 else f"c{i}" for i in range(n)],
            "other": ["ignored"] * n,
        }
    )
    report = qp.bulk_award(df, batch_size=500, concurrency=3)
    rows = df.to_dict("records")
    assert report.totals.awarded == n and report.requests == 6
    check_exactly_once(report, rows, sb)
    awards = {a["panel_member_id"]: a for a in sb.awards()}
    assert awards[2_000_000]["comments"] == "c0" and awards[2_000_001]["comments"] is None
    frame = report.to_pandas()
    assert list(frame.columns) == ["row", "outcome", "request_id", "message"]
    assert len(frame) == n and set(frame["outcome"]) == {"awarded"}


def test_a_dataframe_with_bad_cells_or_no_id_column(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"panel_member_id": [1, 2, 3], "points": [10, 0, 5]})
    with pytest.raises(rewardkit.ValidationError) as exc:
        qp.bulk_award(df)
    assert [(e.row, e.key) for e in exc.value.errors] == [(1, "points")]
    with pytest.raises(rewardkit.ValidationError, match="no panel_member_id"):
        qp.bulk_award(pd.DataFrame({"id": [1], "points": [1]}))
    assert sb.request_count(POINTS) == 0


def test_dataframe_integer_columns_of_every_kind(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    """Machine-integer columns are read as raw int64 blocks; anything else value by value,
    with the same answers."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    n = 2_500
    ids = np.arange(3_000_000, 3_000_000 + n)
    for id_col, points_col in [
        (ids.astype("int32"), np.full(n, 7, dtype="int16")),
        (ids.astype("uint32"), np.full(n, -2, dtype="int8")),
        (ids.astype(">i8"), np.full(n, 3, dtype="uint8")),
        (ids.astype("uint64"), pd.array([4] * n, dtype="Int64")),
        (ids.astype("float64"), np.full(n, 5, dtype="int64")),
    ]:
        sb.reset()
        df = pd.DataFrame({"panel_member_id": id_col, "points": points_col})
        if id_col.dtype.kind == "f":  # floats are never ids, even whole ones
            with pytest.raises(rewardkit.ValidationError) as exc:
                qp.bulk_award(df)
            assert {(e.key, e.code) for e in exc.value.errors} == {("panelMemberID", "wrong_type")}
            continue
        report = qp.bulk_award(df, batch_size=1_000)
        assert report.totals.awarded == n, (id_col.dtype, report)
        expected = {int(i): int(p) for i, p in zip(ids, points_col)}
        assert sb.ledger() == expected, id_col.dtype

    sb.reset()
    missing = pd.DataFrame({"panel_member_id": pd.array([1, None, 3], dtype="Int64"), "points": [1, 2, 3]})
    with pytest.raises(rewardkit.ValidationError) as exc:
        qp.bulk_award(missing)
    assert [(e.row, e.key, e.code) for e in exc.value.errors] == [(1, "panelMemberID", "is_missing")]
    assert sb.request_count(POINTS) == 0


@pytest.mark.skipif(importlib.util.find_spec("polars") is None, reason="polars is not installed")
def test_a_polars_dataframe(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    import polars as pl

    rows = make_rows(1_200)
    df = pl.DataFrame(rows)
    report = qp.bulk_award(df, batch_size=500)
    assert report.totals.awarded == 1_200
    check_exactly_once(report, rows, sb)


def bad_rows() -> list[Any]:
    rows: list[Any] = make_rows(300)
    rows[10] = {"panel_member_id": 1_000_010, "points": 0}
    rows[20] = {"panel_member_id": "x", "points": 5}
    rows[30] = {"panel_member_id": 1_000_001, "points": 5}  # a duplicate of row 1
    rows[40] = "not a row"
    return rows


@pytest.mark.parametrize("as_generator", [False, True])
def test_invalid_rows_stop_the_job_before_anything_is_sent(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, as_generator: bool
) -> None:
    rows = bad_rows()
    with pytest.raises(rewardkit.ValidationError) as exc:
        qp.bulk_award(iter(rows) if as_generator else rows, batch_size=50)
    assert sb.request_count(POINTS) == 0 and sb.awards() == []
    err = exc.value
    assert isinstance(err, ValueError)
    assert sorted({e.row for e in err.errors}) == [10, 20, 30, 40]
    assert {(e.row, e.code) for e in err.errors} >= {(30, "duplicate"), (40, "wrong_type")}
    report: rewardkit.BulkReport = err.report  # type: ignore[attr-defined]
    assert report.totals.invalid == 4 and report.requests == 0 and report.chunks == []
    assert [e.row for e in report.exceptions] == [10, 20, 30, 40]
    assert all(e.outcome == "invalid" and e.errors for e in report.exceptions)


def test_send_valid_sends_the_good_rows(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    rows = bad_rows()
    report = qp.bulk_award(rows, batch_size=50, on_invalid="send_valid")
    assert report.totals.invalid == 4 and report.totals.awarded == 296 and not report.is_complete
    assert [e.row for e in report.exceptions] == [10, 20, 30, 40]
    invalid = [r for r in report.records() if r["outcome"] == "invalid"]
    assert [r["row"] for r in invalid] == [10, 20, 30, 40]
    ids = [r if i not in (10, 20, 30, 40) else {"panel_member_id": -i} for i, r in enumerate(rows)]
    check_exactly_once(report, ids, sb)


def inject_after(sb: rewardkit.Sandbox, after: int, faults: list[dict[str, Any]]) -> Any:
    """A progress callback that queues `faults` once `after` chunks are recorded."""
    done = False

    def on_progress(p: rewardkit.Progress) -> None:
        nonlocal done
        if not done and p.chunk is not None and p.chunk.chunk + 1 >= after:
            done = True
            for f in faults:
                sb.inject(POINTS, **f)

    return on_progress


def test_faults_mid_job_give_each_row_one_honest_outcome(sb: rewardkit.Sandbox) -> None:
    qp = sb.questionpro(**{**FAST, "timeout": 1.0, "max_retries": 6})
    rows = make_rows(3_000)
    faults = [
        {"status": 429, "retry_after": 0, "times": 3},
        {"status": 503, "times": 2},
        {"status": 500},
        {"action": "drop_connection", "process": True},
        {"delay": 1.5},
        {"status": 502, "process": True},
    ]
    report = qp.bulk_award(rows, batch_size=100, concurrency=4, progress=inject_after(sb, 3, faults))
    t = report.totals
    assert t.failed == 100, t  # the 500
    assert t.unknown == 300, t  # dropped after processing, read timeout, 502
    assert t.awarded == 2_600 and report.stopped_by is None
    assert len(report.unknown_chunks) == 3
    assert all(c.message for c in report.unknown_chunks)
    check_exactly_once(report, rows, sb)


def test_a_fatal_error_raises_with_the_partial_report(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    rows = make_rows(1_000)
    with pytest.raises(rewardkit.AuthenticationError) as exc:
        qp.bulk_award(rows, batch_size=100, concurrency=1, progress=inject_after(sb, 5, [{"status": 401}]))
    err = exc.value
    assert err.status_code == 401
    report: rewardkit.BulkReport = err.report  # type: ignore[attr-defined]
    assert report.stopped_by is not None and report.stopped_by["class"] == "AuthenticationError"
    assert report.totals.awarded == 500 and report.totals.rejected == 100 and report.totals.failed == 400
    check_exactly_once(report, rows, sb)
    # The report stays on the exception; pickling leaves it out.
    again = pickle.loads(pickle.dumps(err))
    assert again.status_code == 401 and not hasattr(again, "report")


def test_a_journal_resends_only_what_is_missing(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, tmp_path: pathlib.Path
) -> None:
    rows = make_rows(1_000)
    journal = tmp_path / "job.db"
    faults = [{"status": 500}, {"action": "drop_connection", "process": True}]
    first = qp.bulk_award(
        rows, batch_size=100, concurrency=1, journal=journal, progress=inject_after(sb, 2, faults)
    )
    assert (first.totals.failed, first.totals.unknown, first.totals.awarded) == (100, 100, 800)
    check_exactly_once(first, rows, sb)
    sent = sb.request_count(POINTS)

    second = qp.bulk_award(rows, batch_size=100, concurrency=1, journal=str(journal))
    assert sb.request_count(POINTS) - sent == 1 == second.requests, "only the failed chunk is sent again"
    assert second.resumed_chunks == 9
    assert (second.totals.awarded, second.totals.unknown) == (900, 100)
    [unknown] = second.unknown_chunks
    assert unknown.from_journal and unknown.chunk == first.unknown_chunks[0].chunk
    check_exactly_once(second, rows, sb)

    with pytest.raises(rewardkit.RewardkitError, match="different input") as exc:
        qp.bulk_award(make_rows(1_000, base=5_000_000), batch_size=100, journal=journal)
    assert isinstance(exc.value.report, rewardkit.BulkReport)  # type: ignore[attr-defined]
    assert sb.request_count(POINTS) - sent == 1


def test_ctrl_c_stops_the_job_cleanly(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, tmp_path: pathlib.Path
) -> None:
    rows = make_rows(2_000)
    journal = tmp_path / "job.db"
    sb.inject(POINTS, delay=0.2, times=100)  # slow enough for the signal check to see it mid-job
    interrupted = False

    def on_progress(p: rewardkit.Progress) -> None:
        nonlocal interrupted
        if not interrupted and p.chunk is not None:
            interrupted = True
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt) as exc:
        qp.bulk_award(rows, batch_size=100, concurrency=2, journal=journal, progress=on_progress)
    report: rewardkit.BulkReport = exc.value.report  # type: ignore[attr-defined]
    assert report.stopped_by is not None and report.stopped_by["class"] == "Interrupted"
    assert 0 < report.totals.awarded < 2_000 and report.totals.unknown == 0
    assert report.totals.awarded == report.rows_read, "chunks in flight finished and were recorded"
    check_exactly_once(report, rows, sb, so_far=True)
    sb.clear_faults()
    rest = qp.bulk_award(rows, batch_size=100, concurrency=2, journal=journal)
    assert rest.is_complete and rest.resumed_chunks == report.totals.awarded // 100
    check_exactly_once(rest, rows, sb)


def test_async_bulk_award_on_the_callers_loop(sb: rewardkit.Sandbox) -> None:
    aqp = sb.async_questionpro(**FAST)
    rows = make_rows(1_000)
    calls: list[rewardkit.Progress] = []

    async def main() -> rewardkit.BulkReport:
        loop = asyncio.get_running_loop()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = loop.create_task(ticker())
        report = await aqp.bulk_award(rows, batch_size=100, progress=calls.append)
        t.cancel()
        assert ticks > 0, "the loop ran while the job did"
        with pytest.raises(rewardkit.ValidationError) as exc:
            await aqp.bulk_award(bad_rows())
        assert isinstance(exc.value.report, rewardkit.BulkReport)  # type: ignore[attr-defined]
        return report

    report = asyncio.run(main())
    assert report.totals.awarded == 1_000 and calls and calls[-1].rows_done == 1_000
    check_exactly_once(report, rows, sb)


def test_cancelling_the_async_task_stops_the_job_cleanly(sb: rewardkit.Sandbox, tmp_path: pathlib.Path) -> None:
    """task.cancel() is the async Ctrl-C: requests in flight finish and are journaled, then
    CancelledError is raised with the report; a resume sends exactly the rest."""
    aqp = sb.async_questionpro(**FAST)
    rows = make_rows(2_000)
    journal = tmp_path / "job.db"
    sb.inject(POINTS, delay=0.2, times=100)  # slow: the cancel lands with requests in flight

    async def main() -> BaseException:
        first_chunk = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_progress(p: rewardkit.Progress) -> None:
            if p.chunk is not None:
                loop.call_soon_threadsafe(first_chunk.set)

        task = asyncio.ensure_future(
            aqp.bulk_award(rows, batch_size=100, concurrency=2, journal=journal, progress=on_progress)
        )
        await first_chunk.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as exc:
            await task
        return exc.value

    cancelled = asyncio.run(main())
    report: rewardkit.BulkReport = cancelled.report  # type: ignore[attr-defined]
    assert report.stopped_by is not None and report.stopped_by["class"] == "Interrupted"
    assert 0 < report.totals.awarded < 2_000 and report.totals.unknown == 0
    assert report.totals.awarded == report.rows_read, "chunks in flight finished and were recorded"
    check_exactly_once(report, rows, sb, so_far=True)
    sb.clear_faults()

    async def resume() -> rewardkit.BulkReport:
        return await aqp.bulk_award(rows, batch_size=100, concurrency=2, journal=journal)

    rest = asyncio.run(resume())
    assert rest.is_complete and rest.resumed_chunks == report.totals.awarded // 100
    check_exactly_once(rest, rows, sb)


def test_cancelling_the_async_task_twice_abandons_the_requests_in_flight(sb: rewardkit.Sandbox) -> None:
    aqp = sb.async_questionpro(**FAST)
    rows = make_rows(1_000)
    sb.inject(POINTS, delay=0.5, times=100)

    async def main() -> BaseException:
        task = asyncio.ensure_future(aqp.bulk_award(rows, batch_size=100, concurrency=2))
        while sb.request_count(POINTS) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as exc:
            await task
        return exc.value

    report: rewardkit.BulkReport = asyncio.run(main()).report  # type: ignore[attr-defined]
    assert report.stopped_by is not None and report.stopped_by["class"] == "Interrupted"
    assert report.totals.unknown == 200 and report.totals.awarded == 0, report
    check_exactly_once(report, rows, sb, so_far=True)


def test_an_async_job_starts_when_awaited(sb: rewardkit.Sandbox) -> None:
    aqp = sb.async_questionpro(**FAST)

    async def main() -> None:
        job = aqp.bulk_award(make_rows(10))
        await asyncio.sleep(0.2)
        assert sb.request_count(POINTS) == 0, "nothing is sent before the job is awaited"
        report = await job
        assert report.totals.awarded == 10

    asyncio.run(main())


def test_progress_reports_rows_rate_and_eta(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    calls: list[rewardkit.Progress] = []
    report = qp.bulk_award(make_rows(1_000), batch_size=100, progress=calls.append)
    assert report.is_complete
    assert len(calls) == 11 and calls[-1].chunk is None
    done = [p.rows_done for p in calls]
    assert done == sorted(done) and done[-1] == 1_000
    assert all(p.rows_total == 1_000 for p in calls)
    last = calls[-1]
    assert last.totals.awarded == 1_000 and last.requests == 10 and last.rate > 0 and last.elapsed > 0
    assert all(isinstance(p.chunk, rewardkit.ChunkReport) for p in calls[:-1])
    assert calls[0].eta is not None


def test_a_failing_progress_callback_is_logged_and_the_job_goes_on(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(p: rewardkit.Progress) -> None:
        raise RuntimeError("display broke")

    with caplog.at_level(logging.ERROR, logger="rewardkit"):
        report = qp.bulk_award(make_rows(300), batch_size=100, progress=broken)
    assert report.totals.awarded == 300
    assert any("progress callback raised" in r.getMessage() and r.exc_info for r in caplog.records)


def test_progress_true_draws_a_tqdm_bar(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")
    report = qp.bulk_award(make_rows(500), batch_size=100, progress=True)
    assert report.totals.awarded == 500
    err = capsys.readouterr().err
    assert "bulk_award" in err and "500/500" in err


def test_bad_arguments(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        qp.bulk_award([], concurrency=0)
    with pytest.raises(ValueError, match="batch_size"):
        qp.bulk_award([], batch_size=0)
    with pytest.raises(ValueError, match="on_invalid"):
        qp.bulk_award([], on_invalid="maybe")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a string"):
        qp.bulk_award("rows")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not one row"):
        qp.bulk_award({"panel_member_id": 1, "points": 1})
    with pytest.raises(TypeError, match="progress"):
        qp.bulk_award([], progress=3)  # type: ignore[arg-type]
    empty = qp.bulk_award([])
    assert empty.totals.rows == 0 and empty.is_complete and empty.records() == []


def test_an_error_raised_by_the_input_is_raised_with_the_report(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    def gen() -> Iterator[dict[str, Any]]:
        yield from make_rows(10)
        raise OSError("the file went away")

    with pytest.raises(OSError, match="went away") as exc:
        qp.bulk_award(gen(), on_invalid="send_valid", batch_size=5)
    assert isinstance(exc.value.report, rewardkit.BulkReport)  # type: ignore[attr-defined]
