"""A bulk points job from Python: rewardkit's ``bulk_award`` vs. the same job written the usual ways.

The job: N rows (default 100,000) as a list of snake_case dicts, awarded in batches of 500 with
8 requests in flight and no client-side pacing, against the sandbox.

- rewardkit ``QuestionPro.bulk_award`` from the list of dicts, and from a pandas DataFrame;
- a ``requests`` loop: one ``Session``, batches of 500 sent one after another;
- ``aiohttp``: one ``ClientSession``, batches of 500, 8 in flight (``asyncio.Semaphore`` +
  ``gather``), from the list and from the DataFrame (``df.to_dict("records")``, the usual way).

Every contender builds the vendor's wire body (``panelMemberID``, ``points``, ``comments``) from
the same rows, posts it, and parses the answer; after each run the sandbox's ledger is checked
(every point credited). The sandbox is the release CLI (``rewardkit sandbox --json``) in a
separate process, so its ledger is not counted in the client's memory or CPU; it is reset
(``POST /_sandbox/reset``) between runs. Runs alternate the order over several rounds and the
median is reported.

Peak memory: the streamed job (rows from a generator; ``on_invalid="stop"``, so the engine
validates every row first and spools the valid ones to a temporary file) runs in a child
process for each size in ``--memory-rows``, which reports its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, and ``VmHWM`` from /proc/self/status, which
does not inherit the parent's size through fork + exec).

``make bench-python`` runs it (after building the release CLI). Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

POINTS_PATH = "/a/api/v2/micropanel/members/points"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_rows(n: int) -> list[dict[str, Any]]:
    return [{"panel_member_id": 1_000_000 + i, "points": 1 + i % 7, "comments": "Thanks"} for i in range(n)]


def expected_points(n: int) -> int:
    return sum(1 + i % 7 for i in range(n))


def wire(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"panelMemberID": r["panel_member_id"], "points": r["points"], "comments": r["comments"]}
        for r in batch
    ]


class Server:
    """`rewardkit sandbox --json` in a child process."""

    def __init__(self, binary: str) -> None:
        self.proc = subprocess.Popen([binary, "sandbox", "--json"], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.url: str = info["url"].rstrip("/")
        self.key: str = info["questionpro_api_key"]

    def post(self, path: str) -> None:
        import requests

        requests.post(self.url + path, timeout=30).raise_for_status()

    def reset(self) -> None:
        self.post("/_sandbox/reset")

    def total_points(self) -> int:
        import requests

        return int(requests.get(self.url + "/_sandbox/ledger", timeout=120).json()["total_points"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def with_requests(url: str, key: str, rows: list[dict[str, Any]], batch: int) -> None:
    import requests

    with requests.Session() as s:
        for i in range(0, len(rows), batch):
            resp = s.post(
                url + POINTS_PATH, json=wire(rows[i : i + batch]), headers={"api-key": key}, timeout=30
            )
            resp.raise_for_status()
            resp.json()


def with_aiohttp(url: str, key: str, rows: list[dict[str, Any]], batch: int, concurrency: int) -> None:
    import aiohttp

    async def main() -> None:
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(headers={"api-key": key}) as session:

            async def send(chunk: list[dict[str, Any]]) -> None:
                async with sem, session.post(url + POINTS_PATH, json=wire(chunk)) as resp:
                    resp.raise_for_status()
                    await resp.json()

            await asyncio.gather(*(send(rows[i : i + batch]) for i in range(0, len(rows), batch)))

    asyncio.run(main())


def throughput(args: argparse.Namespace) -> None:
    import aiohttp
    import pandas as pd
    import requests

    import rewardkit

    print(
        f"Python {platform.python_version()}, rewardkit {rewardkit.__version__}, requests {requests.__version__}, "
        f"aiohttp {aiohttp.__version__}, pandas {pd.__version__}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    n, batch, conc = args.rows, args.batch, args.concurrency
    rows = make_rows(n)
    df = pd.DataFrame(rows)
    server = Server(args.sandbox)
    try:
        qp = rewardkit.QuestionPro(api_key=server.key, base_url=server.url, rate_limit=None)

        def rk_list() -> None:
            r = qp.bulk_award(rows, batch_size=batch, concurrency=conc)
            assert r.totals.awarded == n, r

        def rk_frame() -> None:
            r = qp.bulk_award(df, batch_size=batch, concurrency=conc)
            assert r.totals.awarded == n, r

        contenders: dict[str, Callable[[], None]] = {
            "rewardkit bulk_award (list of dicts)": rk_list,
            "rewardkit bulk_award (DataFrame)": rk_frame,
            "aiohttp (list of dicts)": lambda: with_aiohttp(server.url, server.key, rows, batch, conc),
            "aiohttp (DataFrame .to_dict)": lambda: with_aiohttp(
                server.url, server.key, df.to_dict("records"), batch, conc
            ),
            "requests loop (list of dicts)": lambda: with_requests(server.url, server.key, rows, batch),
        }
        want = expected_points(n)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for rnd in range(args.repeat + 1):  # round 0 warms up (connections, runtime, imports)
            order = list(contenders.items())
            if rnd % 2:
                order.reverse()
            for name, fn in order:
                server.reset()
                t = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t
                got = server.total_points()
                assert got == want, f"{name}: ledger has {got} points, expected {want}"
                if rnd:
                    times[name].append(elapsed)
    finally:
        server.close()

    print(f"\n{n:,} rows, batch {batch}, {conc} in flight, pacing off; median of {args.repeat} runs:")
    med = {k: statistics.median(v) for k, v in times.items()}
    aio, aio_df, req = (
        med["aiohttp (list of dicts)"],
        med["aiohttp (DataFrame .to_dict)"],
        med["requests loop (list of dicts)"],
    )
    for name, t in med.items():
        print(
            f"  {name:<38} {t * 1e3:8.0f} ms  {n / t:>10,.0f} rows/s   (runs: {', '.join(f'{x:.3f}' for x in times[name])} s)"
        )
    lst, frm = med["rewardkit bulk_award (list of dicts)"], med["rewardkit bulk_award (DataFrame)"]
    print("\nRatios (throughput, higher is better for rewardkit):")
    print(f"  list of dicts vs aiohttp:             {aio / lst:5.2f}x   (target >= 1.5x)")
    print(f"  list of dicts vs requests loop:       {req / lst:5.2f}x   (target >= 5x)")
    print(f"  DataFrame vs aiohttp (DataFrame):     {aio_df / frm:5.2f}x   (target >= 5x)")
    print(f"  DataFrame vs aiohttp (list of dicts): {aio / frm:5.2f}x")


def child_memory(n: int, url: str, key: str) -> None:
    """In a child process: the streamed job over `n` rows; prints JSON with the peak RSS."""
    import rewardkit

    def gen() -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {"panel_member_id": 1_000_000 + i, "points": 1 + i % 7, "comments": "Thanks"}

    qp = rewardkit.QuestionPro(api_key=key, base_url=url, rate_limit=None)
    t = time.perf_counter()
    report = qp.bulk_award(gen(), batch_size=500, concurrency=8)
    elapsed = time.perf_counter() - t
    assert report.totals.awarded == n, report
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    # ru_maxrss survives fork + exec on Linux: a child of a big parent starts at the parent's
    # size. VmHWM (this process image's own peak) does not, and is printed beside it.
    hwm_kib = None
    try:
        with open("/proc/self/status") as f:
            hwm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    print(
        json.dumps(
            {
                "rows": n,
                "elapsed": elapsed,
                "peak_rss_mib": peak_kib / 1024,
                "vm_hwm_mib": None if hwm_kib is None else hwm_kib / 1024,
            }
        )
    )


def memory(args: argparse.Namespace) -> None:
    server = Server(args.sandbox)
    results = []
    try:
        for n in args.memory_rows:
            server.reset()
            # The sandbox keeps every award it credits; on a long job its ledger is cleared
            # now and then so the sandbox process stays small (the client is not affected).
            stop = threading.Event()

            def keep_small(stop: threading.Event = stop) -> None:
                while not stop.wait(2.0):
                    server.reset()

            t = threading.Thread(target=keep_small, daemon=True)
            t.start()
            try:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child-memory",
                        str(n),
                        "--url",
                        server.url,
                        "--key",
                        server.key,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            finally:
                stop.set()
                t.join()
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.close()
    print("\nPeak RSS of the streamed job (generator input), in a child process:")
    base = results[0]["peak_rss_mib"]
    base_hwm = results[0]["vm_hwm_mib"]
    for r in results:
        hwm = (
            ""
            if r["vm_hwm_mib"] is None
            else f"  VmHWM {r['vm_hwm_mib']:7.1f} MiB {r['vm_hwm_mib'] / base_hwm:5.2f}x"
        )
        print(
            f"  {r['rows']:>12,} rows  ru_maxrss {r['peak_rss_mib']:7.1f} MiB {r['peak_rss_mib'] / base:5.2f}x{hwm}"
            f"   ({r['elapsed']:.1f} s, {r['rows'] / r['elapsed']:,.0f} rows/s)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sandbox", default=os.path.join(ROOT, "target", "release", "rewardkit"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--memory-rows", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 10_000_000]
    )
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_memory is not None:
        child_memory(args.child_memory, args.url, args.key)
        return
    # Memory first, while this process is still small (see child_memory).
    if not args.skip_memory:
        memory(args)
    if not args.skip_throughput:
        throughput(args)


if __name__ == "__main__":
    main()
