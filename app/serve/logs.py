"""Logging set-up: one line per event, plain text by default or JSON lines.

Messages are written as ``what key=value ...`` so that both forms stay
greppable; the JSON form adds time, level and logger as fields. Tokens never
reach a log line (auth logs a grant's id, a hash prefix).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
QUIET_LOGGERS = ("watchfiles", "watchfiles.main")


class JSONFormatter(logging.Formatter):
    """A JSON object per record: time (UTC), level, logger, message (and any exception)."""

    def converter(self, seconds: float | None) -> time.struct_time:
        return time.gmtime(seconds)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: Literal["text", "json"] = "text", level: str = "info") -> None:
    """Send every log record to stderr in ``fmt``; quiet libraries that log per file change."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
