"""rewardkit: award QuestionPro panel points and create Splio Loyalty rewards, safely.

Every row is checked against the vendors' documented rules before anything is sent, and all
the problems come back at once (``ValidationError``). A points request is re-sent only when
it provably was not processed, so nothing is awarded twice (``OutcomeUnknownError`` says when
it cannot be known). Both vendors' error bodies become one set of typed exceptions.

::

    import rewardkit

    qp = rewardkit.QuestionPro()            # key from QUESTIONPRO_API_KEY
    result = qp.award_points([{"panel_member_id": 12345678, "points": 100, "comments": "Thanks"}])
    print(result.success_count, result.skipped, result.request_id)

    sp = rewardkit.Splio()                  # key from SPLIO_API_KEY
    reward = sp.create_reward(external_id="gift-10", name="Gift card", holding_days=0,
                              nqp_value=500, auto_generated=True)

    with rewardkit.Sandbox() as sb:         # both APIs, offline, for tests
        sb.questionpro().award_points([(1, 10)])
        print(sb.ledger())

    report = qp.bulk_award(rows_or_dataframe, journal="job.db", progress=True)
    print(report.totals, report.unknown_chunks)   # every row has exactly one outcome

``AsyncQuestionPro`` and ``AsyncSplio`` are the same clients for asyncio.
"""

from __future__ import annotations

from ._native import (
    AsyncQuestionPro,
    AsyncSplio,
    AwardResult,
    BulkReport,
    ChunkReport,
    CustomField,
    Progress,
    QuestionPro,
    Reward,
    RowOutcome,
    Sandbox,
    SkippedItem,
    Splio,
    Totals,
    __version__,
    validate_reward,
    validate_rows,
)
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    FieldError,
    InternalServerError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RewardkitError,
    ValidationError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncQuestionPro",
    "AsyncSplio",
    "AuthenticationError",
    "AwardResult",
    "BadRequestError",
    "BulkReport",
    "ChunkReport",
    "CustomField",
    "FieldError",
    "InternalServerError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Progress",
    "QuestionPro",
    "RateLimitError",
    "Reward",
    "RewardkitError",
    "Row",
    "RowOutcome",
    "Rows",
    "Sandbox",
    "SkippedItem",
    "Splio",
    "Totals",
    "ValidationError",
    "__version__",
    "validate_reward",
    "validate_rows",
]


def __getattr__(name: str) -> object:
    # The type aliases need `typing`, which is imported only when they are asked for.
    if name in ("Row", "Rows"):
        from . import types

        return getattr(types, name)
    raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")
