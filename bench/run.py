"""Benchmark Pulseboard against the naive Quart baseline; print a table, write JSON.

Each scenario starts the server under test pinned to one core (``taskset``),
drives it with ``bench/bin/loadgen`` pinned to the other, then does the same
with ``bench/baseline.py`` in the same invocation, so every figure comes with
a ratio that survives a noisy machine. Scenarios (DESIGN section 12, issue 7):

- S1 idle capacity: 1,000 and 10,000 idle subscribers; connect time, KiB per
  connection (server RSS delta / N).
- S2 fan-out: 1,000 subscribers, 50 events/s for 10 s.
- S3 saturation: 1,000 subscribers, the rate stepped up until two steps in a
  row fail (p99 > 250 ms, loss or a cut subscriber); the best passing step.
- S4 publish-heavy: 10 subscribers, 5,000 publishes/s as single POSTs and as
  NDJSON batches.
- S5 log path: lines appended to a tailed file at 50 lines/s, 100 subscribers.
- S2-sqlite, S4-post-sqlite, S4-ndjson-sqlite: S2 and S4 with the broker on
  ``sqlite://`` (a file in the run's temp dir; Pulseboard only: compare with
  the memory:// rows of the same run); the database's size after the run.
- S6 stalled neighbours: 20 subscribers beside 200 that never read, 1,500
  ev/s in NDJSON batches, three steps of 8 s (the stalled ones are cut in
  the first); S6-alone, the same 20 without them, is the control.
  Pulseboard only (the baseline queues without bound for a client that
  never reads).
- Boards and filtered viewers (issue 18, points 1 and 2; Pulseboard only: the
  baseline has neither html, several channels per stream nor filters):
  S2-html (S2 as ``format=html``); board (1,000 html streams of a log, a
  ticker, a chat and a notify channel, 50 ev/s over the four); log-html
  (1,000 unfiltered html viewers of the tailed log, 50 lines/s: the control);
  filtered (the same with 500 distinct ``q=`` filters, all matching);
  filtered-200 (200 lines/s, each filter matching one line in ten). The
  table's end gives each html scenario's CPU per delivery over S2's.

``--quick`` runs S2 at 200 subscribers and a 5 s filtered step (under a
minute): run it before and after a change to the hot path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import profiling

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LOADGEN = ROOT / "bench" / "bin" / "loadgen"
RESULTS = ROOT / "bench" / "results"
SERVER_CORE = "0"
LOAD_CORE = "1"
SERVERS = ("pulseboard", "baseline")
S3_RATES = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200)
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
RSS_SETTLE_S = 1.0
BUSY_PRESSURE = 0.1
S6_FLAGS = ("-batch", "50", "-pub-conns", "8", "-stop-after", "9")
# Enough publishing connections that a server slow to answer POSTs still gets
# them on schedule (a publish waits in its queue, not in ours).
OPEN_LOOP = ("-pub-conns", "32")


@dataclass(frozen=True)
class Scenario:
    """One load shape, run against each server in turn."""

    key: str
    title: str
    subs: int
    mode: str = "post"
    rates: tuple[float, ...] = (50,)
    step_s: float = 10.0
    flags: tuple[str, ...] = ()
    log: bool = False
    hold_s: float = 0.0
    phased: bool = False
    servers: tuple[str, ...] = ("pulseboard", "baseline")
    broker: str = "memory"
    extra_config: str = ""  # TOML appended to Pulseboard's config (channels, sources)

    @property
    def channel(self) -> str:
        """The channel subscribed to: the tailed file's for S5, ``bench`` otherwise."""
        return "log.bench" if self.log else "bench"

    @property
    def deadline_s(self) -> float:
        """A bound on the whole loadgen run: connect, every step with its drain, margin."""
        return 90 + self.hold_s + len(self.rates) * (self.step_s + 4)


