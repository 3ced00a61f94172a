"""Structured logs: one JSON object a line, for the API and the workers.

Inside a job every line carries the Restora ``job_id``: RQ keeps the job it is running in a context
variable (``rq.get_current_job``), and a filter copies that job's id into each record, so code deep in
the pipeline logs as usual and still says which job it was working on.
"""
from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from rq import get_current_job

FIELDS = "%(levelname)s %(name)s %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}
DROPPED = [*RESERVED_ATTRS, "color_message"]  # uvicorn's copy of the message with terminal colours


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        if job is not None:
            # Both Restora tasks take the Restora job id as their argument (a webhook delivery's RQ id differs).
            record.job_id = job.args[0] if job.args else job.id
        return True


def json_handler(stream: TextIO = sys.stderr) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(FIELDS, rename_fields=RENAMED, reserved_attrs=DROPPED, timestamp="time"))
    handler.addFilter(JobIdFilter())
    return handler


def configure_logging(level: str = "INFO") -> None:
    """JSON to stderr for this process; uvicorn's loggers are routed through it too."""
    logging.basicConfig(level=level, handlers=[json_handler()], force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
