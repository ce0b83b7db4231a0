"""Prometheus metrics of one process (``GET /metrics``).

The hot path only adds to plain integers kept by the stream registry, the
sources and the broker; this module turns them into metric families when
Prometheus scrapes, so counting costs a delivered event next to nothing.

Per-channel series exist for declared channels only (config and sources);
every other channel counts under ``channel="_other"``: anyone may publish to
a new name, and a series per name made scrapes of 100,000 series (issue 12).
"""

from __future__ import annotations

import collections
from bisect import bisect_left
from collections.abc import Container, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.sources.logtail.source import LogTailStats

if TYPE_CHECKING:
    from app.serve.runtime import Runtime
    from app.sources.base import SourceStats

OTHER_CHANNEL = "_other"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The registry, the counters updated where things happen, and the scrape-time collector."""

    def __init__(self) -> None:
        # "_created" series double the output and tell nobody anything
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.published = Counter(
            "pulseboard_events_published",
            "Events this process published, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "pulseboard_http_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.write_latency = LatencyHistogram(LATENCY_BUCKETS_S)
        self.fast_paths: dict[str, bool] = {}  # app.web.fastpath's probe, set by the factory
        self._children: dict[tuple[int, tuple[str, ...]], Counter] = {}

    def child(self, counter: Counter, *labels: str) -> Counter:
        """``counter.labels(*labels)``, looked up once: every publish counts twice.

        prometheus_client's ``labels`` takes a lock and checks the values on
        every call (3 % of a single POST's CPU). The label values are bounded
        (declared channels, routes, statuses), so this map is too.
        """
        key = (id(counter), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = counter.labels(*labels)
        return found

    def attach(self, runtime: Runtime) -> None:
        """Report the runtime's streams, broker and sources at scrape time."""
        self.registry.register(_RuntimeCollector(runtime))

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)


def fold_other(counts: collections.Counter[str], keep: Container[str]) -> None:
    """Move the counts of channels not in ``keep`` into ``_other``, so ``counts`` stays small."""
    for name in [name for name in counts if name not in keep and name != OTHER_CHANNEL]:
        counts[OTHER_CHANNEL] += counts.pop(name)


class LatencyHistogram:
    """A histogram cheap enough for the per-write path: a bisect and two additions.

    prometheus-client's Histogram takes a lock and walks its buckets on every
    observation; this one is only read (and made cumulative) at scrape time.
    """

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """The Prometheus view: cumulative buckets, ``+Inf`` last."""
        cumulative = list(accumulate(self.counts))
        buckets = [
            (repr(bound), count) for bound, count in zip(self.bounds, cumulative, strict=False)
        ]
        buckets.append(("+Inf", cumulative[-1]))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        streams = self.runtime.streams
        subscribers = GaugeMetricFamily(
            "pulseboard_subscribers", "Connected subscribers, by channel.", labels=["channel"]
        )
        broker = self.runtime.broker
        counts = broker.subscriber_counts(self.runtime.declared)
        counts[OTHER_CHANNEL] = broker.follows() - sum(counts.values())
        for channel, count in sorted(counts.items()):
            subscribers.add_metric([channel], count)
        yield subscribers
        yield GaugeMetricFamily("pulseboard_streams", "Open SSE streams.", len(streams.streams))
        delivered = CounterMetricFamily(
            "pulseboard_events_delivered",
            "Events written to clients, by channel.",
            labels=["channel"],
        )
        fold_other(streams.stats.delivered, self.runtime.declared)
        for channel, count in sorted(streams.stats.delivered.items()):
            delivered.add_metric([channel], count)
        yield delivered
        yield CounterMetricFamily(
            "pulseboard_bytes_sent", "Bytes written to SSE streams.", streams.stats.bytes_sent
        )
        cuts = CounterMetricFamily(
            "pulseboard_slow_client_disconnects",
            "Streams cut for being slow, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(streams.stats.cuts.items()):
            cuts.add_metric([reason], count)
        yield cuts
        yield CounterMetricFamily("pulseboard_gaps_sent", "Gap events sent.", streams.stats.gaps)
        failures = CounterMetricFamily(
            "pulseboard_render_failures",
            "Events whose html partial raised, sent as a fallback row instead, by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(streams.stats.render_failures.items()):
            failures.add_metric([kind], count)
        yield failures
        yield self.runtime.metrics.write_latency.family(
            "pulseboard_publish_to_write_seconds",
            "From publish to the socket write that carried it (the oldest event of each write).",
        )
        yield from self._sources()
        yield from self._broker()
        yield from self._webhooks()
        fast = GaugeMetricFamily(
            "pulseboard_fast_path", "1 while a fast path is live, by path.", labels=["path"]
        )
        for path, live in self.runtime.metrics.fast_paths.items():
            fast.add_metric([path], 1 if live else 0)
        yield fast

    def _sources(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "pulseboard_source_restarts",
            "Source crashes followed by a restart, by source.",
            labels=["source"],
        )
        running = GaugeMetricFamily(
            "pulseboard_source_running", "1 while a source runs, by source.", labels=["source"]
        )
        sources = sorted(self.runtime.runner.stats.items())
        for label, stat in sources:
            restarts.add_metric([label], stat.crashes)
            running.add_metric([label], 1 if stat.running else 0)
        yield restarts
        yield running
        yield from self._logtail(sources)

    def _logtail(self, sources: list[tuple[str, SourceStats]]) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "pulseboard_logtail_lag_bytes",
            "Bytes written to followed files and not read yet, by logtail source.",
            labels=["source"],
        )
        rotations = CounterMetricFamily(
            "pulseboard_logtail_rotations",
            "Followed files rotated, by logtail source and how.",
            labels=["source", "how"],
        )
        refused = CounterMetricFamily(
            "pulseboard_logtail_refused",
            "Files a logtail source refused to read (symlink out of its directories, "
            "/proc, /sys, /dev, not a regular file), by source and reason; once per file.",
            labels=["source", "reason"],
        )
        for label, stat in sources:
            figures = getattr(stat.source, "stats", None)
            if not isinstance(figures, LogTailStats):
                continue
            lag.add_metric([label], figures.lag_bytes)
            for how, count in figures.rotations.items():
                rotations.add_metric([label, how], count)
            for reason, count in figures.refused.items():
                refused.add_metric([label, reason], count)
        yield lag
        yield rotations
        yield refused

    def _webhooks(self) -> Iterator[Metric]:
        webhooks = self.runtime.webhooks
        yield GaugeMetricFamily(
            "pulseboard_webhook_outbox",
            "Alert webhook deliveries stored and not yet delivered or given up (this process's).",
            webhooks.pending,
        )
        yield CounterMetricFamily(
            "pulseboard_webhook_deliveries", "Alert webhook POSTs answered 2xx.", webhooks.sent
        )
        yield CounterMetricFamily(
            "pulseboard_webhook_give_ups",
            "Alert webhook deliveries given up: a 4xx (not 408/429), or webhook_max_age passed.",
            webhooks.given_up,
        )

    def _broker(self) -> Iterator[Metric]:
        broker = self.runtime.broker
        yield GaugeMetricFamily(
            "pulseboard_broker_up", "1 while the broker is reachable.", 1 if broker.ready else 0
        )
        yield CounterMetricFamily(
            "pulseboard_broker_errors",
            "Broker commands that failed (Redis unreachable, refusing or behind).",
            broker.stats.errors,
        )
        yield CounterMetricFamily(
            "pulseboard_broker_reconnects",
            "Times the broker's fan-out reader reconnected after losing Redis.",
            broker.stats.reconnects,
        )
