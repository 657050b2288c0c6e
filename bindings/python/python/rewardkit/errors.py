"""The exceptions rewardkit raises, and the field errors they carry.

::

    RewardkitError
    ├── ValidationError            .errors (client-side; nothing was sent); also a ValueError
    ├── APIError                   .status_code, .request_id, .error_id, .errors, .body
    │   ├── BadRequestError        400 (and other 4xx without a class of their own)
    │   ├── AuthenticationError    401 (and Splio refusing the key)
    │   ├── PermissionDeniedError  403
    │   ├── NotFoundError          404
    │   ├── RateLimitError         429 .retry_after
    │   └── InternalServerError    5xx
    ├── APIConnectionError         no answer; the request did not reach the server
    │   └── APITimeoutError
    └── OutcomeUnknownError        the request was sent; it may or may not have been applied

Every exception pickles with its attributes. None of them ever holds an API key or token.
An exception raised by ``bulk_award`` also has ``.report``, the job's partial ``BulkReport``
(left out when the exception is pickled).
"""

from __future__ import annotations

# No `typing` import: annotations are strings here, and importing rewardkit stays cheap.
from collections.abc import Sequence

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "FieldError",
    "InternalServerError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RewardkitError",
    "ValidationError",
]


class FieldError:
    """One problem with one field.

    ``key`` is the vendor's field name (``panelMemberID``, ``external_id``,
    ``custom_fields[0].value``), ``code`` the vendor's error code (``is_blank``,
    ``wrong_type``, ``wrong_value``, ``duplicate``, ...), ``description`` a readable sentence,
    and ``row`` the 0-based index of the input row when the error belongs to one row of many.
    """

    __slots__ = {
        "code": "The vendor's error code (``is_blank``, ``wrong_type``, ...).",
        "description": "A readable sentence.",
        "key": "The vendor's field name (``panelMemberID``, ``external_id``, ...).",
        "row": "The 0-based index of the input row, or None.",
    }

    key: str
    code: str
    description: str
    row: int | None

    def __init__(self, key: str, code: str, description: str = "", row: int | None = None) -> None:
        self.key = key
        self.code = code
        self.description = description
        self.row = row

    def to_dict(self) -> dict[str, object]:
        """The error as a dict: ``key``, ``code``, ``description`` and ``row`` (when set)."""
        d: dict[str, object] = {"key": self.key, "code": self.code, "description": self.description}
        if self.row is not None:
            d["row"] = self.row
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldError):
            return NotImplemented
        return (self.key, self.code, self.description, self.row) == (
            other.key,
            other.code,
            other.description,
            other.row,
        )

    def __hash__(self) -> int:
        return hash((self.key, self.code, self.description, self.row))

    def __repr__(self) -> str:
        row = "" if self.row is None else f", row={self.row!r}"
        return f"FieldError(key={self.key!r}, code={self.code!r}, description={self.description!r}{row})"

    def __str__(self) -> str:
        where = "" if self.row is None else f"row {self.row}: "
        desc = f" ({self.description})" if self.description else ""
        return f"{where}{self.key}: {self.code}{desc}"

    def __reduce__(self) -> tuple[object, ...]:
        return (FieldError, (self.key, self.code, self.description, self.row))


class RewardkitError(Exception):
    """Base class of every rewardkit error. Raised as itself for a misconfiguration: no API
    key, an unknown datacenter, a bad base URL, plain http to a remote host.

    ``message`` is the error's text (``str(error)``).
    """

    message: str

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its message, then every attribute is restored, except a bulk job's
        # partial ``report`` (a native object that does not pickle; it stays on this one).
        state = {k: v for k, v in self.__dict__.items() if k != "report"}
        return (type(self), (str(self.args[0]) if self.args else "",), state)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)


class ValidationError(RewardkitError, ValueError):
    """The input broke a rule and nothing was sent. ``errors`` lists every problem (for rows,
    each with its ``row`` index)."""

    errors: list[FieldError]

    def __init__(self, message: str = "", errors: Sequence[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


class APIError(RewardkitError):
    """The vendor answered with an error status.

    ``message`` is the vendor's message (``str(error)`` adds the status, error id and request
    id), ``status_code`` the HTTP status, ``request_id`` the vendor's request id, ``error_id``
    the vendor's error id as a string (QuestionPro ``"1010"``), ``name`` the vendor's error
    name, ``docs`` its documentation link, ``errors`` the vendor's field errors, ``body`` the
    raw response body, ``retry_after`` the wait the server asked for in seconds, and
    ``vendor`` ``"questionpro"`` or ``"splio"``.
    """

    status_code: int | None
    request_id: str | None
    error_id: str | None
    name: str | None
    docs: str | None
    errors: list[FieldError]
    body: str
    retry_after: float | None
    vendor: str | None

    def __init__(
        self,
        text: str = "",
        *,
        message: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        error_id: str | None = None,
        name: str | None = None,
        docs: str | None = None,
        errors: Sequence[FieldError] | None = None,
        body: str = "",
        retry_after: float | None = None,
        vendor: str | None = None,
    ) -> None:
        super().__init__(text)
        self.message = text if message is None else message
        self.status_code = status_code
        self.request_id = request_id
        self.error_id = error_id
        self.name = name
        self.docs = docs
        self.errors = list(errors or [])
        self.body = body
        self.retry_after = retry_after
        self.vendor = vendor


class BadRequestError(APIError):
    """400, and any other 4xx without a class of its own."""


class AuthenticationError(APIError):
    """401: the key was refused (also Splio refusing the key, which it answers with 400)."""


class PermissionDeniedError(APIError):
    """403: the key may not do this."""


class NotFoundError(APIError):
    """404: no such resource (e.g. no reward with that external id)."""


class RateLimitError(APIError):
    """429 that retries did not get past, or a spent call quota. ``retry_after`` is how long
    the server asked to wait, in seconds (``None`` when it did not say)."""


class InternalServerError(APIError):
    """5xx: the vendor failed. For points, the rows of a 500 were not awarded."""


class APIConnectionError(RewardkitError):
    """No answer could be had, and the request did not reach the server (it is safe to send
    again)."""


class APITimeoutError(APIConnectionError):
    """Connecting (or a request that is safe to repeat) timed out."""


class OutcomeUnknownError(RewardkitError):
    """The request was sent and no definitive answer came: it may or may not have been
    applied. Check before sending it again.

    ``cause`` is ``"timeout"``, ``"connection_lost"``, ``"gateway"`` (a 502/504) or
    ``"unreadable_body"``; ``status_code``, ``request_id`` and ``body`` are set when an
    answer came.
    """

    cause: str
    status_code: int | None
    request_id: str | None
    body: str | None

    def __init__(
        self,
        message: str = "",
        *,
        cause: str = "timeout",
        status_code: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
