"""A real SMTP server on loopback (aiosmtpd), for the email tests: it keeps what it accepts.

Knobs: `refuse_next` (answer the next DATA commands with 451, a relay's "try again later"),
`stall_rcpt` (seconds to sit on the next RCPT TO before answering: a send in flight that a
test can kill), and `messages` / `to(address)` / `message_ids()` to read what was accepted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each message's acceptance
    refuse_next: int = 0
    stall_rcpt: float = 0.0
    rcpt_seen: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.rcpt_seen.set()
        delay, self.stall_rcpt = self.stall_rcpt, 0.0
        if delay:
            await asyncio.sleep(delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return "451 4.3.0 Try again later"
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            self.received_at.append(time.monotonic())
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]

    def deliveries(self) -> list[tuple[str, float]]:
        """(Message-ID, time.monotonic() when accepted) of every message, in order."""
        with self.lock:
            return [(str(m["Message-ID"]), t) for m, t in zip(self.messages, self.received_at, strict=True)]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.received_at.clear()
            self.refuse_next = 0
            self.stall_rcpt = 0.0
            self.rcpt_seen.clear()

    def __enter__(self) -> SmtpSink:
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(self, hostname=self.host, port=self.port)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    # --- an outage (the soak: soak/faults.py) --------------------------------------------------

    def go_down(self) -> None:
        """Stop listening: connections to the relay are refused until `come_up`."""
        self.controller.stop()

    def come_up(self) -> None:
        """Listen again on the same port, keeping what was accepted before."""
        self.controller = Controller(self, hostname=self.host, port=self.port)
        self.controller.start()
