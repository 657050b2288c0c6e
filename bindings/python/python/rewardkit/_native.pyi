"""Type stubs of the native module ``rewardkit._native`` (re-exported by ``rewardkit``)."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from os import PathLike
from typing import (
    Any,
    Callable,
    Protocol,
)

from typing_extensions import Literal, Self, TypeAlias

from .errors import FieldError
from .types import Row as Row
from .types import Rows as Rows

__version__: str

RateLimitArg: TypeAlias = bool | None | tuple[int, float]
Datacenter: TypeAlias = Literal["com", "eu", "ca", "au", "ae", "sg"]
Route: TypeAlias = Literal[
    "questionpro_points", "splio_authenticate", "splio_create_reward", "splio_get_reward"
]
DateValue: TypeAlias = str | datetime
CustomFieldArg: TypeAlias = CustomField | Mapping[str, Any]
Outcome: TypeAlias = Literal["awarded", "skipped", "invalid", "rejected", "failed", "unknown"]

class _DataFrameLike(Protocol):
    """A pandas or polars DataFrame (read by column, never row by row in Python)."""

    @property
    def columns(self) -> Any: ...
    def __len__(self) -> int: ...

BulkRows: TypeAlias = Rows | _DataFrameLike
ProgressArg: TypeAlias = bool | Callable[[Progress], object] | None

class Totals:
    """Counts of a bulk job's rows per outcome, and the points awarded."""

    @property
    def rows(self) -> int: ...
    @property
    def awarded(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def invalid(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def unknown(self) -> int: ...
    @property
    def points_awarded(self) -> int: ...
    def to_dict(self) -> dict[str, int]: ...

class ChunkReport:
    """The fate of one chunk (one request) of a bulk job."""

    @property
    def chunk(self) -> int: ...
    @property
    def first_row(self) -> int: ...
    @property
    def last_row(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def errors(self) -> list[FieldError]: ...
    @property
    def points_awarded(self) -> int: ...
    @property
    def from_journal(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...

class RowOutcome:
    """A row with an outcome of its own (invalid, skipped, ...)."""

    @property
    def row(self) -> int: ...
    @property
    def panel_member_id(self) -> int | None: ...
    @property
    def points(self) -> int | None: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def errors(self) -> list[FieldError]: ...
    @property
    def skipped(self) -> Any: ...
    def to_dict(self) -> dict[str, Any]: ...

class Progress:
    """Where a running bulk job stands (given to the ``progress`` callback)."""

    @property
    def rows_done(self) -> int: ...
    @property
    def rows_total(self) -> int | None: ...
    @property
    def requests(self) -> int: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def rate(self) -> float: ...
    @property
    def eta(self) -> float | None: ...
    @property
    def totals(self) -> Totals: ...
    @property
    def chunk(self) -> ChunkReport | None: ...

class BulkReport:
    """The result of ``bulk_award``: every input row has exactly one outcome."""

    @property
    def totals(self) -> Totals: ...
    @property
    def requests(self) -> int: ...
    @property
    def chunks(self) -> list[ChunkReport]: ...
    @property
    def exceptions(self) -> list[RowOutcome]: ...
    @property
    def rows_read(self) -> int: ...
    @property
    def resumed_chunks(self) -> int: ...
    @property
    def stopped_by(self) -> dict[str, Any] | None: ...
    @property
    def unknown_chunks(self) -> list[ChunkReport]: ...
    @property
    def is_complete(self) -> bool: ...
    @property
    def elapsed(self) -> float: ...
    def records(self) -> list[dict[str, Any]]: ...
    def to_pandas(self) -> Any: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...

class SkippedItem:
    """One item of the answer's ``skipped`` list: a panel member the vendor did not credit."""

    @property
    def raw(self) -> Any: ...
    @property
    def panel_member_id(self) -> int | None: ...
    @property
    def row(self) -> int | None: ...
    def to_dict(self) -> dict[str, Any]: ...

class AwardResult:
    """The answer to one points request."""

    @property
    def success_count(self) -> int: ...
    @property
    def skipped(self) -> list[SkippedItem]: ...
    @property
    def request_id(self) -> str | None: ...
    def to_dict(self) -> dict[str, Any]: ...

class QuestionPro:
    """The QuestionPro client (blocking calls that release the GIL)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        datacenter: Datacenter = "com",
        base_url: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        rate_limit: RateLimitArg = True,
        allow_duplicates: bool = False,
        max_retry_wait: float = 120.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None: ...
    @property
    def base_url(self) -> str: ...
    def award_points(self, rows: Rows) -> AwardResult: ...
    def bulk_award(
        self,
        rows: BulkRows,
        *,
        batch_size: int = 500,
        concurrency: int = 4,
        on_invalid: Literal["stop", "send_valid"] = "stop",
        allow_duplicates: bool | None = None,
        journal: str | PathLike[str] | None = None,
        resend_unknown: bool = False,
        progress: ProgressArg = None,
    ) -> BulkReport: ...

class AsyncQuestionPro:
    """The QuestionPro client for asyncio."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        datacenter: Datacenter = "com",
        base_url: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        rate_limit: RateLimitArg = True,
        allow_duplicates: bool = False,
        max_retry_wait: float = 120.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None: ...
    @property
    def base_url(self) -> str: ...
    async def award_points(self, rows: Rows) -> AwardResult: ...
    async def bulk_award(
        self,
        rows: BulkRows,
        *,
        batch_size: int = 500,
        concurrency: int = 4,
        on_invalid: Literal["stop", "send_valid"] = "stop",
        allow_duplicates: bool | None = None,
        journal: str | PathLike[str] | None = None,
        resend_unknown: bool = False,
        progress: ProgressArg = None,
    ) -> BulkReport: ...

class CustomField:
    """A custom field of a reward."""

    def __init__(
        self, name: str | None = None, value: str | None = None, *, id: int | None = None
    ) -> None: ...
    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def value(self) -> str | None: ...
    def to_dict(self) -> dict[str, Any]: ...

class Reward:
    """A reward as Splio returns it."""

    @property
    def auto_generated(self) -> bool | None: ...
    @property
    def custom_fields(self) -> list[CustomField]: ...
    @property
    def description(self) -> str | None: ...
    @property
    def external_id(self) -> str: ...
    @property
    def forced_validity(self) -> bool | None: ...
    @property
    def forced_validity_end(self) -> str | None: ...
    @property
    def forced_validity_start(self) -> str | None: ...
    @property
    def holding_days(self) -> int | None: ...
    @property
    def image_url(self) -> str | None: ...
    @property
    def limited(self) -> bool | None: ...
    @property
    def max_attribution_count(self) -> int | None: ...
    @property
    def monetary(self) -> bool | None: ...
    @property
    def monetary_type(self) -> Literal["percentage", "value"] | None: ...
    @property
    def monetary_value(self) -> float | None: ...
    @property
    def name(self) -> str: ...
    @property
    def nqp_value(self) -> int | None: ...
    @property
    def rich_description(self) -> str | None: ...
    @property
    def validity_interval_count(self) -> int | None: ...
    @property
    def validity_interval_type(self) -> Literal["days", "weeks", "months", "years"] | None: ...
    @property
    def extra(self) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]: ...

class Splio:
    """The Splio Loyalty client (blocking calls that release the GIL)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        rate_limit: RateLimitArg = True,
        max_retry_wait: float = 120.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None: ...
    @property
    def base_url(self) -> str: ...
    def create_reward(
        self,
        *,
        external_id: str = ...,
        name: str = ...,
        holding_days: int = ...,
        nqp_value: int = ...,
        auto_generated: bool | None = None,
        custom_fields: Sequence[CustomFieldArg] | None = None,
        description: str | None = None,
        forced_validity: bool | None = None,
        forced_validity_end: DateValue | None = None,
        forced_validity_start: DateValue | None = None,
        image_url: str | None = None,
        limited: bool | None = None,
        max_attribution_count: int | str | None = None,
        monetary: bool | None = None,
        monetary_type: Literal["percentage", "value"] | None = None,
        monetary_value: float | None = None,
        rich_description: str | None = None,
        validity_interval_count: int | None = None,
        validity_interval_type: Literal["days", "weeks", "months", "years"] | None = None,
    ) -> Reward: ...
    def get_reward(self, external_id: str) -> Reward: ...

class AsyncSplio:
    """The Splio Loyalty client for asyncio."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        rate_limit: RateLimitArg = True,
        max_retry_wait: float = 120.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None: ...
    @property
    def base_url(self) -> str: ...
    async def create_reward(
        self,
        *,
        external_id: str = ...,
        name: str = ...,
        holding_days: int = ...,
        nqp_value: int = ...,
        auto_generated: bool | None = None,
        custom_fields: Sequence[CustomFieldArg] | None = None,
        description: str | None = None,
        forced_validity: bool | None = None,
        forced_validity_end: DateValue | None = None,
        forced_validity_start: DateValue | None = None,
        image_url: str | None = None,
        limited: bool | None = None,
        max_attribution_count: int | str | None = None,
        monetary: bool | None = None,
        monetary_type: Literal["percentage", "value"] | None = None,
        monetary_value: float | None = None,
        rich_description: str | None = None,
        validity_interval_count: int | None = None,
        validity_interval_type: Literal["days", "weeks", "months", "years"] | None = None,
    ) -> Reward: ...
    async def get_reward(self, external_id: str) -> Reward: ...

class Sandbox:
    """The offline server for both APIs, with fault injection and a ledger."""

    def __init__(
        self,
        *,
        token_ttl: float = 3600.0,
        rate_limits: bool = False,
        members: None | Literal["all"] | range | Iterable[int] = None,
    ) -> None: ...
    def start(self) -> Self: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> bool: ...
    @property
    def running(self) -> bool: ...
    @property
    def url(self) -> str: ...
    @property
    def questionpro_api_key(self) -> str: ...
    @property
    def splio_api_key(self) -> str: ...
    def questionpro(self, **kwargs: Any) -> QuestionPro: ...
    def async_questionpro(self, **kwargs: Any) -> AsyncQuestionPro: ...
    def splio(self, **kwargs: Any) -> Splio: ...
    def async_splio(self, **kwargs: Any) -> AsyncSplio: ...
    def inject(
        self,
        route: Route,
        *,
        status: int | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        retry_after: int | None = None,
        delay: float | None = None,
        action: Literal["respond", "drop_connection", "unreadable_body"] = "respond",
        process: bool = False,
        times: int = 1,
    ) -> None: ...
    def clear_faults(self) -> None: ...
    def request_count(self, route: Route) -> int: ...
    def requests(self, route: Route) -> list[dict[str, Any]]: ...
    def ledger(self) -> dict[int, int]: ...
    def awards(self) -> list[dict[str, Any]]: ...
    def rewards(self) -> list[dict[str, Any]]: ...
    def revoke_tokens(self) -> None: ...
    def reset(self) -> None: ...

def validate_reward(reward: Mapping[str, Any]) -> list[FieldError]:
    """Every problem of a reward, without sending it; empty when valid."""

def validate_rows(rows: Rows, *, allow_duplicates: bool = False) -> list[FieldError]:
    """Every problem of points rows (each with its ``row``), without sending them."""
