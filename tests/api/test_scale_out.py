"""Two API instances behind HAProxy (Debian's) on loopback: nothing a client relies on lives in one
instance's memory or disk. Sessions, the sign-in throttle, idempotency keys and cached reads (ETags)
are the database's, and photos the bucket's (MEDIA_STORAGE=s3, a loopback S3 endpoint), so they
hold across instances."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from api.settings import Settings
from tests.fix_api import PASSWORD, login, new_email, register
from tests.fix_data import day, image, new_listing
from tests.fix_media import S3Peer
from tests.fix_users import User
from tests.loopback import HAPROXY, LiveApp, Server, free_port, haproxy

pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists(), reason="haproxy is not installed (make test installs it as root)"
)


@dataclass
class Cluster:
    balancer: str
    a: str
    b: str


@pytest.fixture(scope="module")
def cluster(settings: Settings, s3: S3Peer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # One bucket for both; each instance its own (unused) media folder, as on two machines.
    shared = replace(
        settings, media_storage="s3", s3_bucket=s3.new_bucket(), s3_endpoint_url=s3.endpoint_url, s3_region=s3.region
    )
    on_a = replace(shared, media_root=tmp_path_factory.mktemp("media-a"))
    on_b = replace(shared, media_root=tmp_path_factory.mktemp("media-b"))
    with Server(LiveApp(on_a), lifespan="on") as a, Server(LiveApp(on_b), lifespan="on") as b:
        port = free_port()
        balancer = f"http://127.0.0.1:{port}"
        config = f"""global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend api
    bind 127.0.0.1:{port}
    default_backend nexus
backend nexus
    balance roundrobin
    http-response set-header X-Instance %s
    server a {a.base_url.removeprefix("http://")}
    server b {b.base_url.removeprefix("http://")}
"""
        with haproxy(config, balancer):
            yield Cluster(balancer, a.base_url, b.base_url)


def test_the_balancer_spreads_requests_over_both_instances(cluster: Cluster) -> None:
    with httpx2.Client(base_url=cluster.balancer) as c:
        served = {c.get("/api/categories/").headers["x-instance"] for _ in range(6)}

    assert served == {"a", "b"}


def test_signing_out_everywhere_on_one_instance_ends_the_session_on_both(cluster: Cluster) -> None:
    with httpx2.Client(base_url=cluster.balancer) as c:
        user = register(c).json()
        tokens = login(c, user["email"]).json()
    auth = {"Authorization": f"Bearer {tokens['access']}"}
    assert httpx2.get(cluster.a + "/api/users/me/", headers=auth).status_code == 200
    assert httpx2.get(cluster.b + "/api/users/me/", headers=auth).status_code == 200

    assert httpx2.post(cluster.a + "/api/token/revoke-all/", headers=auth).status_code in (200, 204)

    assert httpx2.get(cluster.a + "/api/users/me/", headers=auth).status_code == 401
    assert httpx2.get(cluster.b + "/api/users/me/", headers=auth).status_code == 401
    refreshed = httpx2.post(cluster.b + "/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert refreshed.status_code == 401


def test_the_sign_in_throttle_counts_failures_on_both_instances(cluster: Cluster) -> None:
    with httpx2.Client(base_url=cluster.a) as a:
        email = register(a).json()["email"]
    for i in range(5):  # alternate instances: 3 failures on a, 2 on b
        url = cluster.a if i % 2 == 0 else cluster.b
        assert httpx2.post(url + "/api/token/", json={"email": email, "password": "wrong password!"}).status_code == 401

    for url in (cluster.a, cluster.b):
        refused = httpx2.post(url + "/api/token/", json={"email": email, "password": PASSWORD})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0


def test_an_idempotency_key_replays_on_the_other_instance(
    cluster: Cluster, owner: psycopg.Connection[Any], host: User, guest: User
) -> None:
    listing = new_listing(owner, host.id)
    body = {"product_id": listing, "start_date": day(70), "end_date": day(72), "guests": 1}
    headers = {**guest.auth, "Idempotency-Key": "scale-out-" + new_email()}

    first = httpx2.post(cluster.a + "/api/bookings/", json=body, headers=headers)
    again = httpx2.post(cluster.b + "/api/bookings/", json=body, headers=headers)

    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    (n,) = owner.execute("select count(*) from app.bookings where product_id = %s", (listing,)).fetchone()  # type: ignore[misc]
    assert n == 1


def test_a_cached_read_is_invalidated_on_both_after_a_write_on_one(cluster: Cluster, admin: User) -> None:
    slug = "scale-" + new_email().split("@")[0][-8:]
    created = httpx2.post(cluster.a + "/api/categories/", json={"name": slug, "slug": slug}, headers=admin.auth)
    assert created.status_code == 201, created.text
    url = f"/api/categories/{slug}/"
    etag_a = httpx2.get(cluster.a + url).headers["etag"]
    etag_b = httpx2.get(cluster.b + url).headers["etag"]
    assert etag_a == etag_b
    assert httpx2.get(cluster.b + url, headers={"If-None-Match": etag_a}).status_code == 304

    httpx2.patch(cluster.b + url, json={"name": slug + " renamed"}, headers=admin.auth).raise_for_status()

    for base in (cluster.a, cluster.b):
        fresh = httpx2.get(base + url, headers={"If-None-Match": etag_a})
        assert fresh.status_code == 200 and fresh.json()["name"] == slug + " renamed"


def test_a_photo_uploaded_through_one_instance_is_served_by_the_other(
    cluster: Cluster, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    uploaded = httpx2.post(
        f"{cluster.a}/api/products/{listing}/photos/", files={"file": ("a.png", image("PNG"))}, headers=host.auth
    )
    assert uploaded.status_code == 201, uploaded.text
    url = uploaded.json()["url"]
    on_a, on_b = httpx2.get(cluster.a + url), httpx2.get(cluster.b + url)
    assert on_a.status_code == on_b.status_code == 200 and on_a.content == on_b.content
    assert on_b.headers["content-type"] == "image/png"
    with httpx2.Client(base_url=cluster.balancer) as c:
        assert {c.get(url).status_code for _ in range(4)} == {200}  # whichever instance answers