FULL: tuple[Scenario, ...] = (
    Scenario("S1-1k", "idle capacity, 1,000 subscribers", 1_000, mode="none", hold_s=3),
    Scenario("S1-10k", "idle capacity, 10,000 subscribers", 10_000, mode="none", hold_s=3),
    Scenario("S2", "fan-out, 1,000 subscribers x 50 ev/s", 1_000, flags=OPEN_LOOP),
    Scenario(
        "S3", "saturation, 1,000 subscribers", 1_000, rates=S3_RATES, step_s=4, flags=OPEN_LOOP
    ),
    Scenario(
        "S4-post",
        "publish-heavy, 5,000 single POSTs/s, 10 subscribers",
        10,
        rates=(5_000,),
        flags=("-pub-conns", "16"),
    ),
    Scenario(
        "S4-ndjson",
        "publish-heavy, 5,000 ev/s in NDJSON batches of 50, 10 subscribers",
        10,
        mode="ndjson",
        rates=(5_000,),
        flags=("-batch", "50", "-pub-conns", "4"),
    ),
    Scenario("S5", "log path, 50 lines/s, 100 subscribers", 100, mode="file", log=True),
    Scenario(
        "S6",
        "stalled neighbours, 20 subscribers beside 200 that never read, 1,500 ev/s",
        20,
        mode="ndjson",
        rates=(1_500, 1_500, 1_500),
        step_s=8,
        flags=("-stalled", "200", *S6_FLAGS),
        phased=True,
        servers=("pulseboard",),
    ),
    Scenario(
        "S6-alone",
        "S6's 20 subscribers alone, 1,500 ev/s (the control)",
        20,
        mode="ndjson",
        rates=(1_500, 1_500, 1_500),
        step_s=8,
        flags=S6_FLAGS,
        phased=True,
        servers=("pulseboard",),
    ),
)
FULL += tuple(
    replace(
        scenario,
        key=f"{scenario.key}-sqlite",
        title=f"{scenario.title}, sqlite://",
        servers=("pulseboard",),
        broker="sqlite",
    )
    for scenario in FULL
    if scenario.key in ("S2", "S4-post", "S4-ndjson")
)

# -- boards and filtered viewers (issue 18, points 1 and 2) -----------------------------
# The baseline has one JSON channel per stream and no filter: these run on Pulseboard
# alone; compare with S2 (JSON, same invocation).
# The board: log.bench (the tailed file), chat and notify (POSTed by loadgen, 37.5 ev/s
# in turn) and a ticker whose source publishes 8 symbols every 0.64 s (12.5 quotes/s):
# 50 ev/s in all. loadgen counts ticker frames apart (no stamp): "unstamped".
BOARD_RATE = 37.5
BOARD_CHANNELS = "log.bench,ticker.board,chat.board,notify.board"
BOARD_CONFIG = (
    '[[channels]]\nname = "chat.board"\nkind = "chat"\n'
    '[[channels]]\nname = "notify.board"\nkind = "notify"\n'
    '[[channels]]\nname = "ticker.board"\nkind = "ticker"\n'
    '[[sources]]\ntype = "ticker"\nchannel = "ticker.board"\ninterval = 0.64\n'
    'symbols = ["ACME", "INITECH", "GLOBEX", "UMBRELLA", "HOOLI", "STARK", "WAYNE", "CYBER"]\n'
)
VIEWERS = (
    Scenario(
        "S2-html",
        "fan-out, 1,000 format=html subscribers x 50 ev/s",
        1_000,
        flags=(*OPEN_LOOP, "-format", "html"),
        servers=("pulseboard",),
    ),
    Scenario(
        "board",
        "the board: 1,000 html viewers of ticker+log+chat+notify, 50 ev/s over the four",
        1_000,
        rates=(BOARD_RATE,),
        flags=(*OPEN_LOOP, "-format", "html", "-board", BOARD_CHANNELS),
        log=True,
        servers=("pulseboard",),
        extra_config=BOARD_CONFIG,
    ),
    Scenario(
        "log-html",
        "log viewers unfiltered (the control), 1,000 html x 50 lines/s",
        1_000,
        mode="file",
        log=True,
        flags=("-format", "html"),
        servers=("pulseboard",),
    ),
    Scenario(
        "filtered",
        "filtered log viewers, 1,000 html x 50 lines/s, 500 distinct q=, all matching",
        1_000,
        mode="file",
        log=True,
        flags=("-format", "html", "-queries", "500"),
        servers=("pulseboard",),
    ),
    Scenario(
        "filtered-200",
        "filtered log viewers, 1,000 html x 200 lines/s, 500 distinct q=, each 1 line in 10",
        1_000,
        mode="file",
        log=True,
        rates=(200,),
        flags=("-format", "html", "-queries", "500", "-match-every", "10"),
        servers=("pulseboard",),
    ),
)
FULL += VIEWERS
QUICK = (
    Scenario("S2-200", "fan-out, 200 subscribers x 50 ev/s", 200, flags=OPEN_LOOP),
    Scenario(
        "filtered-quick",
        "filtered log viewers, 200 html x 50 lines/s for 5 s, 100 distinct q=",
        200,
        mode="file",
        log=True,
        step_s=5,
        flags=("-format", "html", "-queries", "100"),
        servers=("pulseboard",),
    ),
)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pulseboard_config(
    workdir: Path,
    log_path: Path | None,
    broker: str = "memory",
    extra: str = "",
) -> Path:
    """A config for the bench channel (the tailed file, ``extra``), with limits out of the way."""
    url = f"sqlite:///{workdir}/pb.db" if broker == "sqlite" else "memory://"
    text = (
        "[server]\nmax_lag = 1000\nheartbeat = 15.0\n"
        f'[broker]\nhistory = 1000\nurl = "{url}"\n'
        "[limits]\nstreams_per_client = 20000\npublish_rate = 1000000.0\n"
        "publish_burst = 1000000\nchat_rate = 1000000.0\nchat_burst = 1000000\n"
        '[[channels]]\nname = "bench"\nkind = "notify"\n'
    )
    text += extra
    if log_path is not None:
        text += (
            f'[[sources]]\ntype = "logtail"\npath = "{log_path}"\n'
            'channel = "log.bench"\nlines = 0\n'
        )
    path = workdir / "pulseboard.toml"
    path.write_text(text)
    return path


