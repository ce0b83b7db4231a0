"""Reconnect storm (issue 18, point 3): clients holding cursors come back together after a restart.

``loadgen storm`` holds N EventSource-like clients on one channel, each
holding a cursor (the id of the last of a few warm-up events); this driver
then restarts the server on the same port (SIGTERM, wait for the exit,
start again). Meanwhile 1,000 events are published, and every client
reconnects at a random point of a one-second window with its Last-Event-ID.
Figures: how long until every client has read the last event (target
<= 10 s), failed connection attempts (refused, reset, or no response head
within 30 s; a client retries after 250 ms; target 0), ``/healthz`` p99
during the storm (target < 100 ms), and the ``retry:`` values told at
shutdown.

Pulseboard runs on ``sqlite://`` (the cursor survives the restart). The
naive baseline keeps no history: its clients reconnect without resume,
so only reconnect time, refusals and the probe are measured (probe
``/api/channels``, it has no ``/healthz``).

Usage: ``.venv/bin/python bench/storm.py`` (10,000 clients; about two
minutes), ``--clients 1000 --events 200`` for a short run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import profiling
from run import (
    LOAD_CORE,
    LOADGEN,
    PYTHON,
    RESULTS,
    ROOT,
    Server,
    cpu_pressure,
    free_port,
    machine,
    raise_file_limit,
)

STOP_TIMEOUT_S = 60.0
FD_MARGIN = 200


def config_text(workdir: Path, history: int) -> str:
    """Pulseboard on sqlite:// with history for every missed event, limits out of the way."""
    return (
        "[server]\nmax_lag = 5000\nheartbeat = 15.0\n"
        f'[broker]\nhistory = {history}\nurl = "sqlite:///{workdir}/pb.db"\n'
        "[limits]\nstreams_per_client = 50000\npublish_rate = 1000000.0\n"
        "publish_burst = 1000000\n"
        '[[channels]]\nname = "bench"\nkind = "notify"\n'
    )


def server_for(name: str, workdir: Path, history: int) -> Server:
    """The server under test, on a port kept across its restart."""
    port = free_port()
    bind = f"127.0.0.1:{port}"
    if name == "pulseboard":
        config = workdir / "pulseboard.toml"
        config.write_text(config_text(workdir, history))
        argv = [str(PYTHON), "-m", "app", "serve", "--config", str(config), "--bind", bind]
    else:
        argv = [str(PYTHON), str(ROOT / "bench" / "baseline.py"), "--bind", bind]
    return Server(name, argv, port, workdir / f"{name}.log")


def stop(server: Server) -> float:
    """SIGTERM and wait for the exit (10,000 streams take a while); seconds it took."""
    assert server.process is not None
    began = time.monotonic()
    server.stop(STOP_TIMEOUT_S)
    return time.monotonic() - began


