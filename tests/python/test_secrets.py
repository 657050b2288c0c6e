"""A secret is never shown: not in a client's repr, an exception or a log line."""

from __future__ import annotations

import logging

import pytest

import rewardkit

SECRET = "sk-live-9f8e7d6c5b4a-secret"


def test_reprs_leave_the_key_out(sb: rewardkit.Sandbox) -> None:
    clients = [
        rewardkit.QuestionPro(api_key=SECRET, base_url=sb.url),
        rewardkit.AsyncQuestionPro(api_key=SECRET, base_url=sb.url),
        rewardkit.Splio(api_key=SECRET, base_url=sb.url),
        rewardkit.AsyncSplio(api_key=SECRET, base_url=sb.url),
    ]
    for c in clients:
        assert SECRET not in repr(c) and SECRET not in str(c)
        assert repr(c) == f"{type(c).__name__}(base_url={sb.url + '/'!r})"


def test_errors_and_logs_leave_the_key_out(sb: rewardkit.Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rewardkit")
    caught: list[BaseException] = []
    for call in (
        lambda: rewardkit.QuestionPro(api_key=SECRET, base_url=sb.url, max_retries=0).award_points([(1, 1)]),
        lambda: rewardkit.Splio(api_key=SECRET, base_url=sb.url, max_retries=0).get_reward("x"),
        lambda: rewardkit.QuestionPro(api_key=SECRET + "\x01", base_url=sb.url),
        lambda: rewardkit.QuestionPro(api_key=SECRET, base_url=f"http://user:{SECRET}@127.0.0.1:1"),
    ):
        with pytest.raises(rewardkit.RewardkitError) as info:
            call()
        caught.append(info.value)
    assert [type(e).__name__ for e in caught] == [
        "AuthenticationError",
        "AuthenticationError",
        "RewardkitError",
        "RewardkitError",
    ]
    for e in caught:
        assert SECRET not in str(e) and SECRET not in repr(e)
        assert all(SECRET not in str(v) for v in vars(e).values())
    assert caplog.records, "the requests were logged"
    assert SECRET not in caplog.text
    # What the sandbox recorded is redacted too.
    for route in ("questionpro_points", "splio_authenticate"):
        for req in sb.requests(route):
            assert SECRET not in str(req)
