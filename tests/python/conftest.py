"""Shared fixtures: one sandbox for the session, reset before every test, and clients
pointed at it with short timeouts and tiny backoffs."""

from __future__ import annotations

import json
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import rewardkit

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"

# Short waits so retries and timeouts stay quick.
FAST: dict[str, Any] = {"timeout": 5.0, "max_retries": 2, "backoff": 0.01, "max_backoff": 0.05}


def load_cases(name: str) -> list[dict[str, Any]]:
    with open(CASES / name, encoding="utf-8") as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def dead_port() -> int:
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[rewardkit.Sandbox]:
    with rewardkit.Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(sandbox_server: rewardkit.Sandbox) -> Iterator[rewardkit.Sandbox]:
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.clear_faults()


@pytest.fixture
def qp(sb: rewardkit.Sandbox) -> rewardkit.QuestionPro:
    return sb.questionpro(**FAST)


@pytest.fixture
def sp(sb: rewardkit.Sandbox) -> rewardkit.Splio:
    return sb.splio(**FAST)
