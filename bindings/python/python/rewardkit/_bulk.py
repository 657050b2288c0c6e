"""Helpers of ``bulk_award``'s ``progress`` argument (imported on the first job that uses it).

``progress=True`` draws a ``tqdm`` bar when tqdm is installed (and warns once otherwise); a
callable is called with a ``Progress`` after each chunk. Either way an exception in the
callback is logged to the ``rewardkit`` logger and the job goes on: a broken progress display
must not stop, or silently break, a job that is awarding points.
"""

from __future__ import annotations

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
