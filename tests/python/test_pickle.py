"""Every exception class pickles and unpickles with its attributes (and FieldError too)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import rewardkit

FE = rewardkit.FieldError("limited", "wrong_type", "This value should be of type bool.", None)


def instances() -> list[rewardkit.RewardkitError]:
    api: dict[str, Any] = {
        "message": "Incorrect API Key",
        "status_code": 401,
        "request_id": "req-1",
        "error_id": "1010",
        "name": "UNAUTHORIZED",
        "docs": "https://docs",
        "errors": [FE],
        "body": '{"x": 1}',
        "retry_after": 2.5,
        "vendor": "questionpro",
    }
    return [
        rewardkit.RewardkitError("configuration error: no key"),
        rewardkit.ValidationError(
            "1 validation error", [rewardkit.FieldError("points", "wrong_value", "zero", 4)]
        ),
        rewardkit.APIError("QuestionPro answered 302", **{**api, "status_code": 302}),
        rewardkit.BadRequestError("QuestionPro answered 400", **{**api, "status_code": 400}),
        rewardkit.AuthenticationError("QuestionPro answered 401", **api),
        rewardkit.PermissionDeniedError("QuestionPro answered 403", **{**api, "status_code": 403}),
        rewardkit.NotFoundError("Splio answered 404", **{**api, "status_code": 404, "vendor": "splio"}),
        rewardkit.RateLimitError(
            "QuestionPro answered 429", **{**api, "status_code": 429, "retry_after": 7.0}
        ),
        rewardkit.InternalServerError("QuestionPro answered 500", **{**api, "status_code": 500}),
        rewardkit.APIConnectionError("connection error: refused"),
        rewardkit.APITimeoutError("timed out: connect"),
        rewardkit.OutcomeUnknownError(
            "outcome unknown (gateway)", cause="gateway", status_code=502, request_id="r", body="<html/>"
        ),
    ]


def same(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b) and a.args == b.args
    assert a.__dict__ == b.__dict__


@pytest.mark.parametrize("exc", instances(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_exception_class_pickles(exc: rewardkit.RewardkitError, protocol: int) -> None:
    back = pickle.loads(pickle.dumps(exc, protocol=protocol))
    same(exc, back)
    same(exc, copy.deepcopy(exc))


def test_every_class_is_covered() -> None:
    names = {type(e).__name__ for e in instances()}
    assert names == {n for n in rewardkit.errors.__all__ if n != "FieldError"}


def test_exceptions_from_real_exchanges_pickle(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    sb.inject("questionpro_points", status=429, retry_after=3)
    caught: list[rewardkit.RewardkitError] = []
    for rows in ([(1, 0)], [(1, 1)]):
        try:
            sb.questionpro(max_retries=0).award_points(rows)
        except rewardkit.RewardkitError as e:
            caught.append(e)
    sb.inject("questionpro_points", status=502)
    try:
        qp.award_points([(2, 1)])
    except rewardkit.RewardkitError as e:
        caught.append(e)
    assert [type(e).__name__ for e in caught] == ["ValidationError", "RateLimitError", "OutcomeUnknownError"]
    for e in caught:
        back = pickle.loads(pickle.dumps(e))
        same(e, back)
    assert caught[1].retry_after == 3.0 and pickle.loads(pickle.dumps(caught[1])).retry_after == 3.0


def test_field_error_pickles() -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(FE, protocol=protocol)) == FE
