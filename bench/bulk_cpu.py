"""Where a bulk job's time goes: the same 100,000-row job as ``bulk_award.py``, run many times,
with the CPU time of the client process and of the sandbox process per job.

    .venv/bin/python bench/bulk_cpu.py [--input list|frame] [--runs 40] [--sandbox PATH]

Wall-clock medians on a shared 2-core machine move by 20% from one minute to the next; the
CPU seconds each side spends per job (from /proc/PID/stat) move less, and tell whether a
change made the client or the sandbox cheaper. Used to measure the steps in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bulk_award import ROOT, Server, make_rows


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    import rewardkit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", choices=["list", "frame"], default="list")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--sandbox", default=os.path.join(ROOT, "target", "release", "rewardkit"))
    args = ap.parse_args()

    rows: object = make_rows(args.rows)
    if args.input == "frame":
        import pandas as pd

        rows = pd.DataFrame(rows)
    server = Server(args.sandbox)
    try:
        qp = rewardkit.QuestionPro(api_key=server.key, base_url=server.url, rate_limit=None)
        walls, client, sandbox = [], [], []
        for _ in range(args.runs):
            server.reset()
            c0, s0 = cpu_seconds(os.getpid()), cpu_seconds(server.proc.pid)
            t = time.perf_counter()
            report = qp.bulk_award(rows, batch_size=500, concurrency=8)
            walls.append(time.perf_counter() - t)
            client.append(cpu_seconds(os.getpid()) - c0)
            sandbox.append(cpu_seconds(server.proc.pid) - s0)
            assert report.totals.awarded == args.rows, report
    finally:
        server.close()
    ms = 1e3
    print(
        f"{args.rows:,} rows ({args.input}), {args.runs} runs: wall median {statistics.median(walls) * ms:.1f} ms "
        f"(min {min(walls) * ms:.1f}); CPU per job: client {statistics.mean(client) * ms:.1f} ms, "
        f"sandbox {statistics.mean(sandbox) * ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
