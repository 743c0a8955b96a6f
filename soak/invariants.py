"""What must hold, each checked in SQL as the owner (or from what the soak recorded), with its count.

A check returns (violations, checked): 0 violations of however many things it looked at.
The cheap ones also run every 15 s during the soak (`CHEAP`); all run at the end, once the
load stopped and the queue drained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

# Payment states in which money was taken (and perhaps given back in part or in full).
TAKEN = "('succeeded', 'partially_refunded', 'refunded')"
# A payout (o) whose sums are off: what is sent is not gross - fee - withheld, the fee not its
# percent, or gross not what its payment kept when it was computed (refunds asked for and
# disputes lost before it).
PAYOUT_OFF = """o.amount <> o.gross - o.fee - o.withheld
             or o.fee <> round(o.gross * o.fee_percent / 100, 2)
             or o.gross <> (select sum(p.amount - coalesce((select sum(r.amount) from app.refunds r
                                                              where r.payment_id = p.id and r.status <> 'failed'
                                                                and r.created_at < o.created_at), 0)
                                                - coalesce((select sum(d.amount) from app.disputes d
                                                             where d.payment_id = p.id and d.status = 'lost'
                                                               and d.closed_at < o.created_at), 0))
                              from app.payments p
                             where p.id = o.payment_id and p.currency = o.currency)"""

SQL_CHECKS: dict[str, tuple[str, str]] = {
    "no two confirmed/pending bookings overlap": (
        """select count(*) from app.bookings a join app.bookings b
             on a.product_id = b.product_id and a.id < b.id
            and daterange(a.start_date, a.end_date) && daterange(b.start_date, b.end_date)
          where a.status in ('pending', 'confirmed') and b.status in ('pending', 'confirmed')""",
        "select count(*) from app.bookings where status in ('pending', 'confirmed')",
    ),
    "every taken payment's booking was confirmed, or the payment is (being) refunded in full": (
        f"""select count(*) from app.payments p join app.bookings b on b.id = p.booking_id
          where p.status in {TAKEN} and b.confirmed_at is null
            and coalesce((select sum(r.amount) from app.refunds r where r.payment_id = p.id and r.status <> 'failed'), 0)
                < p.amount""",
        f"select count(*) from app.payments where status in {TAKEN}",
    ),
    "no booking keeps two payments (a late second one is refunded in full)": (
        f"""select count(*) from (
            select p.booking_id from app.payments p
             where p.status in {TAKEN}
               and coalesce((select sum(r.amount) from app.refunds r where r.payment_id = p.id and r.status <> 'failed'), 0)
                   < p.amount
             group by p.booking_id having count(*) > 1) twice""",
        f"select count(distinct booking_id) from app.payments where status in {TAKEN}",
    ),
    "refunds (and disputes) never exceed what was paid": (
        """select count(*) from app.payments p
          where p.amount_refunded > p.amount
             or (select coalesce(sum(r.amount), 0) from app.refunds r where r.payment_id = p.id and r.status <> 'failed')
                + (select coalesce(sum(d.amount), 0) from app.disputes d where d.payment_id = p.id and d.status <> 'won')
                > p.amount""",
        "select count(*) from app.payments where amount_refunded > 0",
    ),
    "every payout is gross minus the fee (and what the host owed), and gross is what was kept": (
        f"select count(*) from app.payouts o where {PAYOUT_OFF}",
        "select count(*) from app.payouts",
    ),
    "the ledger balances to zero per booking and currency": (
        """select count(*) from (select booking_id, currency from app.ledger_entries
                                  group by 1, 2 having sum(amount) <> 0) unbalanced""",
        "select count(distinct booking_id) from app.ledger_entries",
    ),
    "a decided dispute holds no money (the ledger's dispute account is back at zero)": (
        """select count(*) from (select e.booking_id from app.ledger_entries e where e.account = 'dispute'
                                  group by 1 having sum(e.amount) <> 0) held
          where not exists (select from app.disputes d where d.booking_id = held.booking_id and d.status = 'open')""",
        "select count(*) from app.disputes",
    ),
    "no host had more withheld than they owed": (
        """select count(*) from (select b.host_id, e.currency from app.ledger_entries e
                                   join app.bookings b on b.id = e.booking_id
                                  where e.account = 'host_receivable' group by 1, 2 having sum(e.amount) > 0) over""",
        "select count(distinct booking_id) from app.ledger_entries where account = 'host_receivable'",
    ),
    "every completed stay's payout is open or paid": (
        """select count(*) from app.bookings b
          where b.status = 'completed' and not exists (select from app.payouts o where o.booking_id = b.id)
            and exists (select from app.payments p where p.booking_id = b.id and p.status in ('succeeded', 'partially_refunded')
                                                     and app_private.kept(p) > 0)""",
        "select count(*) from app.bookings where status = 'completed'",
    ),
}
# For a check that failed, the facts behind it (up to 3), printed with it.
DETAILS: dict[str, str] = {
    "every payout is gross minus the fee (and what the host owed), and gross is what was kept": f"""
        select jsonb_build_object(
          'payout', to_jsonb(o) - 'destination',
          'payments', (select jsonb_agg(jsonb_build_object('id', p.id, 'status', p.status, 'amount', p.amount,
                                                           'refunded', p.amount_refunded, 'succeeded_at', p.succeeded_at))
                         from app.payments p where p.booking_id = o.booking_id and p.status in {TAKEN}),
          'refunds', (select jsonb_agg(jsonb_build_object('amount', r.amount, 'status', r.status, 'kind', r.kind,
                                                          'charge_host', r.charge_host, 'created_at', r.created_at))
                        from app.refunds r where r.booking_id = o.booking_id),
          'disputes', (select jsonb_agg(jsonb_build_object('amount', d.amount, 'status', d.status,
                                                           'created_at', d.created_at, 'closed_at', d.closed_at))
                         from app.disputes d where d.booking_id = o.booking_id))::text
          from app.payouts o where {PAYOUT_OFF} limit 3""",
}
CHEAP = ["no two confirmed/pending bookings overlap", "the ledger balances to zero per booking and currency"]

# At the end, once drained: nothing left behind in the queue.
JOBS_END = (
    """select count(*) from procrastinate.procrastinate_jobs
      where (status = 'todo' and scheduled_at < now() - interval '60 seconds')
         or (status = 'doing')
         or status = 'failed'""",
    "select count(*) from procrastinate.procrastinate_jobs",
)
# During the run: a due job waits at most its retry backoff's longest step (512 s) plus a minute.
JOBS_DURING = (
    """select count(*) from procrastinate.procrastinate_jobs
      where status = 'todo' and coalesce(scheduled_at, now()) < now() - interval '572 seconds'""",
    "select count(*) from procrastinate.procrastinate_jobs where status = 'todo'",
)


@dataclass
class Result:
    name: str
    violations: int
    checked: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.violations == 0


def sql_checks(owner_url: str, names: list[str] | None = None) -> list[Result]:
    results = []
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("set statement_timeout = '60s'")
        for name, (bad, total) in SQL_CHECKS.items():
            if names is not None and name not in names:
                continue
            violations = _one(conn, bad)
            detail = ""
            if violations and name in DETAILS:  # what a person needs to explain it: the run's database goes with it
                detail = "; ".join(str(r[0]) for r in conn.execute(DETAILS[name]).fetchall())
            results.append(Result(name, violations, _one(conn, total), detail))
    return results


def jobs_check(owner_url: str, end: bool) -> Result:
    bad, total = JOBS_END if end else JOBS_DURING
    with psycopg.connect(owner_url, autocommit=True) as conn:
        detail = ""
        if end:
            rows = conn.execute(
                "select task_name, status::text, count(*) from procrastinate.procrastinate_jobs"
                " where status in ('todo', 'doing', 'failed') group by 1, 2 order by 1, 2"
            ).fetchall()
            detail = ", ".join(f"{t} {s} {n}" for t, s, n in rows)
        return Result(
            "no job older than its retry schedule allows (none failed, none left)"
            if end
            else "no due job waits past its retry schedule",
            _one(conn, bad),
            _one(conn, total),
            detail,
        )


# A worker killed (or losing the database) after the relay took an email and before the database
# recorded it sends it again when its job is retried: SMTP cannot be asked what it already has.
# The copy carries the same Message-ID (mail clients show one). Such a duplicate is the fault's
# when the first copy was taken within KILL_REACH seconds before a kill or restart, or during it.
KILL_FAULTS = ("kill-worker", "pg-restart", "deploy")
KILL_REACH = 5.0


def email_check(
    owner_url: str, deliveries: list[tuple[str, float]], started: float, windows: list[tuple[float, float, str]]
) -> list[Result]:
    """Each email the database says it sent reached the relay (the sink) once, and nothing else did."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        sent = {
            f"<{r[0]}.email@nexus>" for r in conn.execute("select id from app.notifications where email_state = 'sent'")
        }
        dead = _one(conn, "select count(*) from app.notifications where email_state = 'dead'")
        pending = _one(conn, "select count(*) from app.notifications where email_state = 'pending'")
    sink_ids = [m for m, _ in deliveries]
    received = set(sink_ids)
    first: dict[str, float] = {}
    duplicates = excused = 0
    for message_id, at in deliveries:
        if message_id not in first:
            first[message_id] = at - started
            continue
        t = first[message_id]
        if any(start - KILL_REACH <= t <= end for start, end, name in windows if name.startswith(KILL_FAULTS)):
            excused += 1
        else:
            duplicates += 1
    return [
        Result("each sent email reached the relay", len(sent - received), len(sent)),
        Result("the relay got no email the database did not send", len(received - sent), len(received)),
        Result(
            "no email reached the relay twice (but one taken just before a kill or restart)",
            duplicates,
            len(sink_ids),
            f"{excused} sent again after a kill or restart, same Message-ID" if excused else "",
        ),
        Result("no email dead or still pending at the end", dead + pending, len(sent) + dead + pending),
    ]


