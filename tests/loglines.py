"""Capture what the process logs, as the JSON lines api/logs.py writes: `with captured_logs() as lines:`.

The handler sits on the root logger beside pytest's own, with the production formatter, from DEBUG
up (every logger, Nexus's and the libraries', at its most talkative, less those api/logs.py holds
quiet as production does). `lines.text()` is everything written; `lines.parsed()` each line as a dict.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from api import logs


class Lines:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def parsed(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text().splitlines()]


@contextmanager
def captured_logs(level: int = logging.DEBUG) -> Iterator[Lines]:
    lines = Lines()
    handler = logging.StreamHandler(lines.stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.setLevel(level)
    root = logging.getLogger()
    before = root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET}
    root.addHandler(handler)
    root.setLevel(level)
    logs.quiet_libraries()
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(before)
        for name, was in quiet.items():
            logging.getLogger(name).setLevel(was)
