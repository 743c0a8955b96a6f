"""The admin System page and GET /api/admin/system/: the recent 5xx with their request ids, the job
queue, dead letters and the slowest statements, for admins only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_api import assert_problem
from tests.fix_contract import contract_app
from tests.fix_data import image, new_listing
from tests.fix_users import User
from tests.loopback import free_port


def test_a_5xx_is_listed_with_its_request_id_and_the_queue_is_shown(
    client: TestClient, settings: Settings, make_user: Callable[..., User], owner: psycopg.Connection[Any]
) -> None:
    admin, host, guest = make_user("admin"), make_user("host"), make_user("guest")
    listing = new_listing(owner, host.id)
    # A real 5xx: the photo storage does not answer (a bucket on a port nobody listens on).
    down = replace(
        settings,
        media_storage="s3",
        s3_bucket="gone",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_timeout=1.0,
    )
    rid = "sys-" + uuid.uuid4().hex[:12]
    with TestClient(contract_app(down), base_url="http://testserver") as broken:
        r = broken.post(
            f"/api/products/{listing}/photos/",
            files={"file": ("a.png", image("PNG"))},
            headers={**host.auth, "X-Request-ID": rid},
        )
        assert r.status_code == 503
        for _ in range(50):  # recorded after the answer, in a transaction of its own
            found = owner.execute(
                "select status, method, path from app_private.server_errors where request_id = %s", [rid]
            )
            row = found.fetchone()
            if row:
                break
            time.sleep(0.05)
    assert row == (503, "POST", f"/api/products/{listing}/photos/")
    owner.execute(  # a job waiting (its path is no upload's: when a worker runs it, it does nothing)
        "select app_private.defer('media.delete', jsonb_build_object('path', %s::text))", [f"zz/{uuid.uuid4().hex}.jpg"]
    )

    system = client.get("/api/admin/system/", headers=admin.auth)
    assert system.status_code == 200, system.text
    body = system.json()
    assert {"request_id": rid, "status": 503, "method": "POST"}.items() <= body["server_errors"][0].items()
    waiting = {(j["task"], j["status"]): j for j in body["jobs"]}
    assert waiting[("media.delete", "todo")]["count"] >= 1 and waiting[("media.delete", "todo")]["oldest_seconds"] >= 0
    assert isinstance(body["dead_letters"], int)
    if body["statements_by_total"] is not None:  # the cluster preloads pg_stat_statements
        assert body["statements_by_total"] and all(s["calls"] > 0 for s in body["statements_by_total"])

    for who in (guest, host):
        assert_problem(client.get("/api/admin/system/", headers=who.auth), 403)
    assert_problem(client.get("/api/admin/system/"), 401)


def test_the_dashboard_shows_the_system_page(api: TestClient, owner: psycopg.Connection[Any]) -> None:
    from tests.api.test_admin_dashboard import PASSWORD, admin_account

    browser = TestClient(api.app, base_url="http://testserver")
    signed_in = browser.post(
        "/admin/login", data={"email": admin_account(owner), "password": PASSWORD}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    page = browser.get("/admin/system")
    assert page.status_code == 200, page.text[:300]
    for heading in ("Recent server errors", "Job queue", "Statements by total time", "Statements by mean time"):
        assert heading in page.text
    assert "<script" not in page.text
    assert browser.get("/admin/system", follow_redirects=False).status_code == 200
    anonymous = TestClient(api.app, base_url="http://testserver").get("/admin/system", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/admin/login")
