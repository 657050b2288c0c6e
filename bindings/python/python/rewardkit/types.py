"""Type aliases for annotating code that calls rewardkit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

__all__ = ["Row", "Rows"]

#: A points row: a dict with ``panel_member_id`` (or ``panelMemberID`` / ``panelMemberId``),
#: ``points`` and optional ``comments``, or a tuple ``(panel_member_id, points[, comments])``.
Row = Union[Mapping[str, Any], tuple[int, int], tuple[int, int, Optional[str]]]

#: Rows: a list, any iterable or a pandas DataFrame of rows.
Rows = Iterable[Row]
