"""The examples in examples/python run and do what they say."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

EXAMPLES = ROOT / "examples" / "python"


def run(name: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_award_points_script() -> None:
    out = run("award_points.py")
    assert "awarded 2 rows" in out
    assert "caught before sending" in out
    assert "ledger" in out


def test_walkthrough() -> None:
    out = run("walkthrough.py")
    assert "ValidationError" in out
    assert "ledger" in out


def test_bulk_award_script() -> None:
    out = run("bulk_award.py")
    assert "first run: awarded 4500 rows, failed 500" in out
    assert "second run: 1 request(s) sent, 9 chunks from the journal" in out
    assert "complete: True" in out
    assert "caught before sending: 2 problem(s)" in out
