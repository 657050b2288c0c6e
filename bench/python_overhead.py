"""What rewardkit costs a Python caller, next to the usual alternatives.

1. One small ``award_points`` call (2 rows) against the sandbox: rewardkit's sync client vs.
   ``requests`` (a ``Session``, as in the vendor's own example) and ``httpx`` (a ``Client``),
   both reusing their connection, posting the same body and parsing the answer.
2. Row validation of 1,000,000 rows given as a list of dicts: ``rewardkit.validate_rows`` vs.
   an equivalent pydantic v2 model (strict ints, member id > 0, points != 0, optional str
   comment) validated with ``TypeAdapter(list[Model])``.
3. ``rewardkit.validate_reward`` on many payloads vs. a pydantic v2 model of the reward with
   the same field types and cross-field rules.

Run with ``make bench-python`` (installs requests, httpx and pydantic into .venv and the
release build of rewardkit). Not part of ``make test``. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from typing import Annotated, Any, Callable, Optional, Union

import httpx
import pydantic
import requests
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from typing_extensions import TypedDict

import rewardkit

POINTS_PATH = "/a/api/v2/micropanel/members/points"
SMALL_ROWS = [
    {"panel_member_id": 12345678, "points": 100, "comments": "Thanks"},
    {"panel_member_id": 23456789, "points": 50},
]
WIRE_ROWS = [
    {"panelMemberID": 12345678, "points": 100, "comments": "Thanks"},
    {"panelMemberID": 23456789, "points": 50},
]


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def small_call(sb: rewardkit.Sandbox, iterations: int) -> dict[str, float]:
    qp = sb.questionpro()  # pacing off, like the peers
    url = sb.url + POINTS_PATH
    headers = {"api-key": sb.questionpro_api_key}
    session = requests.Session()
    client = httpx.Client()

    def with_rewardkit() -> object:
        r = qp.award_points(SMALL_ROWS)
        assert r.success_count == 2
        return r

    def with_requests() -> object:
        resp = session.post(url, json=WIRE_ROWS, headers=headers, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        assert body["response"]["successCount"] == 2
        return body

    def with_httpx() -> object:
        resp = client.post(url, json=WIRE_ROWS, headers=headers, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        assert body["response"]["successCount"] == 2
        return body

    contenders = {"rewardkit": with_rewardkit, "requests": with_requests, "httpx": with_httpx}
    for fn in contenders.values():  # warm up: connections, the runtime, caches
        timed(fn, 200)
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    rounds = 10
    for _ in range(rounds):  # interleaved, so drift hits everyone alike
        for name, fn in contenders.items():
            samples[name] += timed(fn, iterations // rounds)
            sb.reset()
    session.close()
    client.close()
    return {k: statistics.median(v) for k, v in samples.items()}


class PointsRow(BaseModel):
    model_config = ConfigDict(strict=True)
    panel_member_id: Annotated[int, Field(gt=0)]
    # Non-zero, checked inside pydantic-core (no Python validator): negative or positive.
    points: Union[Annotated[int, Field(lt=0)], Annotated[int, Field(gt=0)]]
    comments: Optional[str] = None


@pydantic.with_config(ConfigDict(strict=True))
class PointsRowDict(TypedDict, total=False):
    """The same row as a TypedDict: pydantic's fastest path (no model instances)."""

    panel_member_id: Annotated[int, Field(gt=0)]
    points: Union[Annotated[int, Field(lt=0)], Annotated[int, Field(gt=0)]]
    comments: Optional[str]