@dataclass
class Server:
    """A server under test in a subprocess, pinned to the server core."""

    name: str
    argv: list[str]
    port: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process and wait until it answers ``GET /api/channels``."""
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, *self.argv],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_file}")
            if _answers(self.url + "/api/channels"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT_S} s; see {self.log_file}")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL if it lingers ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int:
        """Resident set size, KiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_s(self) -> float:
        """User plus system CPU seconds used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def running(
    name: str,
    workdir: Path,
    log_path: Path | None,
    broker: str = "memory",
    extra_config: str = "",
) -> Iterator[Server]:
    """One server under test, stopped however the block ends."""
    port = free_port()
    bind = f"127.0.0.1:{port}"
    if name == "pulseboard":
        config = pulseboard_config(workdir, log_path, broker, extra_config)
        argv = [str(PYTHON), "-m", "app", "serve", "--config", str(config), "--bind", bind]
    else:
        argv = [str(PYTHON), str(ROOT / "bench" / "baseline.py"), "--bind", bind]
        if log_path is not None:
            argv += ["--log", str(log_path), "--log-channel", "log.bench"]
    server = Server(name, argv, port, workdir / f"{name}.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def loadgen_argv(scenario: Scenario, server: Server, log_path: Path | None) -> list[str]:
    """The loadgen command line for ``scenario`` against ``server``, pinned to the load core."""
    argv = [
        "taskset", "-c", LOAD_CORE, str(LOADGEN),
        "-url", server.url,
        "-channel", scenario.channel,
        "-subs", str(scenario.subs),
        "-mode", scenario.mode,
        "-rates", ",".join(f"{rate:g}" for rate in scenario.rates),
        "-step", f"{scenario.step_s:g}s",
        "-hold", f"{scenario.hold_s:g}s",
        "-deadline", f"{scenario.deadline_s:g}s",
        *scenario.flags,
    ]  # fmt: skip
    if log_path is not None:
        argv += ["-file", str(log_path)]
    return argv


def drive(
    scenario: Scenario, server: Server, log_path: Path | None, profile: Path | None
) -> dict[str, Any]:
    """Run loadgen against ``server``; its JSON lines plus server RSS and CPU samples.

    Each record gets ``server_cpu_s``: the server's CPU seconds since the previous record.
    With ``profile``, py-spy samples the server from "connected" to the end of the load.
    """
    _warm_up(server)
    rss_before = server.rss_kib()
    cpu_before = server.cpu_s()
    started = time.monotonic()
    records: list[dict[str, Any]] = []
    sampler = None
    argv = loadgen_argv(scenario, server, log_path)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as load:
        assert load.stdout is not None
        for line in load.stdout:
            record = json.loads(line)
            cpu_now = server.cpu_s()
            record["server_cpu_s"], cpu_before = cpu_now - cpu_before, cpu_now
            record["cpu_pressure"] = cpu_pressure()
            if record["event"] == "connected":
                time.sleep(min(RSS_SETTLE_S, scenario.hold_s))
                record["server_rss_kib"] = server.rss_kib()
                if profile is not None:
                    sampler = profiling.start(server.pid, profile, LOAD_CORE)
            records.append(record)
        code = load.wait(timeout=scenario.deadline_s)
    if sampler is not None:
        profiling.stop(sampler)
    return {
        "loadgen_exit": code,
        "rss_before_kib": rss_before,
        "wall_s": time.monotonic() - started,
        "loadavg": os.getloadavg(),
        "records": records,
        "server_cuts": server_cuts(server) if server.name == "pulseboard" else None,
    }


def server_cuts(server: Server) -> int | None:
    """Streams the server cut for being slow (``/metrics``), if it answers."""
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    lines = text.splitlines()
    prefix = "pulseboard_slow_client_disconnects_total"
    return int(sum(float(line.split()[-1]) for line in lines if line.startswith(prefix)))


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (PSI), if known.

    Near 0 on a quiet machine; a high figure means neighbours competed for the cores.
    """
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(line.split()[1].removeprefix("avg10=")) / 100


