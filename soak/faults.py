"""Faults on a schedule, each with its window and its measured time to recover.

A fault is injected at a fraction of the run and lasts `seconds` (0: an instant, such as a
SIGKILL). Its window runs from the injection to its recovery: once the fault ended, a read and a
write through the API answer 2xx, the workers are up (a new one for one killed), no due job has
waited more than 5 s, and the load's own requests have gone QUIET seconds without a 5xx or a
lost answer; recovered at the later of the probe's pass and the end of the last failed request. 5xx answers inside a window (and a grace of GRACE seconds after
it) are the fault's; anywhere else they violate an invariant.

The deploy measures how long reads and writes wait while `python -m api.migrate --force` runs (it
re-creates every function, view and policy, as a deploy whose SQL changed does), then replaces
the API's workers one by one (SIGHUP: uvicorn starts a new worker, then retires an old one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from soak.driver import Driver
from soak.stack import Stack, log, migrate

GRACE = 5.0  # seconds after a window in which a straggling 5xx is still the fault's
RECOVERY_BOUND = 60.0  # seconds: a fault not recovered from within this violates an invariant
QUIET = 10.0  # seconds without a failed request that say the service is back


@dataclass
class Fault:
    name: str
    at: float  # fraction of the run
    seconds: float  # how long the fault lasts (0: an instant)
    start: float = 0.0  # seconds since the soak began
    end: float = 0.0  # when the fault was lifted
    recovered: float | None = None  # when the service was back (None: not within the bound)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def recovery(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.end


ALL = [
    "kill-api",
    "kill-worker",
    "stripe-500",
    "paypal-timeout",
    "pg-restart",
    "stripe-slow",
    "smtp-down",
    "webhooks",
    "deploy",
    "kill-worker-2",
]
# The short run (CI): the faults that matter most.
SHORT = ["kill-api", "kill-worker", "stripe-500", "webhooks", "pg-restart"]
# With PgBouncer in the path (--pgbouncer), it is restarted too, after PostgreSQL.
BEHIND_PGBOUNCER = "pgbouncer-restart"


def fault_names(choice: str, pgbouncer: bool) -> list[str]:
    """all, short, none, or names separated by commas; all and short restart PgBouncer when it is in the path."""
    names = {"all": ALL, "short": SHORT, "none": []}.get(choice)
    if names is None:
        names = choice.split(",")
        unknown = [n for n in names if n not in ALL and n != BEHIND_PGBOUNCER]
        if unknown:
            raise SystemExit(f"unknown faults: {', '.join(unknown)}")
    elif pgbouncer and names:
        names = [*names[: names.index("pg-restart") + 1], BEHIND_PGBOUNCER, *names[names.index("pg-restart") + 1 :]]
    if BEHIND_PGBOUNCER in names and not pgbouncer:
        raise SystemExit(f"{BEHIND_PGBOUNCER} needs --pgbouncer")
    return list(names)


def schedule(names: list[str], minutes: float) -> list[Fault]:
    """Spread the faults over 8 %..85 % of the run; an outage lasts a minute, less in a short run."""
    total = minutes * 60
    outage = max(10.0, min(60.0, total * 0.06))
    lasting = {"stripe-500", "paypal-timeout", "stripe-slow", "smtp-down", "webhooks"}
    faults = []
    for i, name in enumerate(names):
        at = 0.08 + (0.85 - 0.08) * i / max(1, len(names) - 1) if len(names) > 1 else 0.3
        faults.append(Fault(name, at, outage if name in lasting else 0.0))
    return faults


class Injector:
    def __init__(self, stack: Stack, driver: Driver) -> None:
        self.stack = stack
        self.driver = driver
        self.probe_user: Any = None

    # --- probes ----------------------------------------------------------------------------------

    async def healthy(self, fault: Fault) -> bool:
        d = self.driver
        user = d.guests[0]
        read = await d.call("probe.read", "GET", f"/api/products/{d.popular[0]['id']}/")
        write = await d.call("probe.write", "POST", "/api/notifications/read-all/", headers=user.auth)
        if read is None or read.status_code != 200 or write is None or write.status_code != 200:
            return False
        if self.stack.worker.pid is None or self.stack.worker.starts < fault.notes.get("worker_starts", 0):
            return False  # the job worker killed is not running again yet
        pids = self.stack.api.worker_pids()
        if len(pids) < self.stack.api_workers or fault.notes.get("pid") in pids:
            return False  # the API worker killed is not replaced yet
        return await asyncio.to_thread(self.jobs_flowing)

    def jobs_flowing(self) -> bool:
        try:
            with psycopg.connect(self.stack.cluster.owner_url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute(
                    "select count(*) from procrastinate.procrastinate_jobs"
                    " where status = 'todo' and coalesce(scheduled_at, now()) < now() - interval '5 seconds'"
                ).fetchone()
                return row is not None and row[0] == 0
        except psycopg.Error:
            return False

    async def recover(self, fault: Fault) -> None:
        """Back when the probe passes (a read, a write, the workers up, jobs flowing) and the load's
        own requests have answered without a 5xx or a lost answer for QUIET seconds: recovered at the
        later of the probe's pass and the end of the load's last failed request."""
        r = self.driver.recorder
        fault.end = r.now()
        deadline = time.monotonic() + RECOVERY_BOUND
        probed: float | None = None
        last_failure = fault.end
        seen = 0
        while time.monotonic() < deadline:
            if probed is None and await self.healthy(fault):
                probed = r.now()
            samples = r.samples
            for t, cls, status, seconds in samples[seen:]:
                if (status == 0 or status >= 500) and t >= fault.start and not cls.startswith("probe."):
                    last_failure = max(last_failure, t + seconds)
            seen = len(samples)
            if probed is not None and r.now() - max(probed, last_failure) >= QUIET:
                fault.recovered = max(probed, last_failure)
                return
            await asyncio.sleep(0.25 if probed is None else 1.0)

    # --- the faults ------------------------------------------------------------------------------

    async def inject(self, fault: Fault) -> None:
        r = self.driver.recorder
        fault.start = r.now()
        log(f"fault {fault.name} ({fault.seconds:.0f} s)")
        action: dict[str, Callable[[Fault], Awaitable[None]]] = {
            "kill-api": self.kill_api,
            "kill-worker": self.kill_worker,
            "kill-worker-2": self.kill_worker,
            "stripe-500": lambda f: self.outage(f, self.stack.stripe.outage, "500"),
            "stripe-slow": lambda f: self.outage(f, self.stack.stripe.outage, "slow"),
            "paypal-timeout": lambda f: self.outage(f, self.stack.paypal.outage, "timeout"),
            "pg-restart": self.pg_restart,
            BEHIND_PGBOUNCER: self.pgbouncer_restart,
            "smtp-down": self.smtp_down,
            "webhooks": self.webhooks,
            "deploy": self.deploy,
        }
        await action[fault.name](fault)
        await self.recover(fault)
        log(
            f"fault {fault.name}: recovered in {fault.recovery:.1f} s"
            if fault.recovery is not None
            else f"fault {fault.name}: NOT recovered within {RECOVERY_BOUND:.0f} s"
        )

    async def kill_api(self, fault: Fault) -> None:
        fault.notes["pid"] = self.stack.api.kill_worker()

    async def kill_worker(self, fault: Fault) -> None:
        fault.notes["worker_starts"] = self.stack.worker.starts + 1
        fault.notes["pid"] = self.stack.worker.kill()

    async def outage(self, fault: Fault, switch: Any, mode: str) -> None:
        switch.mode = mode
        switch.delay = 3.0
        switch.hang = 15.0
        await asyncio.sleep(fault.seconds)
        switch.mode = None

    async def pg_restart(self, fault: Fault) -> None:
        t = time.monotonic()
        await asyncio.to_thread(self.stack.cluster.restart)
        fault.notes["restart_s"] = round(time.monotonic() - t, 1)

    async def pgbouncer_restart(self, fault: Fault) -> None:
        assert self.stack.pgbouncer is not None
        t = time.monotonic()
        await asyncio.to_thread(self.stack.pgbouncer.restart)
        fault.notes["restart_s"] = round(time.monotonic() - t, 1)

    async def smtp_down(self, fault: Fault) -> None:
        await asyncio.to_thread(self.stack.smtp.go_down)
        await asyncio.sleep(fault.seconds)
        await asyncio.to_thread(self.stack.smtp.come_up)

    async def webhooks(self, fault: Fault) -> None:
        self.driver.mailbag.chaos = True
        await asyncio.sleep(fault.seconds)
        self.driver.mailbag.chaos = False

    async def deploy(self, fault: Fault) -> None:
        """make migrate under load, then a rolling restart; how long reads and writes waited meanwhile."""
        r = self.driver.recorder
        t0 = r.now()
        seconds = await asyncio.to_thread(migrate, self.stack.cluster)
        t1 = r.now()
        fault.notes["migrate_s"] = round(seconds, 1)
        during = [s for s in r.samples if t0 <= s[0] <= t1 and s[2]]
        reads = [s[3] for s in during if s[1].startswith("browse.") or s[1] == "probe.read"]
        writes = [
            s[3] for s in during if s[1] in ("booking.create", "payment.create", "probe.write", "message", "signup")
        ]
        fault.notes["read_max_s"] = round(max(reads, default=0.0), 2)
        fault.notes["write_max_s"] = round(max(writes, default=0.0), 2)
        fault.notes["reads"] = len(reads)
        fault.notes["writes"] = len(writes)
        self.stack.api.rolling_restart()
        await asyncio.sleep(2)
        deadline = time.monotonic() + 60  # until every worker is a new one
        old = set(fault.notes.get("old_pids", []))
        while time.monotonic() < deadline:
            pids = set(self.stack.api.worker_pids())
            if len(pids) == self.stack.api_workers and not pids & old:
                break
            await asyncio.sleep(0.5)

    async def run(self, faults: list[Fault], total: float) -> None:
        for fault in faults:
            wait = fault.at * total - self.driver.recorder.now()
            if wait > 0:
                await asyncio.sleep(wait)
            if fault.name == "deploy":
                fault.notes["old_pids"] = self.stack.api.worker_pids()
            await self.inject(fault)


def windows(faults: list[Fault]) -> list[tuple[float, float, str]]:
    """(start, end, name) of each fault, its recovery and the grace after it included."""
    return [
        (f.start, (f.recovered if f.recovered is not None else f.end + RECOVERY_BOUND) + GRACE, f.name) for f in faults
    ]
