"""The soak's short version (CI): the whole stack for two minutes, the API behind PgBouncer as
deployed, under the faults that matter most (an API worker and the job worker SIGKILLed, Stripe
answering 500, webhooks duplicated and reordered, PostgreSQL and then PgBouncer restarted), and
every invariant checked (soak/invariants.py).

`make soak` runs the long one (SOAK_MINUTES, default 20, every fault, the 100k-listing data).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINUTES = os.environ.get("NEXUS_SOAK_MINUTES", "2")


def test_two_minutes_under_faults_break_no_invariant() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "soak", "--minutes", MINUTES, "--faults", "short", "--pgbouncer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(run.stdout[-12000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert "soak: every invariant held" in run.stdout
