"""Helpers of ``bulk_award``: its ``progress`` argument, and the coroutine of the async job.

``progress=True`` draws a ``tqdm`` bar when tqdm is installed (and warns once otherwise); a
callable is called with a ``Progress`` after each chunk. Either way an exception in the
callback is logged to the ``rewardkit`` logger and the job goes on: a broken progress display
must not stop, or silently break, a job that is awarding points.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any, Callable

logger = logging.getLogger("rewardkit")

Callback = Callable[[Any], None]


def _guarded(fn: Callback) -> Callback:
    def call(progress: Any) -> None:
        try:
            fn(progress)
        except Exception:
            logger.exception("bulk_award: the progress callback raised; the job goes on")

    return call


def _tqdm_bar() -> tuple[Callback | None, Callable[[], None] | None]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn(
            "bulk_award(progress=True) draws a bar with tqdm, which is not installed "
            "(pip install tqdm); the job runs without one",
            stacklevel=4,
        )
        return None, None
    bar = tqdm(total=None, unit="row", desc="bulk_award", dynamic_ncols=True)

    def update(p: Any) -> None:
        if p.rows_total is not None and bar.total != p.rows_total:
            bar.total = p.rows_total
            bar.refresh()
        if p.rows_done > bar.n:
            bar.update(p.rows_done - bar.n)
        t = p.totals
        bar.set_postfix(awarded=t.awarded, failed=t.failed + t.rejected, unknown=t.unknown, refresh=False)

    return _guarded(update), bar.close


def make_progress(progress: Any) -> tuple[Callback | None, Callable[[], None] | None]:
    """The callback to give the engine and what to call when the job ends."""
    if progress is None or progress is False:
        return None, None
    if progress is True:
        return _tqdm_bar()
    if not callable(progress):
        raise TypeError(f"progress must be True, None or a callable, not {type(progress).__name__}")
    return _guarded(progress), None


async def run_job(job: Any) -> Any:
    """Awaits a job of ``AsyncQuestionPro.bulk_award`` (started here, on first await).

    Cancelling the awaiting task (``task.cancel()``, a timeout, Ctrl-C under ``asyncio.run``)
    stops the job as Ctrl-C stops a sync one: nothing more is sent, the requests in flight
    finish and are journaled, then ``CancelledError`` is raised with ``.report``, the partial
    ``BulkReport``. Cancelling again while those requests finish abandons them (their rows are
    reported ``unknown``).
    """
    fut = job.start()
    try:
        # Shielded: the cancellation is the job's to carry out, not the future's.
        return await asyncio.shield(fut)
    except asyncio.CancelledError as cancelled:
        if fut.cancelled():
            raise
        job.cancel()
        cancelled.report = await _stopped(job, fut)  # type: ignore[attr-defined]
        raise


async def _stopped(job: Any, fut: Any) -> Any:
    """The report of a job told to stop, once its requests in flight are over."""
    while True:
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if fut.cancelled():
                return None
            job.abort()
        except Exception as e:  # noqa: BLE001 - the job's own error (any class: the input's too) carries the report
            return getattr(e, "report", None)
