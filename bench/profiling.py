"""Sample the server with py-spy while a scenario runs, and say where the time goes.

``run.py --profile`` starts ``py-spy record --native`` on the Pulseboard
process once every subscriber is connected, and stops it when the load ends.
:func:`breakdown` sorts the samples into a few buckets (the socket write
syscall, Hypercorn/h11, asyncio wake-ups, our broker and stream code, the
publish request, garbage collection, ...) by the innermost frame that names
one; ``python bench/profiling.py FILE`` prints them for a saved raw profile.

py-spy is a dev tool, not a dependency of the server: ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLE_RATE_HZ = 100

# (bucket, substrings of a frame): the innermost frame matching one decides the bucket.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("socket write syscall", ("write (libc", "writev (libc", "send (libc", "sendmsg (libc")),
    ("getpid (asyncio loop lookups)", ("getpid (libc",)),
    ("garbage collector", ("gc_collect",)),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("asyncio wake-ups (Event, Lock, wait_for)", ("asyncio/locks.py", "asyncio/tasks.py")),
    ("Hypercorn + h11 + asyncio streams per write", ("hypercorn/", "h11/", "asyncio/streams.py")),
    ("broker: append, wake, take", ("app/broker/",)),
    (
        "stream loop, frames, metrics",
        (
            "app/web/streaming/",
            "app/sse.py",
            "app/filters.py",
            "app/serve/metrics.py",
            "chunk_writer",
        ),
    ),
    ("publish request (Quart, werkzeug, API)", ("quart/", "werkzeug/", "app/web/", "msgspec")),
    ("event loop (uvloop, epoll)", ("uvloop", "epoll", "Runner.run")),
)
OTHER = "other"


def pyspy() -> str | None:
    """The py-spy executable beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, output: Path, core: str) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` (raw collapsed stacks to ``output``), py-spy pinned to ``core``."""
    executable = pyspy()
    if executable is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    argv = [
        "taskset", "-c", core, executable, "record", "--pid", str(pid), "--native",
        "--rate", str(SAMPLE_RATE_HZ), "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop sampling; py-spy writes its output on SIGINT."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (``a;b;c N``, root first) as frame tuples with sample counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def bucket_of(frames: tuple[str, ...]) -> str:
    """The bucket of the innermost frame that matches one."""
    for frame in reversed(frames):
        for name, markers in BUCKETS:
            if any(marker in frame for marker in markers):
                return name
    return OTHER


def breakdown(path: Path) -> dict[str, float]:
    """Share of samples per bucket, largest first."""
    stacks = read_stacks(path)
    total = sum(stacks.values()) or 1
    shares: Counter[str] = Counter()
    for frames, count in stacks.items():
        shares[bucket_of(frames)] += count
    return {name: count / total for name, count in shares.most_common()}


def top_frames(path: Path, limit: int = 25) -> list[tuple[str, float]]:
    """The innermost frames that hold the most samples (self time)."""
    stacks = read_stacks(path)
    total = sum(stacks.values()) or 1
    leaves: Counter[str] = Counter()
    for frames, count in stacks.items():
        leaves[frames[-1]] += count
    return [(frame, count / total) for frame, count in leaves.most_common(limit)]


def main() -> None:
    """Print the buckets (and µs per delivered event when given) and the top frames."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, help="a py-spy --format raw output")
    parser.add_argument("--us-per-event", type=float, help="server CPU µs per delivered event")
    args = parser.parse_args()
    for name, share in breakdown(args.raw).items():
        per_event = f"  {share * args.us_per_event:6.1f} µs" if args.us_per_event else ""
        print(f"{share:6.1%}{per_event}  {name}")
    print()
    for frame, share in top_frames(args.raw):
        print(f"{share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
