"""Every class of the exception tree, raised by a real HTTP exchange with the sandbox (faults
injected where the sandbox would not fail by itself), with its attributes checked."""

from __future__ import annotations

import time

import pytest
from conftest import FAST, dead_port

import rewardkit
from rewardkit import errors

ROWS = [{"panel_member_id": 12345678, "points": 100, "comments": "Thanks"}]


def test_the_tree_is_the_one_of_the_design() -> None:
    parent = {
        "ValidationError": "RewardkitError",
        "APIError": "RewardkitError",
        "BadRequestError": "APIError",
        "AuthenticationError": "APIError",
        "PermissionDeniedError": "APIError",
        "NotFoundError": "APIError",
        "RateLimitError": "APIError",
        "InternalServerError": "APIError",
        "APIConnectionError": "RewardkitError",
        "APITimeoutError": "APIConnectionError",
        "OutcomeUnknownError": "RewardkitError",
    }
    for name, base in parent.items():
        cls = getattr(rewardkit, name)
        assert cls is getattr(errors, name)
        assert cls.__bases__[0] is getattr(rewardkit, base), name
    assert issubclass(rewardkit.RewardkitError, Exception)
    assert issubclass(rewardkit.ValidationError, ValueError)
    assert rewardkit.FieldError is errors.FieldError


