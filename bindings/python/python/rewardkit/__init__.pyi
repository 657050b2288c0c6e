"""Type stubs of the package ``rewardkit`` (the runtime module is ``__init__.py``)."""

from ._native import AsyncQuestionPro as AsyncQuestionPro
from ._native import AsyncSplio as AsyncSplio
from ._native import AwardResult as AwardResult
from ._native import BulkReport as BulkReport
from ._native import ChunkReport as ChunkReport
from ._native import CustomField as CustomField
from ._native import Progress as Progress
from ._native import QuestionPro as QuestionPro
from ._native import Reward as Reward
from ._native import RowOutcome as RowOutcome
from ._native import Sandbox as Sandbox
from ._native import SkippedItem as SkippedItem
from ._native import Splio as Splio
from ._native import Totals as Totals
from ._native import __version__ as __version__
from ._native import validate_reward as validate_reward
from ._native import validate_rows as validate_rows
from .errors import APIConnectionError as APIConnectionError
from .errors import APIError as APIError
from .errors import APITimeoutError as APITimeoutError
from .errors import AuthenticationError as AuthenticationError
from .errors import BadRequestError as BadRequestError
from .errors import FieldError as FieldError
from .errors import InternalServerError as InternalServerError
from .errors import NotFoundError as NotFoundError
from .errors import OutcomeUnknownError as OutcomeUnknownError
from .errors import PermissionDeniedError as PermissionDeniedError
from .errors import RateLimitError as RateLimitError
from .errors import RewardkitError as RewardkitError
from .errors import ValidationError as ValidationError
from .types import Row as Row
from .types import Rows as Rows

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
