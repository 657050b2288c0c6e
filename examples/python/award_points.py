"""Award points to QuestionPro panel members, the way a script after a survey would.

Runs offline against rewardkit's built-in sandbox: ``python examples/python/award_points.py``.
Against the real API, drop the sandbox and build the client with just
``rewardkit.QuestionPro(datacenter="eu")`` (the key comes from ``QUESTIONPRO_API_KEY``).
"""

from __future__ import annotations

import logging
import sys

import rewardkit

ROWS: list[rewardkit.Row] = [
    {"panel_member_id": 12345678, "points": 100, "comments": "Thanks for the survey"},
    {"panelMemberID": 23456789, "points": 50},  # the vendor's own spelling works too
    (100000001, 10, "not in the panel: QuestionPro skips it"),
]


def award(qp: rewardkit.QuestionPro, rows: rewardkit.Rows) -> int:
    """Sends the rows and explains what happened; returns a process exit code."""
    try:
        result = qp.award_points(rows)
    except rewardkit.ValidationError as e:
        # Nothing was sent: every problem of every row is listed at once.
        print(f"caught before sending: {len(e.errors)} problem(s)")
        for err in e.errors:
            print(f"  row {err.row}: {err.key}: {err.code} ({err.description})")
        return 1
    except rewardkit.OutcomeUnknownError as e:
        # Sent, but no definitive answer: check the members' balances before sending again.
        print(f"outcome unknown ({e.cause}): do not resend blindly [{e}]")
        return 2
    except rewardkit.RateLimitError as e:
        print(f"rate limited; retry after {e.retry_after} s")
        return 3
    except rewardkit.APIError as e:
        print(f"QuestionPro refused it: {e.status_code} {e.error_id} {e.message} (request {e.request_id})")
        return 4
    except rewardkit.APIConnectionError as e:
        print(f"could not reach QuestionPro (nothing was sent): {e}")
        return 5
    print(f"awarded {result.success_count} rows, request {result.request_id}")
    for item in result.skipped:
        print(f"  skipped row {item.row}: member {item.panel_member_id}: {item.raw}")
    return 0


def main() -> int:
    if "-v" in sys.argv:
        logging.basicConfig(level=logging.DEBUG)  # shows each request, attempt and status
    with rewardkit.Sandbox() as sb:
        qp = rewardkit.QuestionPro(api_key=sb.questionpro_api_key, base_url=sb.url, rate_limit=None)

        code = award(qp, ROWS)

        # Bad rows never leave the machine.
        bad: list[rewardkit.Row] = [
            {"panel_member_id": 0, "points": 5},
            {"panel_member_id": "7", "points": 0},
        ]
        award(qp, bad)

        # A server error, injected into the sandbox: the rows were not awarded.
        sb.inject("questionpro_points", status=500)
        award(qp, [(34567890, 20)])

        # A gateway error after sending: the outcome is unknown, so it is not re-sent.
        sb.inject("questionpro_points", status=502)
        award(qp, [(45678901, 20)])

        print(f"ledger: {sb.ledger()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