def test_validation_error_lists_every_bad_row_and_sends_nothing(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    with pytest.raises(rewardkit.ValidationError) as info:
        qp.award_points([{"panel_member_id": 1, "points": 0}, {"panelMemberID": "x", "points": 1}, (3, 5)])
    e = info.value
    assert isinstance(e, ValueError)
    assert [(f.row, f.key, f.code) for f in e.errors] == [
        (0, "points", "wrong_value"),
        (1, "panelMemberID", "wrong_type"),
    ]
    assert all(isinstance(f, rewardkit.FieldError) for f in e.errors)
    assert "2 validation errors" in str(e)
    assert sb.request_count("questionpro_points") == 0


def test_bad_request_error(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    body = (
        '{"response": {"error": {"id": 1002, "name": "BAD_REQUEST", "message": "Invalid schema in the body",'
        ' "docs": "https://example.test/errors"}}, "requestID": "req-400"}'
    )
    sb.inject("questionpro_points", status=400, body=body)
    with pytest.raises(rewardkit.BadRequestError) as info:
        qp.award_points(ROWS)
    e = info.value
    assert type(e) is rewardkit.BadRequestError
    assert (e.status_code, e.request_id, e.error_id) == (400, "req-400", "1002")
    assert (e.name, e.docs, e.message) == (
        "BAD_REQUEST",
        "https://example.test/errors",
        "Invalid schema in the body",
    )
    assert e.errors == [] and e.body == body and e.retry_after is None and e.vendor == "questionpro"
    assert "400" in str(e) and "req-400" in str(e)
    assert sb.ledger() == {}


def test_authentication_error_from_a_wrong_key(sb: rewardkit.Sandbox) -> None:
    qp = rewardkit.QuestionPro(api_key="not-the-key", base_url=sb.url, rate_limit=None, max_retries=0)
    with pytest.raises(rewardkit.AuthenticationError) as info:
        qp.award_points(ROWS)
    e = info.value
    assert (e.status_code, e.error_id, e.message, e.name) == (
        401,
        "1010",
        "Incorrect API Key",
        "UNAUTHORIZED",
    )
    assert e.body

    sp = rewardkit.Splio(api_key="not-the-key", base_url=sb.url, rate_limit=None, max_retries=0)
    with pytest.raises(rewardkit.AuthenticationError) as info:
        sp.get_reward("anything")
    e = info.value
    assert e.status_code == 400  # Splio refuses a key with 400; it is still an authentication error
    assert [(f.key, f.code) for f in e.errors] == [("api_key", "wrong_value")]
    assert e.vendor == "splio"


def test_permission_denied_error(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    sb.inject("questionpro_points", status=403)
    with pytest.raises(rewardkit.PermissionDeniedError) as info:
        qp.award_points(ROWS)
    assert (info.value.status_code, info.value.error_id) == (403, "1011")
    assert info.value.message == "Permission has not been granted"


def test_not_found_error_from_a_missing_reward(sp: rewardkit.Splio, sb: rewardkit.Sandbox) -> None:
    with pytest.raises(rewardkit.NotFoundError) as info:
        sp.get_reward("no-such-reward")
    e = info.value
    assert e.status_code == 404 and e.message == "no-such-reward not found" and e.errors == []
    assert sb.request_count("splio_get_reward") == 1


def test_rate_limit_error_with_retry_after(sb: rewardkit.Sandbox) -> None:
    qp = sb.questionpro(max_retries=0)
    sb.inject("questionpro_points", status=429, retry_after=7)
    with pytest.raises(rewardkit.RateLimitError) as info:
        qp.award_points(ROWS)
    e = info.value
    assert e.status_code == 429 and e.retry_after == 7.0 and isinstance(e.retry_after, float)


def test_rate_limit_error_after_retries_with_splio_reset_header(sb: rewardkit.Sandbox) -> None:
    sp = sb.splio(max_retries=1, backoff=0.01, max_backoff=0.05)
    sb.inject("splio_create_reward", status=429, headers={"rateLimit-reset": "0"}, times=2)
    with pytest.raises(rewardkit.RateLimitError) as info:
        sp.create_reward(external_id="r", name="R", holding_days=0, nqp_value=1, auto_generated=True)
    assert info.value.retry_after == 0.0
    assert sb.request_count("splio_create_reward") == 2  # a 429 was refused before processing: retried once


def test_internal_server_error_is_not_retried_for_points(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    sb.inject("questionpro_points", status=500)
    with pytest.raises(rewardkit.InternalServerError) as info:
        qp.award_points(ROWS)
    e = info.value
    assert (e.status_code, e.error_id, e.message) == (500, "1026", "We are not able to process your request")
    assert sb.request_count("questionpro_points") == 1


def test_api_error_for_an_unexpected_status(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    sb.inject("questionpro_points", status=302, body="moved")
    with pytest.raises(rewardkit.APIError) as info:
        qp.award_points(ROWS)
    e = info.value
    assert type(e) is rewardkit.APIError
    assert e.status_code == 302 and e.body == "moved"


def test_api_connection_error_when_nothing_listens() -> None:
    qp = rewardkit.QuestionPro(
        api_key="k", base_url=f"http://127.0.0.1:{dead_port()}", rate_limit=None, max_retries=0
    )
    with pytest.raises(rewardkit.APIConnectionError) as info:
        qp.award_points(ROWS)
    assert type(info.value) is rewardkit.APIConnectionError
    assert "could not connect" in str(info.value)


def test_api_timeout_error_on_a_safe_read(sb: rewardkit.Sandbox) -> None:
    sp = sb.splio(timeout=0.3, max_retries=0)
    sp.create_reward(external_id="slow", name="Slow", holding_days=0, nqp_value=1, auto_generated=True)
    sb.inject("splio_get_reward", delay=3.0)
    with pytest.raises(rewardkit.APITimeoutError) as info:
        sp.get_reward("slow")
    assert isinstance(info.value, rewardkit.APIConnectionError)


@pytest.mark.parametrize(
    ("fault", "cause", "status"),
    [
        ({"status": 502, "body": "<html>Bad Gateway</html>"}, "gateway", 502),
        ({"action": "drop_connection"}, "connection_lost", None),
        ({"action": "unreadable_body"}, "unreadable_body", 200),
    ],
)
def test_outcome_unknown_error(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox, fault: dict[str, object], cause: str, status: int | None
) -> None:
    sb.inject("questionpro_points", **fault)  # type: ignore[arg-type]
    with pytest.raises(rewardkit.OutcomeUnknownError) as info:
        qp.award_points(ROWS)
    e = info.value
    assert (e.cause, e.status_code) == (cause, status)
    assert sb.request_count("questionpro_points") == 1  # never re-sent
    if cause == "gateway":
        assert e.body == "<html>Bad Gateway</html>"


def test_outcome_unknown_error_on_a_read_timeout(sb: rewardkit.Sandbox) -> None:
    qp = sb.questionpro(timeout=0.3, max_retries=3)
    sb.inject("questionpro_points", delay=2.0)
    with pytest.raises(rewardkit.OutcomeUnknownError) as info:
        qp.award_points([(42, 1)])
    assert info.value.cause == "timeout" and info.value.status_code is None
    assert sb.request_count("questionpro_points") == 1
    # It was in fact applied (which is why it is not re-sent): the sandbox credits it late.
    deadline = time.monotonic() + 10
    while sb.ledger() != {42: 1} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sb.ledger() == {42: 1}


def test_rewardkit_error_for_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUESTIONPRO_API_KEY", raising=False)
    monkeypatch.delenv("SPLIO_API_KEY", raising=False)
    for make in (
        lambda: rewardkit.QuestionPro(),
        lambda: rewardkit.Splio(),
        lambda: rewardkit.QuestionPro(api_key="k", datacenter="uk"),
        lambda: rewardkit.QuestionPro(api_key="k", base_url="http://api.example.test"),
        lambda: rewardkit.AsyncSplio(api_key="k", base_url="not a url"),
    ):
        with pytest.raises(rewardkit.RewardkitError) as info:
            make()
        assert type(info.value) is rewardkit.RewardkitError
    with pytest.raises(rewardkit.RewardkitError, match="QUESTIONPRO_API_KEY"):
        rewardkit.QuestionPro()


def test_keys_come_from_the_environment(sb: rewardkit.Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUESTIONPRO_API_KEY", sb.questionpro_api_key)
    monkeypatch.setenv("SPLIO_API_KEY", sb.splio_api_key)
    qp = rewardkit.QuestionPro(base_url=sb.url, rate_limit=None)
    assert qp.award_points([(7, 3)]).success_count == 1
    sp = rewardkit.Splio(base_url=sb.url, rate_limit=None)
    assert sp.create_reward(external_id="env", name="Env", holding_days=0, nqp_value=1, auto_generated=True)
    assert sb.ledger() == {7: 3}


def test_fast_options_are_accepted() -> None:
    assert (
        rewardkit.QuestionPro(api_key="k", datacenter="eu", **FAST).base_url == "https://api.questionpro.eu/"
    )