def _warm_up(server: Server) -> None:
    """Touch the endpoints once so lazy imports and first-request allocations are done."""
    for _ in range(3):
        _answers(server.url + "/api/channels")


def summarize(scenario: Scenario, run: dict[str, Any]) -> dict[str, Any]:
    """The figures that matter for ``scenario`` out of one run's records."""
    records = run["records"]
    connected = next((r for r in records if r["event"] == "connected"), None)
    steps = [r for r in records if r["event"] == "step"]
    if connected is None or run["loadgen_exit"] != 0:
        return {"error": f"loadgen exit {run['loadgen_exit']}", "connected": connected}
    if scenario.mode == "none":
        delta = connected["server_rss_kib"] - run["rss_before_kib"]
        return {
            "connected": connected["subs"],
            "failed": connected["failed"],
            "connect_s": connected["connect_s"],
            "kib_per_conn": delta / max(1, connected["subs"]),
        }
    if scenario.phased:
        return _phases(steps, run.get("server_cuts"))
    if len(scenario.rates) > 1:
        return _saturation(steps)
    step = steps[0]
    return {
        "publish_rate": step["publish_rate"],
        "delivered_per_s": step["delivered_per_s"],
        "received": step["received"],
        "loss": step["loss"],
        "p50_ms": step["p50_ms"],
        "p99_ms": step["p99_ms"],
        "max_ms": step["max_ms"],
        "loadgen_cpu": step["loadgen_cpu"],
        "server_cpu": step["server_cpu_s"] / step["wall_s"],
        "cpu_us_per_delivery": _us_per_delivery(steps),
        "db_mib": run["db_bytes"] / 2**20 if run.get("db_bytes") else None,
    }


def _us_per_delivery(steps: list[dict[str, Any]]) -> float | None:
    """Server CPU per delivered event over the steps (publishing included)."""
    received = sum(step["received"] + step.get("unstamped", 0) for step in steps)
    return 1e6 * sum(step["server_cpu_s"] for step in steps) / received if received else None


