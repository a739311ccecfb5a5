"""Progress and error lines of every job, through :mod:`logging`, on stderr.

Each line carries the date and time (UTC), the run id (``ops/runs.run_id``) and the stage
(job) it comes from. Two formats:

* ``text`` (default)::

      2026-12-05 15:40:01 run=3f9c0d4e5a6b7c8d features: rollup: 19,884,101 customer-months

  and the final error line of a failed run as ``seglake <job>: error: <one line>``;
* ``json`` (``--log-format json`` or ``SEGLAKE_LOG_FORMAT=json``): one JSON object per
  line, for log shippers: ``time``, ``level``, ``run_id``, ``as_of``, ``stage``,
  ``message`` and, for a bug, ``traceback``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
ENV_FORMAT = "SEGLAKE_LOG_FORMAT"

# The run the process is working on: set by the job runner, read by every line (threads too).
_run: dict[str, str] = {"run_id": "-", "as_of": ""}


def set_run(run_id: str, as_of: dt.date | None = None) -> None:
    """Stamp later lines with ``run_id`` (and ``as_of``, once known)."""
    _run["run_id"] = run_id
    _run["as_of"] = as_of.isoformat() if as_of else ""


def set_as_of(as_of: dt.date | None) -> None:
    _run["as_of"] = as_of.isoformat() if as_of else ""


class _TextFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # UTC times

    def format(self, record: logging.LogRecord) -> str:
        job = getattr(record, "job", record.name)
        message = record.getMessage()
        if getattr(record, "final_error", False):
            return f"seglake {job}: error: {message}"
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        line = f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')} run={getattr(record, 'run_id', '-')} {job}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "run_id": getattr(record, "run_id", "-"),
            "as_of": getattr(record, "as_of", "") or None,
            "stage": getattr(record, "job", record.name),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (which pytest's capture may have replaced)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.run_id = _run["run_id"]
            record.as_of = _run["as_of"]
            if not hasattr(record, "job"):
                record.job = record.name.removeprefix("seglake.")
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # logging must never break the job
            self.handleError(record)


def _handler() -> _StderrHandler:
    root = logging.getLogger("seglake")
    for handler in root.handlers:
        if isinstance(handler, _StderrHandler):
            return handler
    handler = _StderrHandler()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    configure(os.environ.get(ENV_FORMAT, "text"), handler)  # type: ignore[arg-type]
    return handler


def configure(log_format: LogFormat, handler: logging.Handler | None = None) -> None:
    """Use ``log_format`` for every later line (an unknown name falls back to text)."""
    target = handler or _handler()
    target.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter())


def job_log(job: str) -> logging.LoggerAdapter[logging.Logger]:
    """The log of ``job`` (a stage): one line per call on stderr, stamped with the run."""
    _handler()
    return logging.LoggerAdapter(logging.getLogger(f"seglake.{job}"), {"job": job})


def final_error(job: str, message: str) -> None:
    """The one line a failed run ends with (``seglake <job>: error: ...`` in text)."""
    _handler()
    logging.getLogger(f"seglake.{job}").error(message, extra={"job": job, "final_error": True})