def storm_once(name: str, clients: int, events: int, profile: Path | None = None) -> dict[str, Any]:
    """One server through one storm; loadgen's records plus restart and CPU figures.

    With ``profile``, py-spy samples the restarted server from publishing to the storm's end.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-storm-{name}-") as tmp:
        server = server_for(name, Path(tmp), history=events + 1000)
        resume = name == "pulseboard"
        argv = [
            "taskset", "-c", LOAD_CORE, str(LOADGEN), "storm",
            "-url", server.url,
            "-clients", str(clients),
            "-events", str(events),
            f"-resume={'true' if resume else 'false'}",
            "-probe", "/healthz" if resume else "/api/channels",
            "-deadline", "300s",
        ]  # fmt: skip
        records: list[dict[str, Any]] = []
        run: dict[str, Any] = {"records": records}
        server.start()
        try:
            with subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            ) as load:
                assert load.stdout is not None and load.stdin is not None
                cpu_before = server.cpu_s()
                for line in load.stdout:
                    record = json.loads(line)
                    record["cpu_pressure"] = cpu_pressure()
                    records.append(record)
                    if record["event"] == "armed":
                        run["stop_s"] = stop(server)
                        began = time.monotonic()
                        server.start()
                        run["start_s"] = time.monotonic() - began
                        load.stdin.write("go\n")
                        load.stdin.flush()
                    elif record["event"] == "published":
                        cpu_before = server.cpu_s()
                        if profile is not None:
                            sampler = profiling.start(server.pid, profile, LOAD_CORE)
                    elif record["event"] == "storm":
                        record["server_cpu_s"] = server.cpu_s() - cpu_before
                        if profile is not None:
                            profiling.stop(sampler)
                            run["profile"] = profiling.breakdown(profile)
                run["loadgen_exit"] = load.wait(timeout=60)
        finally:
            if server.process is not None and server.process.poll() is None:
                stop(server)
        run["loadavg"] = os.getloadavg()
        return run


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run, flat."""
    by_event = {record["event"]: record for record in run["records"]}
    storm, down = by_event.get("storm", {}), by_event.get("down", {})
    keys = (
        "clients", "reconnected", "caught_up", "caught_up_p50_s", "caught_up_p99_s",
        "caught_up_max_s", "reconnect_max_s", "refused_attempts", "refused_clients",
        "failures", "out_of_order", "probes", "probe_errors", "probe_p50_ms", "probe_p99_ms",
        "probe_max_ms", "server_cpu_s", "loadgen_cpu", "cpu_pressure",
    )  # fmt: skip
    figures = {key: storm.get(key) for key in keys}
    if not figures["caught_up"]:  # no resume: nobody reads what was published while away
        figures |= dict.fromkeys(("caught_up_p50_s", "caught_up_p99_s", "caught_up_max_s"))
    figures |= {key: value for key, value in down.items() if key != "event"}
    figures |= {key: run.get(key) for key in ("stop_s", "start_s", "loadgen_exit", "loadavg")}
    return figures


ROWS = (
    ("clients", "clients"),
    ("reconnected", "reconnected"),
    ("caught_up", "caught up (read the last event)"),
    ("caught_up_max_s", "time until all caught up, s"),
    ("caught_up_p50_s", "p50 caught up, s"),
    ("reconnect_max_s", "time until all reconnected, s"),
    ("refused_attempts", "failed connection attempts"),
    ("refused_clients", "clients with a failed attempt"),
    ("out_of_order", "clients with a gap or a duplicate"),
    ("probe_p99_ms", "probe p99 ms during the storm"),
    ("probe_max_ms", "probe max ms"),
    ("server_cpu_s", "server CPU s during the storm"),
    ("told_retry_at_shutdown", "told a retry: at shutdown"),
    ("shutdown_retry_min_ms", "shutdown retry min ms"),
    ("shutdown_retry_max_ms", "shutdown retry max ms"),
    ("shutdown_retry_distinct", "distinct shutdown retry values"),
    ("stop_s", "SIGTERM to exit, s"),
    ("start_s", "start to answering, s"),
)


def main(argv: list[str] | None = None) -> int:
    """Run the storm against Pulseboard (sqlite://) and the baseline; print, save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--servers", default="pulseboard,baseline")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on Pulseboard during the storm (skews)"
    )
    args = parser.parse_args(argv)
    if not LOADGEN.exists():
        print(f"{LOADGEN} is missing: build it with `make bench`", file=sys.stderr)
        return 2
    limit = raise_file_limit()
    clients = args.clients
    if limit < clients + FD_MARGIN:
        clients = limit - FD_MARGIN
        print(f"RLIMIT_NOFILE hard limit {limit}: {clients} clients", file=sys.stderr)
    report: dict[str, Any] = {"machine": machine(), "file_limit": limit, "clients": clients}
    report["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    summaries: dict[str, dict[str, Any]] = {}
    for name in args.servers.split(","):
        print(f"storm {name}: {clients} clients, {args.events} events", file=sys.stderr)
        profile = RESULTS / "profile-storm.txt" if args.profile and name == "pulseboard" else None
        run = storm_once(name, clients, args.events, profile)
        report[name] = run
        summaries[name] = summary(run)
        print(json.dumps({name: summaries[name]}), file=sys.stderr, flush=True)
    report["summary"] = summaries
    report["machine"]["loadavg_end"] = os.getloadavg()
    names = list(summaries)
    print("  ".join(["metric".ljust(34), *(name.ljust(12) for name in names)]))
    for key, label in ROWS:
        cells = [_fmt(summaries[name].get(key)).ljust(12) for name in names]
        print("  ".join([label.ljust(34), *cells]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"storm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


if __name__ == "__main__":
    sys.exit(main())
