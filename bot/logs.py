"""Logging for the CLI: the level and format of ``[log]``, secrets redacted.

- ``format = "text"``: one human line per record (what showbot always printed).
- ``format = "json"``: one JSON object per line with ``time``, ``level``,
  ``logger``, ``message``, and ``source`` / ``route`` / ``outbox`` /
  ``platform`` where they apply (plus ``exc`` for a traceback).

The ids come from a context variable the poller and the outbox set while
they work on one source or one outbox row (``log_context``), so every line
logged meanwhile -- the fetcher's, an adapter's -- carries them without
each call passing them along. Context variables follow asyncio tasks, so
two polls running at once never mix their ids.

Every set secret (chat tokens, the database URL, the web token) is replaced
by ``[redacted]`` in the final text of each line, tracebacks included: a
library that logs a request header or a URL at debug level can't leak one.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import TextIO

CONTEXT_FIELDS = ("source", "route", "outbox", "platform")
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_context: ContextVar[Mapping[str, object]] = ContextVar("showbot_log_context", default={})


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Name ``ids`` (source=..., outbox=...) on every record logged inside."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record (as attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then blanks out every secret in the result."""

    def __init__(self, inner: logging.Formatter, secrets: Sequence[str]) -> None:
        super().__init__()
        self._inner = inner
        # Longest first: a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def configure_logging(
    *, level: str, fmt: str, secrets: Sequence[str] = (), stream: TextIO | None = None,
) -> logging.Handler:
    """Replace the root logger's handlers with one that writes to ``stream``
    (stderr) at ``level`` in ``fmt``. Returns the handler (tests read it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    inner: logging.Formatter = JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(RedactingFormatter(inner, secrets))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    return handler
