"""The package itself: names, stubs and py.typed in the wheel, docstrings, a cheap import."""

from __future__ import annotations

import inspect
import os
import pathlib
import subprocess
import sys

import rewardkit

DESIGN_NAMES = {
    "QuestionPro",
    "AsyncQuestionPro",
    "Splio",
    "AsyncSplio",
    "Sandbox",
    "validate_reward",
    "FieldError",
    "RewardkitError",
    "ValidationError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APITimeoutError",
    "OutcomeUnknownError",
}


def test_public_names() -> None:
    assert DESIGN_NAMES <= set(rewardkit.__all__)
    for name in rewardkit.__all__:
        assert hasattr(rewardkit, name), name
    assert rewardkit.__version__ == "0.1.0"


def test_stubs_and_marker_are_installed() -> None:
    pkg = pathlib.Path(rewardkit.__file__).parent
    for f in ("py.typed", "__init__.pyi", "_native.pyi", "errors.py"):
        assert (pkg / f).is_file(), f


def test_every_public_class_and_method_has_a_docstring() -> None:
    missing = []
    for name in rewardkit.__all__:
        obj = getattr(rewardkit, name)
        if name.startswith("__") or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                doc = getattr(member, "__doc__", None)
                slots = vars(obj).get("__slots__")
                if not doc and isinstance(slots, dict):
                    doc = slots.get(attr)  # documented slots, as help() shows them
                if not (doc or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_import_starts_no_thread() -> None:
    """Import is cheap: the runtime and its threads are created on the first call only."""
    if not os.path.isdir("/proc/self/task"):
        return
    code = (
        "import os; before = len(os.listdir('/proc/self/task')); import rewardkit; "
        "after = len(os.listdir('/proc/self/task')); print(before, after)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert out[0] == out[1], out
