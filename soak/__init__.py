"""The soak: the whole marketplace under a realistic mix for minutes, with faults on a schedule,
then the books checked (`make soak`, `python -m soak --minutes 20`).

- stack.py       the real stack: its own PostgreSQL cluster, `python -m api.serve --workers 2`,
                 the job worker (restarted as a supervisor would), the Stripe, PayPal and SMTP
                 stand-ins of tests/ on loopback with fault switches
- driver.py      the traffic: an asyncio driver on httpx2 (anonymous browsing, sign-ups, bookings
                 with contention, both providers and their webhooks, cancellations, refunds, stays
                 completing, payouts, messages, reviews, notification streams, admin)
- faults.py      the schedule of faults, and each one's window and time to recover
- invariants.py  what must hold, in SQL as the owner, during the run and at its end
- report.py      the tables, and the plot (throughput and p99 over time, fault windows shaded)
"""
