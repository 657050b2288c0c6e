"""Rows in every accepted shape, reward keywords, result objects, and wrong argument types
(always TypeError, ValueError or ValidationError with a clear message, never a crash)."""

from __future__ import annotations

import collections
import datetime
import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

import rewardkit

GOOD_REWARD: dict[str, Any] = {
    "external_id": "gift-1",
    "name": "Gift",
    "holding_days": 0,
    "nqp_value": 10,
    "auto_generated": True,
}


class Index:
    """An integer of another library (like numpy.int64): an int through __index__."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n


class RowMapping(Mapping[str, Any]):
    def __init__(self, **kw: Any) -> None:
        self._d = kw

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


def test_rows_in_every_shape(qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox) -> None:
    Award = collections.namedtuple("Award", "member points comments")
    rows: list[Any] = [
        {"panel_member_id": 1, "points": 10, "comments": "snake"},
        {"panelMemberID": 2, "points": 20},
        {"panelMemberId": 3, "points": 30, "comment": "alias"},
        (4, 40),
        (5, 50, "tuple"),
        Award(6, 60, None),
        collections.OrderedDict(panel_member_id=7, points=70),
        RowMapping(panel_member_id=8, points=80),
        {"panel_member_id": Index(9), "points": Index(90), "comments": math.nan},
        {"panel_member_id": 10, "points": -5, "comments": None},
    ]
    result = qp.award_points(rows)
    assert result.success_count == 10 and result.skipped == []
    assert sb.ledger() == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50, 6: 60, 7: 70, 8: 80, 9: 90, 10: -5}
    comments = {a["panel_member_id"]: a["comments"] for a in sb.awards()}
    assert (
        comments[1] == "snake" and comments[3] == "alias" and comments[5] == "tuple" and comments[9] is None
    )


def test_rows_from_a_generator_and_a_dataframe_like_object(
    qp: rewardkit.QuestionPro, sb: rewardkit.Sandbox
) -> None:
    assert qp.award_points({"panel_member_id": i, "points": 1} for i in range(1, 51)).success_count == 50

    class Frame:
        columns: ClassVar[list[str]] = ["panel_member_id", "points"]

        def to_dict(self, orient: str) -> list[dict[str, int]]:
            assert orient == "records"
            return [{"panel_member_id": 100, "points": 3}]

    assert qp.award_points(Frame()).success_count == 1  # type: ignore[arg-type]
    assert sb.ledger()[100] == 3


def test_award_result_attributes(qp: rewardkit.QuestionPro) -> None:
    r = qp.award_points([(1, 5), (123456789, 5, "not in the panel")])
    assert r.success_count == 1
    assert isinstance(r.request_id, str) and r.request_id
    [s] = r.skipped
    assert isinstance(s, rewardkit.SkippedItem)
    assert (s.panel_member_id, s.row) == (123456789, 1)
    assert s.raw["panelMemberID"] == 123456789
    assert r.to_dict() == {
        "success_count": 1,
        "skipped": [{"raw": s.raw, "panel_member_id": 123456789, "row": 1}],
        "request_id": r.request_id,
    }
    assert repr(r).startswith(
        "AwardResult(success_count=1, skipped=[SkippedItem(panel_member_id=123456789, row=1"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (5, "not int"),
        ("12345678", "not a string"),
        ({"panel_member_id": 1, "points": 1}, "not one row"),
        (None, "not NoneType"),
    ],
)
def test_rows_that_are_not_rows_raise_type_error(qp: rewardkit.QuestionPro, rows: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        qp.award_points(rows)
    with pytest.raises(TypeError):
        rewardkit.validate_rows(rows)


def test_odd_cells_are_field_errors_not_crashes() -> None:
    errs = rewardkit.validate_rows(
        [
            {"panel_member_id": 2**70, "points": 1},
            {"panel_member_id": True, "points": 1.0},
            {"panel_member_id": object(), "points": [1]},
            {"panel_member_id": 1, "points": 1, "comments": 5},
            (1, 2, 3, 4),
            [1, 2],
            (1,),
        ]
    )
    assert [(e.row, e.key, e.code) for e in errs] == [
        (0, "panelMemberID", "wrong_type"),
        (1, "panelMemberID", "wrong_type"),
        (1, "points", "wrong_type"),
        (2, "panelMemberID", "wrong_type"),
        (2, "points", "wrong_type"),
        (3, "comments", "wrong_type"),
        (4, "row", "wrong_type"),
        (5, "row", "wrong_type"),
        (6, "row", "wrong_type"),
    ]
    assert "64-bit" in errs[0].description


def test_no_rows_is_a_validation_error(qp: rewardkit.QuestionPro) -> None:
    with pytest.raises(rewardkit.ValidationError) as info:
        qp.award_points([])
    assert [(e.key, e.code) for e in info.value.errors] == [("rows", "is_blank")]


def test_a_failing_iterable_propagates_its_error(qp: rewardkit.QuestionPro) -> None:
    def rows() -> Iterator[tuple[int, int]]:
        yield (1, 1)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        qp.award_points(rows())


def test_create_reward_with_every_field(sp: rewardkit.Splio, sb: rewardkit.Sandbox) -> None:
    r = sp.create_reward(
        auto_generated=True,
        custom_fields=[rewardkit.CustomField("colour", "red"), {"name": "size", "value": "L"}],
        description="A gift",
        external_id="everything",
        forced_validity=True,
        forced_validity_end="2026-12-31 23:59:59",
        forced_validity_start=datetime.datetime(2026, 1, 5, 9, 30, 0),
        holding_days=2,
        image_url="https://example.test/gift.png",
        limited=True,
        max_attribution_count=100,
        monetary=True,
        monetary_type="value",
        monetary_value=12.5,
        name="Everything",
        nqp_value=500,
        rich_description="<b>A gift</b>",
        validity_interval_count=3,
        validity_interval_type="months",
    )
    assert isinstance(r, rewardkit.Reward)
    want = {
        "auto_generated": True,
        "description": "A gift",
        "external_id": "everything",
        "forced_validity": True,
        "forced_validity_end": "2026-12-31 23:59:59",
        "forced_validity_start": "2026-01-05 9:30:00",  # the vendor's hour has no leading zero
        "holding_days": 2,
        "image_url": "https://example.test/gift.png",
        "limited": True,
        "max_attribution_count": 100,
        "monetary": True,
        "monetary_type": "value",
        "monetary_value": 12.5,
        "name": "Everything",
        "nqp_value": 500,
        "rich_description": "<b>A gift</b>",
        "validity_interval_count": 3,
        "validity_interval_type": "months",
    }
    assert {k: getattr(r, k) for k in want} == want
    assert [(c.name, c.value) for c in r.custom_fields] == [("colour", "red"), ("size", "L")]
    assert all(isinstance(c.id, int) for c in r.custom_fields)
    assert r.extra == {"id": 1}
    d = r.to_dict()
    assert {k: d[k] for k in want} == want and d["id"] == 1
    assert d["custom_fields"][0]["name"] == "colour"
    assert (
        repr(r)
        == "Reward(external_id='everything', name='Everything', nqp_value=500, limited=True, auto_generated=True)"
    )
    assert sp.get_reward("everything").to_dict() == {**d, "stock": 100}
    assert sb.rewards()[0]["forced_validity_start"] == "2026-01-05 9:30:00"


def test_create_reward_refuses_unknown_keywords_and_odd_values(
    sp: rewardkit.Splio, sb: rewardkit.Sandbox
) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        sp.create_reward(**GOOD_REWARD, colour="red")
    with pytest.raises(TypeError, match="custom_fields\\[0\\].value: a set cannot be sent"):
        sp.create_reward(**{**GOOD_REWARD, "custom_fields": [{"name": "a", "value": {1}}]})
    with pytest.raises(TypeError, match="keys must be str"):
        sp.create_reward(**{**GOOD_REWARD, "custom_fields": [{1: "a"}]})
    with pytest.raises(rewardkit.ValidationError) as info:
        sp.create_reward(
            **{**GOOD_REWARD, "monetary_value": math.inf, "monetary": True, "monetary_type": "value"}
        )
    assert [(e.key, e.code) for e in info.value.errors] == [("monetary_value", "wrong_value")]
    with pytest.raises(rewardkit.ValidationError) as info:
        sp.create_reward(**{**GOOD_REWARD, "holding_days": 10**30, "name": 5, "limited": "yes"})
    assert [(e.key, e.code) for e in info.value.errors] == [
        ("holding_days", "wrong_type"),
        ("limited", "wrong_type"),
        ("name", "wrong_type"),
    ]
    deep: list[Any] = []
    deep.append(deep)
    with pytest.raises(TypeError, match="nested"):
        sp.create_reward(**{**GOOD_REWARD, "custom_fields": deep})
    assert sb.request_count("splio_create_reward") == 0


def test_validate_reward_returns_field_errors_without_network(sb: rewardkit.Sandbox) -> None:
    assert rewardkit.validate_reward(GOOD_REWARD) == []
    errs = rewardkit.validate_reward({"name": "", "limited": False, "auto_generated": False})
    assert [(e.key, e.code) for e in errs] == [
        ("external_id", "is_blank"),
        ("holding_days", "is_blank"),
        ("name", "is_blank"),
        ("nqp_value", "is_blank"),
        ("limited", "unlimited_non_autogenerated"),
    ]
    assert errs[-1].description == "reward cannot be unlimited and non-autogenerated"
    start = {**GOOD_REWARD, "forced_validity": True, "forced_validity_start": datetime.datetime(2026, 5, 1)}
    assert rewardkit.validate_reward(start) == []
    assert [(e.key, e.code) for e in rewardkit.validate_reward(["not", "a", "reward"])] == [
        ("reward", "wrong_type")
    ]
    assert sum(sb.request_count(r) for r in ("splio_authenticate", "splio_create_reward")) == 0


def test_field_error_value_semantics() -> None:
    a = rewardkit.FieldError("points", "wrong_value", "points must not be zero", 3)
    assert a == rewardkit.FieldError("points", "wrong_value", "points must not be zero", 3)
    assert a != rewardkit.FieldError("points", "wrong_value", "points must not be zero")
    assert (
        repr(a)
        == "FieldError(key='points', code='wrong_value', description='points must not be zero', row=3)"
    )
    assert str(a) == "row 3: points: wrong_value (points must not be zero)"
    assert a.to_dict() == {
        "key": "points",
        "code": "wrong_value",
        "description": "points must not be zero",
        "row": 3,
    }
    assert rewardkit.FieldError("k", "c").to_dict() == {"key": "k", "code": "c", "description": ""}
    assert len({a, rewardkit.FieldError("points", "wrong_value", "points must not be zero", 3)}) == 1


def test_custom_field_type() -> None:
    c = rewardkit.CustomField("k", "v")
    assert (c.name, c.value, c.id) == ("k", "v", None)
    assert c == rewardkit.CustomField("k", "v") and c.to_dict() == {"name": "k", "value": "v"}
    assert repr(c) == "CustomField(name='k', value='v')"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": "slow"}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"timeout": math.nan}, ValueError),
        ({"connect_timeout": 1e300}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"rate_limit": "fast"}, TypeError),
        ({"rate_limit": (0, 1.0)}, ValueError),
        ({"rate_limit": (10, -1.0)}, ValueError),
        ({"rate_limit": (10, 1.0, 3)}, TypeError),
        ({"api_key": 5}, TypeError),
        ({"datacenter": 5}, TypeError),
        ({"allow_duplicates": "yes"}, TypeError),
        ({"unknown": 1}, TypeError),
        ({"datacenter": "uk"}, rewardkit.RewardkitError),
        ({"api_key": "bad\nkey"}, rewardkit.RewardkitError),
    ],
)
def test_wrong_client_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    args = {"api_key": "k", **kwargs}
    with pytest.raises(error):
        rewardkit.QuestionPro(**args)
    with pytest.raises(error):
        rewardkit.AsyncQuestionPro(**args)


def test_rate_limit_forms_are_accepted() -> None:
    for rate in (True, False, None, (5, 1.0), (300, 60)):
        rewardkit.QuestionPro(api_key="k", rate_limit=rate)
        rewardkit.Splio(api_key="k", rate_limit=rate)


def test_get_reward_argument_types(sp: rewardkit.Splio) -> None:
    with pytest.raises(TypeError):
        sp.get_reward(5)  # type: ignore[arg-type]
    with pytest.raises(rewardkit.ValidationError):
        sp.get_reward("  ")
