"""Award points to thousands of members in one bulk job, resumable from a journal.

Runs offline against rewardkit's built-in sandbox: ``python examples/python/bulk_award.py``.
Against the real API, build the client with ``rewardkit.QuestionPro()`` (the key comes from
``QUESTIONPRO_API_KEY``; pacing keeps the job at QuestionPro's allowed rate).
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
from collections.abc import Iterator

import rewardkit


def finished_survey(n: int) -> Iterator[rewardkit.Row]:
    """The rows, streamed (a CSV reader or a database cursor would do the same)."""
    for i in range(n):
        yield {"panel_member_id": 10_000_000 + i, "points": 100, "comments": "Thanks for the survey"}


def show(p: rewardkit.Progress) -> None:
    if p.chunk is None:
        print(f"  done: {p.rows_done} rows, {p.requests} requests")


def main() -> int:
    complete = False
    with rewardkit.Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        qp = sb.questionpro()
        journal = pathlib.Path(tmp) / "survey-2024-06.db"
        # The first request fails with a 500: its rows are not awarded (nothing was applied).
        sb.inject("questionpro_points", status=500)
        report = qp.bulk_award(finished_survey(5_000), batch_size=500, journal=journal, progress=show)
        t = report.totals
        print(f"first run: awarded {t.awarded} rows, failed {t.failed}, unknown {t.unknown}")

        # Running the same job with the same journal sends only what is missing.
        again = qp.bulk_award(finished_survey(5_000), batch_size=500, journal=journal)
        print(f"second run: {again.requests} request(s) sent, {again.resumed_chunks} chunks from the journal")
        print(f"awarded {again.totals.awarded} rows in all; complete: {again.is_complete}")

        failed = [r for r in again.records() if r["outcome"] != "awarded"]
        print(f"rows needing attention: {len(failed)}")
        print(f"ledger: {len(sb.ledger())} members credited, {sum(sb.ledger().values())} points")

        # Bad rows stop the job before anything is sent, with every problem listed.
        try:
            qp.bulk_award([{"panel_member_id": 1, "points": 0}, {"panel_member_id": 2, "points": "ten"}])
        except rewardkit.ValidationError as e:
            print(f"caught before sending: {len(e.errors)} problem(s)")
        complete = again.is_complete
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