class RewardModel(BaseModel):
    model_config = ConfigDict(strict=True)
    auto_generated: Optional[bool] = None
    custom_fields: Optional[list[dict[str, Optional[str]]]] = None
    description: Optional[str] = None
    external_id: Annotated[str, Field(min_length=1, max_length=128)]
    forced_validity: Optional[bool] = None
    forced_validity_end: Optional[
        Annotated[str, Field(pattern=r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}$")]
    ] = None
    forced_validity_start: Optional[
        Annotated[str, Field(pattern=r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}$")]
    ] = None
    holding_days: int
    image_url: Optional[str] = None
    limited: Optional[bool] = None
    max_attribution_count: Union[
        Annotated[int, Field(ge=0)], Annotated[str, Field(pattern=r"^\d+$")], None
    ] = None
    monetary: Optional[bool] = None
    monetary_type: Optional[Annotated[str, Field(pattern="^(percentage|value)$")]] = None
    monetary_value: Optional[float] = None
    name: Annotated[str, Field(min_length=1, max_length=128)]
    nqp_value: int
    rich_description: Optional[str] = None
    validity_interval_count: Optional[int] = None
    validity_interval_type: Optional[Annotated[str, Field(pattern="^(days|weeks|months|years)$")]] = None

    @model_validator(mode="after")
    def rules(self) -> RewardModel:
        count = int(self.max_attribution_count or 0)
        if self.limited is False and self.auto_generated is False:
            raise ValueError("reward cannot be unlimited and non-autogenerated")
        if self.limited and self.auto_generated and count == 0:
            raise ValueError("max_attribution_count cannot be set to 0 if the reward is limited")
        if count > 0 and self.auto_generated is False:
            raise ValueError("max_attribution_count cannot be set if the reward is non-autogenerated")
        if count > 0 and self.limited is False:
            raise ValueError("you cannot have a max attribution count if the reward is unlimited")
        if self.monetary and (self.monetary_type is None or self.monetary_value is None):
            raise ValueError("monetary data is missing")
        if self.forced_validity is False and (self.forced_validity_start or self.forced_validity_end):
            raise ValueError("you have to enable forced_validity")
        return self


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def rows_validation(n: int, repeat: int) -> dict[str, float]:
    rows: list[dict[str, Any]] = [
        {"panel_member_id": i, "points": (i % 200) - 100 or 7, "comments": "thanks" if i % 2 else None}
        for i in range(1, n + 1)
    ]
    assert rewardkit.validate_rows(rows) == []
    models = TypeAdapter(list[PointsRow])
    dicts = TypeAdapter(list[PointsRowDict])
    assert len(models.validate_python(rows[:10])) == 10
    # The pydantic model agrees with rewardkit on what is bad.
    for bad in (
        {"panel_member_id": 0, "points": 1},
        {"panel_member_id": 1, "points": 0},
        {"panel_member_id": "1", "points": 1},
    ):
        assert rewardkit.validate_rows([bad]) != []
        try:
            models.validate_python([bad])
        except pydantic.ValidationError:
            pass
        else:
            raise AssertionError(f"pydantic accepted {bad}")
    return {
        "rewardkit.validate_rows": best_of(lambda: rewardkit.validate_rows(rows), repeat),
        "pydantic TypeAdapter(list[Model])": best_of(lambda: models.validate_python(rows), repeat),
        "pydantic TypeAdapter(list[TypedDict])": best_of(lambda: dicts.validate_python(rows), repeat),
    }


def reward_validation(n: int, repeat: int) -> dict[str, float]:
    payloads: list[dict[str, Any]] = []
    for i in range(n):
        p: dict[str, Any] = {
            "external_id": f"r-{i}",
            "name": "Gift card",
            "holding_days": 0,
            "nqp_value": 100 + i,
        }
        if i % 3 == 0:
            p.update(limited=True, auto_generated=True, max_attribution_count=str(10 + i))
        elif i % 3 == 1:
            p.update(auto_generated=True, monetary=True, monetary_type="value", monetary_value=5.0)
        else:
            p.update(limited=False, auto_generated=False)  # invalid: unlimited and non-autogenerated
        payloads.append(p)
    model = TypeAdapter(RewardModel)

    def with_rewardkit() -> int:
        return sum(1 for p in payloads if not rewardkit.validate_reward(p))

    def with_pydantic() -> int:
        ok = 0
        for p in payloads:
            try:
                model.validate_python(p)
                ok += 1
            except pydantic.ValidationError:
                pass
        return ok

    assert with_rewardkit() == with_pydantic()
    return {
        "rewardkit.validate_reward": best_of(with_rewardkit, repeat),
        "pydantic RewardModel": best_of(with_pydantic, repeat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=3000, help="small calls per contender")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rewards", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    print(
        f"Python {platform.python_version()}, rewardkit {rewardkit.__version__}, requests {requests.__version__}, "
        f"httpx {httpx.__version__}, pydantic {pydantic.VERSION}, {platform.machine()}"
    )

    with rewardkit.Sandbox() as sb:
        small = small_call(sb, args.iterations)
    print(f"\nOne award_points call (2 rows) against the sandbox, median of {args.iterations}:")
    base = small["requests"]
    for name, t in small.items():
        print(f"  {name:<10} {t * 1e6:8.0f} us   {t / base:5.2f}x requests")

    rows = rows_validation(args.rows, args.repeat)
    print(f"\nValidating {args.rows:,} rows (list of dicts), median of {args.repeat}:")
    ours = rows["rewardkit.validate_rows"]
    for name, t in rows.items():
        print(f"  {name:<38} {t * 1e3:8.0f} ms   {t / ours:5.1f}x rewardkit")

    rewards = reward_validation(args.rewards, args.repeat)
    print(f"\nValidating {args.rewards:,} reward payloads one by one, median of {args.repeat}:")
    ours = rewards["rewardkit.validate_reward"]
    for name, t in rewards.items():
        print(
            f"  {name:<38} {t * 1e3:8.0f} ms   {t / ours:5.1f}x rewardkit   ({t / args.rewards * 1e6:.2f} us each)"
        )


if __name__ == "__main__":
    main()
