"""Double booking is impossible, for real: many connections released together against one listing."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from tests.fix_data import day, new_listing, new_user

CONNECTIONS = 50
ROUNDS = 20


@pytest.mark.slow
def test_fifty_connections_twenty_rounds_exactly_one_winner(owner: psycopg.Connection[Any], app_url: str) -> None:
    host = new_user(owner, "host")
    guests = [new_user(owner) for _ in range(CONNECTIONS)]
    listings = [new_listing(owner, host) for _ in range(ROUNDS)]
    barrier = threading.Barrier(CONNECTIONS, timeout=30)
    outcomes: list[list[str]] = [[] for _ in range(ROUNDS)]
    lock = threading.Lock()

    def worker(i: int) -> None:
        # Stay i: starts within 0..4 days of day 40 and ends within 5..11 days of it, so every
        # pair of stays overlaps (all contain night 44), in many different shapes.
        body = {"start_date": day(40 + i % 5), "end_date": day(45 + i % 7), "guests": 1}
        claims = json.dumps({"sub": guests[i], "role": "guest"})
        with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:
            for r in range(ROUNDS):
                payload = json.dumps({**body, "product_id": listings[r]})
                barrier.wait()
                try:
                    with conn.transaction():
                        conn.execute(
                            "select set_config('role', 'guest', true), set_config('request.jwt.claims', %s, true)",
                            (claims,),
                        )
                        conn.execute("select api.booking_create(p_body => %s::jsonb)", (payload,))
                    result = "ok"
                except psycopg.Error as exc:
                    result = exc.sqlstate or "?"
                with lock:
                    outcomes[r].append(result)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 30

    for r, results in enumerate(outcomes):
        assert len(results) == CONNECTIONS, r
        assert results.count("ok") == 1, (r, results)
        assert set(results) - {"ok"} <= {"PT409", "23P01"}, (r, results)

    (overlaps,) = owner.execute(
        """select count(*) from app.bookings a join app.bookings b
             on a.product_id = b.product_id and a.id < b.id
            and daterange(a.start_date, a.end_date) && daterange(b.start_date, b.end_date)
          where a.status in ('pending', 'confirmed') and b.status in ('pending', 'confirmed')"""
    ).fetchone()  # type: ignore[misc]
    assert overlaps == 0
    (per_listing,) = owner.execute(
        "select array_agg(n order by n) from (select count(*) n from app.bookings where product_id = any(%s::uuid[])"
        " group by product_id) s",
        (listings,),
    ).fetchone()  # type: ignore[misc]
    assert per_listing == [1] * ROUNDS
