"""The sandbox from Python: lifecycle, ready clients, fault injection and read-back."""

from __future__ import annotations

import json

import pytest

import rewardkit


def test_lifecycle_and_credentials() -> None:
    sb = rewardkit.Sandbox()
    assert not sb.running and repr(sb) == "Sandbox(not running)"
    with pytest.raises(rewardkit.RewardkitError, match="not running"):
        sb.url  # noqa: B018
    assert sb.start() is sb and sb.start() is sb  # starting twice is harmless
    assert sb.url.startswith("http://127.0.0.1:") and repr(sb) == f"Sandbox(url={sb.url!r})"
    assert (sb.questionpro_api_key, sb.splio_api_key) == ("sandbox-questionpro-key", "sandbox-splio-key")
    sb.close()
    sb.close()
    assert not sb.running
    with rewardkit.Sandbox() as inner:
        assert inner.running
        assert inner.questionpro().award_points([(1, 1)]).success_count == 1
    assert not inner.running


def test_ready_clients_take_options(sb: rewardkit.Sandbox) -> None:
    qp = sb.questionpro(max_retries=0, allow_duplicates=True)
    assert isinstance(qp, rewardkit.QuestionPro) and qp.base_url == sb.url + "/"
    assert qp.award_points([(1, 1), (1, 2)]).success_count == 2
    assert isinstance(sb.splio(), rewardkit.Splio)
    assert isinstance(sb.async_questionpro(), rewardkit.AsyncQuestionPro)
    assert isinstance(sb.async_splio(), rewardkit.AsyncSplio)
    assert sb.ledger() == {1: 3}


def test_members_and_skips() -> None:
    with rewardkit.Sandbox(members={5, 6}) as sb:
        r = sb.questionpro().award_points([(5, 1), (7, 1)])
        assert r.success_count == 1 and [s.panel_member_id for s in r.skipped] == [7]
    with rewardkit.Sandbox(members=range(10, 20)) as sb:
        r = sb.questionpro().award_points([(19, 1), (20, 1)])
        assert [s.row for s in r.skipped] == [1]
    with rewardkit.Sandbox(members="all") as sb:
        assert sb.questionpro().award_points([(10**12, 1)]).success_count == 1
    with pytest.raises(ValueError):
        rewardkit.Sandbox(members="some")
    with pytest.raises(ValueError):
        rewardkit.Sandbox(token_ttl=-1)


def test_inject_options(sb: rewardkit.Sandbox) -> None:
    qp = sb.questionpro(max_retries=0)
    sb.inject("questionpro_points", status=400, body="nope", headers=[("x-request-id", "hdr-1")])
    with pytest.raises(rewardkit.BadRequestError) as info:
        qp.award_points([(1, 1)])
    assert (info.value.request_id, info.value.body) == ("hdr-1", "nope")

    sb.inject("questionpro_points", status=500, process=True)
    with pytest.raises(rewardkit.InternalServerError):
        qp.award_points([(2, 7)])
    assert sb.ledger() == {2: 7}  # processed, then failed

    sb.inject("questionpro_points", status=503, times=3)
    sb.clear_faults()
    assert qp.award_points([(3, 1)]).success_count == 1

    for bad in ({"status": 42}, {"action": "explode"}, {"delay": -1.0}):
        with pytest.raises(ValueError):
            sb.inject("questionpro_points", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown route"):
        sb.inject("nowhere", status=500)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sb.inject("questionpro_points", headers=[("a",)])


def test_read_back_redacts_secrets(sb: rewardkit.Sandbox) -> None:
    sb.questionpro().award_points([{"panel_member_id": 9, "points": 4, "comments": "hi"}])
    sp = sb.splio()
    sp.create_reward(external_id="r1", name="R1", holding_days=0, nqp_value=1, auto_generated=True)
    assert sb.request_count("questionpro_points") == 1 and sb.request_count("splio_authenticate") == 1
    [req] = sb.requests("questionpro_points")
    assert req["method"] == "POST" and req["path"].endswith("/micropanel/members/points")
    assert dict(req["headers"])["api-key"] == "<redacted>"
    assert json.loads(req["body"]) == [{"panelMemberID": 9, "points": 4, "comments": "hi"}]
    [auth] = sb.requests("splio_authenticate")
    assert "sandbox-splio-key" not in auth["body"]
    assert sb.awards() == [
        {"panel_member_id": 9, "points": 4, "comments": "hi", "request_id": sb.awards()[0]["request_id"]}
    ]
    assert [r["external_id"] for r in sb.rewards()] == ["r1"]


def test_revoked_tokens_are_renewed_by_the_client(sb: rewardkit.Sandbox) -> None:
    sp = sb.splio()
    sp.create_reward(external_id="t1", name="T", holding_days=0, nqp_value=1, auto_generated=True)
    sb.revoke_tokens()
    assert sp.get_reward("t1").external_id == "t1"
    assert sb.request_count("splio_authenticate") == 2
    sb.reset()
    assert sb.rewards() == [] and sb.ledger() == {} and sb.request_count("splio_authenticate") == 0
