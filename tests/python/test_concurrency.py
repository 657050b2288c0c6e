"""Sync calls inside a running loop, the GIL released while waiting, threads sharing a client,
async clients on the caller's loop, and Ctrl-C interrupting a blocked call."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import pytest

import rewardkit


def test_a_sync_call_works_inside_a_running_event_loop(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    async def notebook_cell() -> rewardkit.AwardResult:
        # As in Jupyter: a loop is running, and the user calls the sync client.
        assert asyncio.get_running_loop().is_running()
        return qp.award_points([{"panel_member_id": 11, "points": 5}])

    result = asyncio.run(notebook_cell())
    assert result.success_count == 1
    assert sb.ledger() == {11: 5}


def test_two_threads_waiting_on_a_slow_route_overlap(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    """The GIL is released while a call waits: two threads, each waiting about 1 s on the
    sandbox, finish in about the time of one (the one timing check of the suite)."""
    sb.inject("questionpro_points", delay=1.0, times=2)
    results: dict[int, rewardkit.AwardResult] = {}

    def award(member: int) -> None:
        results[member] = qp.award_points([(member, 10)])  # one client shared by both threads

    threads = [threading.Thread(target=award, args=(m,)) for m in (101, 102)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert {m: r.success_count for m, r in results.items()} == {101: 1, 102: 1}
    assert elapsed < 1.8, f"two 1 s waits took {elapsed:.2f} s: the GIL was not released"
    assert sb.ledger() == {101: 10, 102: 10}


def test_threads_share_one_client(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    errors: list[BaseException] = []

    def work(base: int) -> None:
        try:
            for i in range(5):
                qp.award_points([(base + i, 1)])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(1000 * (n + 1),)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(sb.ledger()) == 40 and sum(sb.ledger().values()) == 40


def test_async_client_runs_on_the_callers_loop(sb: rewardkit.Sandbox) -> None:
    aqp = sb.async_questionpro()

    async def main() -> list[rewardkit.AwardResult]:
        loop = asyncio.get_running_loop()
        pending = [aqp.award_points([{"panelMemberID": 200 + i, "points": i + 1}]) for i in range(5)]
        for p in pending:
            assert isinstance(p, asyncio.Future) and p.get_loop() is loop
        return list(await asyncio.gather(*pending))

    results = asyncio.run(main())
    assert [r.success_count for r in results] == [1] * 5
    assert sb.ledger() == {200 + i: i + 1 for i in range(5)}


def test_async_errors_are_raised_when_awaited(sb: rewardkit.Sandbox) -> None:
    aqp = sb.async_questionpro(max_retries=0)
    asp = sb.async_splio(max_retries=0)

    async def main() -> None:
        bad = aqp.award_points([{"panel_member_id": 0, "points": 1}])  # no exception yet
        with pytest.raises(rewardkit.ValidationError):
            await bad
        wrong = asp.create_reward(not_a_field=1)
        with pytest.raises(TypeError, match="not_a_field"):
            await wrong
        sb.inject("questionpro_points", status=500)
        with pytest.raises(rewardkit.InternalServerError):
            await aqp.award_points([(1, 1)])
        created = await asp.create_reward(
            external_id="async-1", name="Async", holding_days=0, nqp_value=5, auto_generated=True
        )
        assert created.external_id == "async-1"
        assert (await asp.get_reward("async-1")).name == "Async"
        with pytest.raises(rewardkit.NotFoundError):
            await asp.get_reward("missing")

    asyncio.run(main())
    assert sb.request_count("questionpro_points") == 1


def test_async_calls_can_be_cancelled(sb: rewardkit.Sandbox) -> None:
    asp = sb.async_splio()
    sb.inject("splio_get_reward", delay=2.0)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asp.get_reward("missing"), 0.2)

    asyncio.run(main())


class Interrupted(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_interrupts_a_blocked_call(sp: rewardkit.Splio, sb: rewardkit.Sandbox) -> None:
    sp.create_reward(external_id="slow", name="Slow", holding_days=0, nqp_value=1, auto_generated=True)
    sb.inject("splio_get_reward", delay=5.0)

    def on_sigint(signum: int, frame: Any) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGINT, on_sigint)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            sp.get_reward("slow")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    # The client is still usable afterwards.
    sb.clear_faults()
    assert sp.get_reward("slow").external_id == "slow"
