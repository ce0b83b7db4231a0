"""Microseconds per line that ``line_facts`` (time and level of a log line) costs, per format.

Run: ``.venv/bin/python bench/line_facts.py``. Prints the best of several
rounds, so a shared machine's noise inflates the figures less.
"""

from __future__ import annotations

import time

from app.sources.logtail.logformat import line_facts

LINES = {
    "no time, level word": "INFO plain line number 17 with some words and more words here",
    "no time, no level": "compiling 412 files in /src/app with some options",
    "Python logging": "2026-12-01 13:58:04,123 - app.worker - WARNING - queue depth 5012",
    "RFC 3164 syslog": "Dec  1 13:58:04 web-1 sshd[48213]: error: kex_exchange_identification",
    "klog": 'E1201 13:58:04.123456    1234 pod_workers.go:1301] "Error syncing pod"',
    "nginx access": '203.0.113.7 - - [01/Dec/2026:13:58:04 +0000] "GET /a HTTP/1.1" 502 157 "-"',
    "JSON": '{"level":"error","ts":1796133484.25,"caller":"main.go:88","msg":"bind failed"}',
}
ROUNDS = 7
CALLS = 20_000


def best_us(line: str) -> float:
    """The fastest round's time per call, in microseconds."""
    now = time.time()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            line_facts(line, now)
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best * 1e6


def main() -> None:
    for name, line in LINES.items():
        print(f"{name:22} {best_us(line):6.1f} us/line")


if __name__ == "__main__":
    main()
