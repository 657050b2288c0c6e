"""The shared vectors of tests/cases/ (format: tests/cases/README.md), run the way the Rust
runner (tests/vectors.rs) runs them. Each vector is its own test, named after the vector, so
every one is checked and every failure is named."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import load_cases

import rewardkit

REWARD_CASES = load_cases("reward_validation.json")
POINTS_CASES = load_cases("points_validation.json")
ERROR_CASES = load_cases("error_bodies.json")

EXPECT_KEYS = {
    "class",
    "status_code",
    "request_id",
    "error_id",
    "message",
    "errors",
    "retry_after",
    "requests",
}
VECTOR_ROWS = [{"panelMemberID": 12345678, "points": 100, "comments": "vector"}]
VECTOR_REWARD = {
    "external_id": "vector-reward",
    "name": "Vector",
    "holding_days": 0,
    "nqp_value": 10,
    "auto_generated": True,
}


def ids(cases: list[dict[str, Any]]) -> list[str]:
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "vector names must be unique"
    return names


def check_field_errors(got: list[rewardkit.FieldError], want: list[dict[str, Any]]) -> None:
    shown = [(g.key, g.code, g.description) for g in got]
    assert len(got) == len(want), f"expected {want}, got {shown}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert set(w) <= {"key", "code", "description"}, f"unknown keys in {w}"
        assert (g.key, g.code) == (w["key"], w["code"]), f"error #{i}: expected {w}, got {shown}"
        if "description" in w:
            assert g.description == w["description"], f"error #{i}: expected {w}, got {shown}"


# ------------------------------------------------------------------ reward_validation.json


def test_there_are_enough_reward_vectors() -> None:
    assert len(REWARD_CASES) >= 30


@pytest.mark.parametrize("case", REWARD_CASES, ids=ids(REWARD_CASES))
def test_reward_validation(case: dict[str, Any]) -> None:
    assert set(case) == {"name", "payload", "errors"}
    check_field_errors(rewardkit.validate_reward(case["payload"]), case["errors"])


@pytest.mark.parametrize("case", REWARD_CASES, ids=ids(REWARD_CASES))
def test_reward_validation_over_http(
    case: dict[str, Any], sp: rewardkit.Splio, sb: rewardkit.Sandbox
) -> None:
    payload = case["payload"]
    if not isinstance(payload, dict):
        pytest.skip("create_reward takes keyword arguments: a payload that is not an object cannot be passed")
    if case["errors"]:
        with pytest.raises(rewardkit.ValidationError) as info:
            sp.create_reward(**payload)
        check_field_errors(info.value.errors, case["errors"])
        assert sb.request_count("splio_create_reward") == 0, "an invalid reward reached the server"
    else:
        created = sp.create_reward(**payload)
        assert created.external_id == payload["external_id"]
        assert len(sb.rewards()) == 1


# ------------------------------------------------------------------ points_validation.json


@pytest.mark.parametrize("case", POINTS_CASES, ids=ids(POINTS_CASES))
def test_points_validation(case: dict[str, Any], sb: rewardkit.Sandbox) -> None:
    assert set(case) == {"name", "rows", "allow_duplicates", "errors"}
    got = rewardkit.validate_rows(case["rows"], allow_duplicates=case["allow_duplicates"])
    assert [{"row": e.row, "key": e.key, "code": e.code} for e in got] == case["errors"]

    qp = sb.questionpro(allow_duplicates=case["allow_duplicates"])
    if case["errors"]:
        with pytest.raises(rewardkit.ValidationError) as info:
            qp.award_points(case["rows"])
        assert [{"row": e.row, "key": e.key, "code": e.code} for e in info.value.errors] == case["errors"]
        assert sb.request_count("questionpro_points") == 0, "invalid rows reached the server"
    else:
        result = qp.award_points(case["rows"])
        assert result.success_count == len(case["rows"])
        assert sum(sb.ledger().values()) == sum(r["points"] for r in case["rows"])


# ------------------------------------------------------------------ error_bodies.json


@pytest.mark.parametrize("case", ERROR_CASES, ids=ids(ERROR_CASES))
def test_error_body(case: dict[str, Any], sb: rewardkit.Sandbox) -> None:
    assert set(case["expect"]) <= EXPECT_KEYS, f"unknown expect keys {set(case['expect']) - EXPECT_KEYS}"
    route, call = case["route"], case["call"]
    if route == "questionpro_points":
        assert case["vendor"] == "questionpro" and call == "award_points"
    else:
        assert case["vendor"] == "splio" and call in ("create_reward", "get_reward")

    sb.inject(
        route,
        status=case["status"],
        body=case["body"],
        headers=case.get("headers", {}),
        times=case.get("times", 1),
    )
    options = {
        "max_retries": case.get("max_retries", 0),
        "timeout": 5.0,
        "backoff": 0.01,
        "max_backoff": 0.05,
    }
    with pytest.raises(rewardkit.RewardkitError) as info:
        if call == "award_points":
            sb.questionpro(**options).award_points(VECTOR_ROWS)
        elif call == "create_reward":
            sb.splio(**options).create_reward(**VECTOR_REWARD)
        elif call == "get_reward":
            sb.splio(**options).get_reward("vector-reward")
        else:
            pytest.fail(f"unknown call {call!r}")
    e = info.value
    x = case["expect"]
    is_api = isinstance(e, rewardkit.APIError)
    got: dict[str, Any] = {
        "class": type(e).__name__,
        "status_code": getattr(e, "status_code", None),
        "request_id": getattr(e, "request_id", None),
        "error_id": getattr(e, "error_id", None),
        "message": e.message if is_api else None,
        "errors": [
            {"key": f.key, "code": f.code, "description": f.description} for f in getattr(e, "errors", [])
        ],
        "retry_after": getattr(e, "retry_after", None),
        "requests": sb.request_count(route),
    }
    problems = [f"{k}: expected {x[k]!r}, got {got[k]!r}" for k in x if got[k] != x[k]]
    # Whatever the shape, a status error keeps the raw body.
    if is_api and e.body != case["body"]:
        problems.append(f"body: expected the raw body {case['body']!r}, got {e.body!r}")
    assert not problems, f"{'; '.join(problems)} [{e}]"