def _one(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def server_errors_outside(
    samples: list[tuple[float, str, int, float]], windows: list[tuple[float, float, str]]
) -> Result:
    def inside(t: float, seconds: float) -> bool:  # the request was under way during the window
        return any(t <= b and t + seconds >= a for a, b, _ in windows)

    bad = [s for s in samples if s[2] >= 500 and not inside(s[0], s[3])]
    detail = ", ".join(f"{c} {st} at {t:.1f}s" for t, c, st, _ in bad[:10])
    return Result("no 5xx outside a fault window", len(bad), len(samples), detail)


def memory_check(series: dict[int, list[tuple[float, float, str]]], warmup: float, limit_mb: float = 40.0) -> Result:
    """Each worker process that lived past warm-up: its RSS at its end within `limit_mb` of its RSS
    once warmed up (a third into its life after warm-up), else it leaks."""
    growths = []
    for _pid, points in series.items():
        after = [p for p in points if p[0] >= warmup]
        if len(after) < 6:
            continue
        base = after[len(after) // 3][1]
        growths.append((after[-1][1] - base, after[0][2]))
    bad = [g for g in growths if g[0] > limit_mb]
    detail = ", ".join(f"{kind} {g:+.1f} MB" for g, kind in growths)
    return Result(f"no worker's memory grows after warm-up (> {limit_mb:.0f} MB)", len(bad), len(growths), detail)


def connections_check(samples: list[tuple[float, int]], bound: int) -> Result:
    peak = max((n for _, n in samples), default=0)
    return Result(
        f"connections stay bounded (≤ {bound}; peak {peak})", sum(1 for _, n in samples if n > bound), len(samples)
    )


def recovery_check(faults: list[Any], bound: float) -> Result:
    bad = [f.name for f in faults if f.recovery is None or f.recovery > bound]
    return Result(f"every fault recovered from within {bound:.0f} s", len(bad), len(faults), ", ".join(bad))


Check = Callable[[], list[Result]]
