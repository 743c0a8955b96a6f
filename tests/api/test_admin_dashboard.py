"""The admin dashboard over HTTP: signing in, who is refused, CSRF, session rotation and expiry, and
that each kind of action works through the API's own functions and lands in the audit log.

The browser walks through the same pages in tests/browser/test_admin_browser.py.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import psycopg
import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_data import day, new_listing
from tests.fix_payments import pay, pay_and_succeed
from tests.fix_users import User
from tests.stripe_standin import StripeStandIn

PASSWORD = "admin-password-1"


def admin_account(owner: psycopg.Connection[Any]) -> str:
    email = f"boss-{uuid.uuid4().hex[:10]}@example.com"
    owner.execute("select app_private.create_admin(%s, %s)", (email, PASSWORD))
    return email


@pytest.fixture
def browser(api: TestClient) -> Iterator[TestClient]:
    """A client of its own (its own cookies) on the configured app."""
    yield TestClient(api.app, base_url="http://testserver", raise_server_exceptions=False)


@pytest.fixture
def boss(browser: TestClient, owner: psycopg.Connection[Any]) -> TestClient:
    r = browser.post("/admin/login", data={"email": admin_account(owner), "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/", r.text
    return browser


def csrf(page_html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page_html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_the_sign_in_page_is_strict_about_what_it_loads(browser: TestClient) -> None:
    r = browser.get("/admin/login")

    assert r.status_code == 200 and "<form" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert "<script" not in r.text and "style=" not in r.text
    assert browser.get("/admin/static/admin.css").status_code == 200


def test_sign_in_sets_a_strict_session_cookie(browser: TestClient, owner: psycopg.Connection[Any]) -> None:
    r = browser.post("/admin/login", data={"email": admin_account(owner), "password": PASSWORD}, follow_redirects=False)

    cookies = r.headers.get_list("set-cookie")
    assert [c.split("=")[0] for c in cookies] == ["nexus_admin", "nexus_admin_refresh", "nexus_admin_csrf"]
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie


def test_guests_hosts_and_wrong_passwords_are_refused(
    browser: TestClient, client: TestClient, owner: psycopg.Connection[Any], settings: Settings, guest: User
) -> None:
    email = f"host-{uuid.uuid4().hex[:8]}@example.com"
    client.post(
        "/api/register/",
        json={"email": email, "password": "host-password-1", "first_name": "H", "last_name": "O", "role": "host"},
    )

    assert browser.post("/admin/login", data={"email": email, "password": "host-password-1"}).status_code == 403
    assert browser.post("/admin/login", data={"email": email, "password": "wrong-password"}).status_code == 401
    browser.cookies.set("nexus_admin", guest.token, path="/admin")
    browser.cookies.set("nexus_admin_refresh", "x", path="/admin")
    browser.cookies.set("nexus_admin_csrf", "x", path="/admin")
    assert browser.get("/admin/users").status_code == 403  # a valid session of a non-admin


def test_without_a_session_every_page_sends_you_to_sign_in(browser: TestClient) -> None:
    for path in ("/admin/", "/admin/users", "/admin/audit"):
        r = browser.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")


def test_every_page_renders_with_data(
    boss: TestClient,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
) -> None:
    listing = new_listing(owner, host.id)
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(40), "end_date": day(42), "guests": 1},
        headers=guest.auth,
    ).json()
    payment = pay(api, guest, booking).json()

    for path, expected in (
        ("/admin/", "Bookings per day"),
        ("/admin/users?search=" + guest.email[:12], guest.email),
        (f"/admin/users/{guest.id}", guest.email),
        ("/admin/listings?published=true&min_price=50&max_price=150", "A place"),
        (f"/admin/users?active=true&role=guest&search={guest.email}", guest.email),
        (f"/admin/bookings?guest={guest.id}&host={host.id}", booking["start_date"]),
        ("/admin/payments?currency=usd&from=" + booking["created_at"][:10], payment["amount"]),
        ("/admin/bookings?status=pending", booking["start_date"]),
        (f"/admin/bookings/{booking['id']}", "Timeline"),
        ("/admin/payments?provider=stripe", payment["amount"]),
        (f"/admin/payments/{payment['id']}", payment["provider_payment_id"]),
        ("/admin/moderation", "Reported messages"),
        ("/admin/audit", "Audit log"),
        ("/admin/users?page_size=1&role=guest", "Next</a>"),  # pages keep their filters in the URL
    ):
        r = boss.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert expected in r.text, path
    assert 'href="?page_size=1&amp;role=guest&amp;page=2"' in boss.get("/admin/users?page_size=1&role=guest").text
    assert boss.get("/admin/users/00000000-0000-0000-0000-000000000000").status_code == 404
    assert boss.get("/admin/users?role=wizard").status_code == 400
    assert boss.get("/admin/users?search=%00").status_code == 400
    inactive = boss.get("/admin/users?active=false&role=guest").text
    assert guest.email not in inactive  # the filter reaches the function


def test_the_delete_button_keeps_its_danger_class(boss: TestClient, owner: psycopg.Connection[Any], host: User) -> None:
    listing = new_listing(owner, host.id)

    page = boss.get(f"/admin/listings?host={host.id}").text

    form = re.search(
        rf'<form method="post" action="/admin/listings/{listing}" class="inline">(?:(?!</form>).)*'
        r'value="delete">\s*(<button[^>]*>)Delete</button>',
        page,
        re.S,
    )
    assert form, page
    assert form.group(1) == '<button type="submit" class="danger">'
    assert "&#34;" not in page  # the attribute was escaped as text: class=&#34;danger&#34;
    assert '<button type="submit">Unpublish</button>' in page  # the other actions have no class


def test_a_write_needs_the_forms_csrf_token_and_our_origin(
    boss: TestClient, owner: psycopg.Connection[Any], guest: User
) -> None:
    url = f"/admin/users/{guest.id}"
    token = csrf(boss.get(url).text)

    assert boss.post(url, data={"action": "deactivate"}).status_code == 403
    assert boss.post(url, data={"action": "deactivate", "csrf": "0" * 64}).status_code == 403
    foreign = boss.post(url, data={"action": "deactivate", "csrf": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert (
        boss.post(
            "/admin/login", data={"email": "x@y.z", "password": "p"}, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert owner.execute("select is_active from app.users where id = %s", (guest.id,)).fetchone() == (True,)

    # Behind a TLS proxy the browser says https while we see http: the host is what must match.
    done = boss.post(
        url,
        data={"action": "deactivate", "csrf": token},
        headers={"Origin": "https://testserver"},
        follow_redirects=False,
    )

    assert done.status_code == 303
    assert owner.execute("select is_active from app.users where id = %s", (guest.id,)).fetchone() == (False,)


def test_an_expired_access_cookie_is_rotated_and_a_revoked_session_ends(
    boss: TestClient, api: TestClient, settings: Settings
) -> None:
    claims = jwt.decode(boss.cookies["nexus_admin"], options={"verify_signature": False})
    kid, secret = next(iter(settings.jwt_keys.items()))
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, secret, algorithm="HS256", headers={"kid": kid})
    refresh, seed = boss.cookies["nexus_admin_refresh"], boss.cookies["nexus_admin_csrf"]
    form_token = csrf(boss.get("/admin/users").text)  # a form opened before the rotation
    boss.cookies.clear()
    boss.cookies.set("nexus_admin", expired, path="/admin")
    boss.cookies.set("nexus_admin_refresh", refresh, path="/admin")
    boss.cookies.set("nexus_admin_csrf", seed, path="/admin")

    r = boss.get("/admin/users")

    assert r.status_code == 200
    assert any(c.startswith("nexus_admin=") for c in r.headers.get_list("set-cookie"))
    (rotated,) = [
        c.split(";")[0].split("=", 1)[1]
        for c in r.headers.get_list("set-cookie")
        if c.startswith("nexus_admin_refresh=")
    ]
    assert rotated != refresh  # the refresh token rotated too; the old one is spent

    assert csrf(r.text) == form_token  # the CSRF token survives the rotation: open forms still work
    out = boss.post("/admin/logout", data={"csrf": form_token}, follow_redirects=False)
    assert out.status_code == 303
    boss.cookies.clear()
    boss.cookies.set("nexus_admin", expired, path="/admin")
    boss.cookies.set("nexus_admin_refresh", rotated, path="/admin")
    boss.cookies.set("nexus_admin_csrf", seed, path="/admin")
    assert boss.get("/admin/", follow_redirects=False).status_code == 303  # signed out: no way back in


def test_each_kind_of_action_works_and_is_audited(
    boss: TestClient,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
) -> None:
    listing = new_listing(owner, host.id)
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(50), "end_date": day(52), "guests": 1},
        headers=guest.auth,
    ).json()
    payment = pay_and_succeed(api, stripe, guest, booking)
    work()
    token = csrf(boss.get("/admin/").text)

    def post(path: str, **data: str) -> Any:
        r = boss.post(path, data={"csrf": token, **data}, follow_redirects=False)
        assert r.status_code == 303 and "error=" not in r.headers["location"], r.headers.get("location")
        return r

    post(f"/admin/payments/{payment['id']}", amount="20.00", reason="Broken kettle")
    post(f"/admin/listings/{listing}", action="unpublish")
    post(f"/admin/bookings/{booking['id']}", reason="Host asked")
    post(f"/admin/users/{host.id}", action="end-sessions")
    post(f"/admin/users/{guest.id}", action="deactivate")
    work()

    audit = boss.get("/admin/audit?page_size=100").text
    for table in ("app.refunds", "app.products", "app.bookings", "app.users"):
        assert table in audit, table
    assert owner.execute("select published from app.products where id = %s", (listing,)).fetchone() == (False,)
    assert owner.execute("select status::text from app.bookings where id = %s", (booking["id"],)).fetchone() == (
        "canceled",
    )
    refunded = owner.execute(
        "select sum(amount)::text from app.refunds where payment_id = %s", (payment["id"],)
    ).fetchone()
    assert refunded == ("200.00",)  # 20.00 by hand, then the rest when the admin canceled (full refund)
    bad = boss.post(
        f"/admin/payments/{payment['id']}",
        data={"csrf": token, "reason": "again", "amount": "1.00"},
        follow_redirects=False,
    )
    assert "error=" in bad.headers["location"]  # nothing left to refund: the function's 409, shown on the page
