"""The core's request log reaches Python's logging, logger "rewardkit"."""

from __future__ import annotations

import logging

import pytest

import rewardkit


def test_each_request_is_logged(qp: rewardkit.QuestionPro, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rewardkit")
    result = qp.award_points([(1, 1)])
    records = [r for r in caplog.records if r.name == "rewardkit"]
    assert len(records) == 1
    [r] = records
    assert r.levelno == logging.DEBUG
    msg = r.getMessage()
    for part in (
        "answer",
        "method=POST",
        "path=/a/api/v2/micropanel/members/points",
        "status=200",
        "attempt=1",
        f"request_id={result.request_id}",
        "elapsed_ms=",
    ):
        assert part in msg, msg


def test_retries_are_logged(sb: rewardkit.Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rewardkit")
    sb.inject("questionpro_points", status=503, retry_after=0)
    sb.questionpro(max_retries=1).award_points([(1, 1)])
    messages = [r.getMessage() for r in caplog.records if r.name == "rewardkit"]
    assert any("status=503" in m and "attempt=1" in m for m in messages), messages
    assert any(m.startswith("retrying") for m in messages), messages
    assert any("status=200" in m and "attempt=2" in m for m in messages), messages


def test_nothing_is_logged_above_debug(qp: rewardkit.QuestionPro, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rewardkit")
    qp.award_points([(1, 1)])
    assert [r for r in caplog.records if r.name == "rewardkit"] == []
