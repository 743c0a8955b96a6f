"""The client's address and scheme, as production serves them (`python -m api.serve`, one worker and
two, and behind HAProxy): X-Forwarded-For and X-Forwarded-Proto count only from TRUSTED_PROXIES,
`Forwarded` never. Rate limits and the sign-in throttle key on that address; HSTS and the
dashboard's Secure cookies follow that scheme."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from tests.fix_api import PASSWORD, new_email
from tests.loopback import HAPROXY, Served, free_port, haproxy

SPOOFS = [  # what a client may send to pass for someone else
    {"X-Forwarded-For": "198.51.100.1"},
    {"X-Forwarded-For": "198.51.100.2, 198.51.100.3"},
    {"Forwarded": "for=198.51.100.4;proto=https"},
    {"X-Real-IP": "198.51.100.5", "X-Forwarded-For": "127.0.0.1"},
]


@pytest.fixture
def strict(owner: psycopg.Connection[Any]) -> Iterator[None]:
    """One sign-up per caller, at most 2 failed sign-ins per address; every bucket and attempt forgotten after."""
    saved = owner.execute("select capacity, per_minute, lease from app_private.rate_limits where class = 'signup'")
    capacity, per_minute, lease = saved.fetchone()  # type: ignore[misc]
    (per_address,) = owner.execute("select throttle_max_failures_per_address from app_private.auth_settings").fetchone()  # type: ignore[misc]
    owner.execute("update app_private.rate_limits set capacity = 1, per_minute = 0.1, lease = 0 where class = 'signup'")
    owner.execute("update app_private.auth_settings set throttle_max_failures_per_address = 2")
    owner.execute("delete from app_private.rate_buckets")
    owner.execute("delete from app_private.login_attempts where client_addr << '127.0.0.0/8'")
    yield
    owner.execute(
        "update app_private.rate_limits set capacity = %s, per_minute = %s, lease = %s where class = 'signup'",
        (capacity, per_minute, lease),
    )
    owner.execute("update app_private.auth_settings set throttle_max_failures_per_address = %s", (per_address,))
    owner.execute("delete from app_private.rate_buckets")
    owner.execute("delete from app_private.login_attempts where client_addr << '127.0.0.0/8'")


def sign_up(client: httpx2.Client, headers: dict[str, str]) -> int:
    body = {"email": new_email(), "password": PASSWORD, "first_name": "Spoof", "last_name": "Tester"}
    return client.post("/api/register/", json=body, headers=headers).status_code


def fail_sign_in(client: httpx2.Client, headers: dict[str, str]) -> int:
    body = {"email": new_email(), "password": "not the password"}  # a new email each time: only the address counts
    return client.post("/api/token/", json=body, headers=headers).status_code


@pytest.mark.parametrize("workers", [1, 2])
def test_without_trusted_proxies_forwarded_headers_change_nothing(owner_url: str, strict: None, workers: int) -> None:
    with (
        Served(owner_url, workers, env={"TRUSTED_PROXIES": ""}) as api,
        httpx2.Client(base_url=api.base_url) as client,
    ):
        sign_ups = [sign_up(client, spoof) for spoof in SPOOFS]
        sign_ins = [fail_sign_in(client, spoof) for spoof in SPOOFS]
        https = client.get("/healthz", headers={"X-Forwarded-Proto": "https", "Forwarded": "proto=https"})

    assert sign_ups == [201, 429, 429, 429]  # one caller, one bucket, whatever it claims
    assert sign_ins == [401, 401, 429, 429]  # the third failure from one address is throttled
    assert "strict-transport-security" not in https.headers  # still plain HTTP


@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed (make test installs it as root)")
def test_behind_a_trusted_proxy_each_client_is_its_own_and_cannot_pose_as_another(owner_url: str, strict: None) -> None:
    # HAProxy reaches the API from 127.0.0.2 (the one trusted address) and appends the peer it saw to
    # X-Forwarded-For; clients reach HAProxy from 127.0.0.1 and 127.0.0.3.
    port = free_port()
    balancer = f"http://127.0.0.1:{port}"
    with Served(owner_url, 1, env={"TRUSTED_PROXIES": "127.0.0.2"}) as api:
        config = f"""global
    maxconn 64
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend api
    bind 127.0.0.1:{port}
    bind 127.0.0.3:{port}
    http-request set-header X-Forwarded-Proto https
    default_backend nexus
backend nexus
    server a {api.base_url.removeprefix("http://")} source 127.0.0.2
"""
        with (
            haproxy(config, balancer),
            httpx2.Client(base_url=balancer) as first,
            httpx2.Client(
                base_url=f"http://127.0.0.3:{port}", transport=httpx2.HTTPTransport(local_address="127.0.0.3")
            ) as second,
            httpx2.Client(base_url=api.base_url) as direct,
        ):
            firsts = [sign_up(first, spoof) for spoof in SPOOFS]
            seconds = [sign_up(second, {"X-Forwarded-For": "127.0.0.1"}), sign_up(second, {})]
            proxied = first.get("/healthz")
            bypassing = direct.get("/healthz", headers={"X-Forwarded-Proto": "https"})

    assert firsts == [201, 429, 429, 429]  # the address HAProxy saw, not the one the client wrote
    assert seconds == [201, 429]  # another client has its own bucket, and cannot pose as the first
    assert proxied.headers["strict-transport-security"].startswith("max-age=")  # HTTPS, as the proxy says
    assert "strict-transport-security" not in bypassing.headers  # a peer that is not the proxy says nothing