def _saturation(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The best passing step; stepping stops after two failed steps in a row."""
    passed = [step for step in steps if not step["failed"]]
    best = max(passed, key=lambda step: step["delivered_per_s"], default=None)
    first_failed = next((step for step in steps if step["failed"]), None)
    return {
        "sustained_per_s": best["delivered_per_s"] if best else 0.0,
        "sustained_rate": best["rate"] if best else 0,
        "sustained_p99_ms": best["p99_ms"] if best else None,
        "loadgen_cpu": best["loadgen_cpu"] if best else None,
        "first_failed_rate": first_failed["rate"] if first_failed else None,
        "cpu_us_per_delivery": _us_per_delivery(steps),
        "steps": [
            {k: s[k] for k in ("rate", "delivered_per_s", "p99_ms", "loss", "failed")}
            | {"loadgen_cpu": s["loadgen_cpu"], "server_cpu": s["server_cpu_s"] / s["wall_s"]}
            for s in steps
        ],
    }


def _phases(steps: list[dict[str, Any]], cuts: int | None) -> dict[str, Any]:
    """The healthy subscribers' figures step by step, the worst step, the server's cuts (S6)."""
    return {
        "stalled_cut": cuts,
        "publish_rate_by_step": [step["publish_rate"] for step in steps],
        "worst_p99_ms": max(step["p99_ms"] for step in steps),
        "p99_ms_by_step": [step["p99_ms"] for step in steps],
        "loss": sum(step["loss"] for step in steps),
        "delivered_per_s": min(step["delivered_per_s"] for step in steps),
        "disconnects": sum(step["disconnects"] for step in steps),
        "cpu_us_per_delivery": _us_per_delivery(steps),
    }


# (summary key, label, True when higher is better)
METRICS: dict[str, list[tuple[str, str, bool]]] = {
    "none": [("connect_s", "connect s", False), ("kib_per_conn", "KiB/conn", False)],
    "saturation": [
        ("sustained_per_s", "sustained deliveries/s", True),
        ("sustained_p99_ms", "p99 ms at that rate", False),
        ("cpu_us_per_delivery", "server CPU us/delivery", False),
    ],
    "rate": [
        ("publish_rate", "accepted ev/s", True),
        ("delivered_per_s", "delivered/s", True),
        ("loss", "loss", False),
        ("p50_ms", "p50 ms", False),
        ("p99_ms", "p99 ms", False),
        ("max_ms", "max ms", False),
        ("cpu_us_per_delivery", "server CPU us/delivery", False),
        ("db_mib", "database MiB after the run (sqlite://)", False),
    ],
    "stalled": [
        ("worst_p99_ms", "worst step p99 ms (healthy)", False),
        ("p99_ms_by_step", "p99 ms by step", False),
        ("loss", "loss (healthy)", False),
        ("disconnects", "healthy cut", False),
        ("stalled_cut", "stalled cut", True),
        ("publish_rate_by_step", "accepted ev/s by step", True),
    ],
}


def table_rows(scenario: Scenario, summaries: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Rows of scenario, metric, Pulseboard, baseline, gain (> 1: Pulseboard is better)."""
    shape = (
        "none"
        if scenario.mode == "none"
        else "stalled"
        if scenario.phased
        else "saturation"
        if len(scenario.rates) > 1
        else "rate"
    )
    ours, base = summaries.get("pulseboard", {}), summaries.get("baseline", {})
    rows = []
    for key, label, higher_better in METRICS[shape]:
        mine, theirs = ours.get(key), base.get(key)
        rows.append(
            [scenario.key, label, _fmt(mine), _fmt(theirs), _gain(mine, theirs, higher_better)]
        )
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " / ".join(_fmt(item) for item in value)
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def _gain(mine: Any, theirs: Any, higher_better: bool) -> str:
    if not isinstance(mine, int | float) or not isinstance(theirs, int | float):
        return "-"
    if mine <= 0 or theirs <= 0:
        return "-"
    ratio = mine / theirs if higher_better else theirs / mine
    return f"{ratio:.2f}x"


def versus_json(done: dict[str, Any]) -> dict[str, float]:
    """Each html scenario's server CPU per delivery over S2's (JSON) in the same run."""

    def cost(key: str) -> Any:
        return done.get(key, {}).get("summary", {}).get("pulseboard", {}).get("cpu_us_per_delivery")

    json_cost = cost("S2")
    if not json_cost:
        return {}
    return {
        key: cost(key) / json_cost
        for key in ("S2-html", "board", "log-html", "filtered")
        if isinstance(cost(key), int | float)
    }


def print_table(rows: list[list[str]]) -> None:
    """A plain-text table on stdout."""
    header = ["scenario", "metric", "pulseboard", "baseline", "gain"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
        "cpu_pressure_start": cpu_pressure(),
        **tree(),
    }


def tree() -> dict[str, Any]:
    """The commit measured, and the files of app/ that differ from it (others' work in progress)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "app_changes": git("status", "--short", "app")}


def raise_file_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit; servers and loadgen inherit it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run_scenario(
    scenario: Scenario, servers: tuple[str, ...], repeat: int, profile_dir: Path | None
) -> dict[str, Any]:
    """Run ``scenario`` ``repeat`` times against each server in turn; raw runs and medians.

    With ``profile_dir``, Pulseboard is sampled with py-spy into ``<dir>/profile-<key>.txt``.
    """
    servers = tuple(name for name in servers if name in scenario.servers)
    results: dict[str, Any] = {"title": scenario.title, "runs": {name: [] for name in servers}}
    for attempt in range(repeat):
        for name in servers:
            profile = None
            if profile_dir is not None and name == "pulseboard" and attempt == 0:
                profile = profile_dir / f"profile-{scenario.key}.txt"
            print(f"{scenario.key} {name} run {attempt + 1}/{repeat}", file=sys.stderr, flush=True)
            try:
                run = run_once(scenario, name, profile)
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                print(f"{scenario.key} {name}: {error}", file=sys.stderr, flush=True)
                run = {"error": str(error), "loadgen_exit": None, "records": []}
            results["runs"][name].append(run)
            if profile is not None and profile.exists():
                results["profile"] = {
                    "raw": str(profile.relative_to(ROOT)),
                    "buckets": profiling.breakdown(profile),
                    "top_frames": profiling.top_frames(profile),
                }
    results["summary"] = {
        name: median_summary([summarize(scenario, run) for run in runs])
        for name, runs in results["runs"].items()
    }
    return results


def run_once(scenario: Scenario, name: str, profile: Path | None) -> dict[str, Any]:
    """One server, fresh in a temp dir, under one scenario."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{scenario.key}-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "bench.log" if scenario.log else None
        if log_path is not None:
            log_path.touch()
        with running(name, workdir, log_path, scenario.broker, scenario.extra_config) as server:
            run = drive(scenario, server, log_path, profile)
            files = [workdir / f"pb.db{suffix}" for suffix in ("", "-wal")]
            run["db_bytes"] = sum(f.stat().st_size for f in files if f.exists()) or None
            return run


def median_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median over runs of numbers; other values from the first run."""
    merged = dict(summaries[0])
    for key, value in merged.items():
        values = [summary.get(key) for summary in summaries]
        numbers = [v for v in values if isinstance(v, int | float)]
        if isinstance(value, int | float) and len(numbers) == len(values):
            merged[key] = statistics.median(numbers)
    merged["runs"] = len(summaries)
    return merged


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="S2 at 200 subscribers, a short filtered step"
    )
    parser.add_argument("--only", help="comma-separated scenario keys, e.g. S2,S3")
    parser.add_argument("--servers", default=",".join(SERVERS), help="pulseboard,baseline")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server; medians reported")
    parser.add_argument(
        "--profile", action="store_true", help="sample Pulseboard with py-spy (figures skew)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios, print the table, write ``bench/results/*.json``."""
    args = parse_args(argv)
    if not LOADGEN.exists():
        print(f"{LOADGEN} is missing: build it with `make bench`", file=sys.stderr)
        return 2
    scenarios: tuple[Scenario, ...] = QUICK if args.quick else FULL
    if args.only:
        wanted = set(args.only.split(","))
        scenarios = tuple(s for s in (*FULL, *QUICK) if s.key in wanted)
    servers = tuple(args.servers.split(","))
    report: dict[str, Any] = {"machine": machine(), "file_limit": raise_file_limit()}
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows: list[list[str]] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = {}
    for scenario in scenarios:
        done[scenario.key] = run_scenario(
            scenario, servers, args.repeat, RESULTS if args.profile else None
        )
        rows += table_rows(scenario, done[scenario.key]["summary"])
    report["scenarios"] = done
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["machine"]["cpu_pressure_end"] = cpu_pressure()
    report["table"] = rows
    print_table(rows)
    report["versus_json"] = versus_json(done)
    for key, ratio in report["versus_json"].items():
        print(f"{key}: server CPU per delivery {ratio:.2f}x S2's (JSON, this run)")
    pressures = [
        record["cpu_pressure"]
        for scenario in done.values()
        for runs in scenario["runs"].values()
        for run in runs
        for record in run["records"]
        if record.get("cpu_pressure") is not None
    ]
    if pressures and max(pressures) > BUSY_PRESSURE:
        print(
            f"note: the machine was busy (CPU pressure up to {max(pressures):.0%}): "
            "trust the gains and the CPU per delivery more than the latencies",
            file=sys.stderr,
        )
    name = ("quick-" if args.quick else "bench-") + time.strftime("%Y%m%d-%H%M%S") + ".json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
