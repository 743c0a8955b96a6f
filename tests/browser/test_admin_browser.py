"""The admin dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright).

The app is served by uvicorn on loopback with every third party configured (the stand-ins);
an admin signs in, every page renders with data, a search and a filter work, one action of
each kind works and shows in the audit log, and a guest is refused. A screenshot of each page
is saved under test-artifacts/screenshots/ (CI keeps them).

`make test` installs Chromium with apt-get when it can; without a browser these tests are
skipped with the reason.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_data import day, new_listing
from tests.fix_payments import pay_and_succeed
from tests.fix_users import User
from tests.loopback import LiveApp, Server
from tests.stripe_standin import StripeStandIn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "admin-password-1"

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make test installs it)")
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Chromium is not installed: run `apt-get install chromium` (make test does it as root)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def live(pay_settings: Settings) -> Iterator[LiveApp]:
    with Server(LiveApp(pay_settings), lifespan="on") as app:
        yield app


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, live: LiveApp, email: str, password: str) -> Any:
    page.goto(f"{live.base_url}/admin/")
    assert "/admin/login" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    return navigation.value


def submit(page: Any, form: Any, button: str) -> str:
    """Click a form's button, wait for the page that follows, return its status message."""
    with page.expect_navigation():
        form.get_by_role("button", name=button).click()
    flash = page.locator(".flash, .error").first
    return str(flash.inner_text()) if flash.count() else ""


def in_a_thread(work: Any) -> None:
    """Run the worker: Playwright's sync API keeps an event loop on this thread, so on another."""
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()


@pytest.fixture
def world(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, host: User, guest: User
) -> dict[str, Any]:
    """An admin with a password, a paid booking, a completed stay with a review."""
    email = f"boss-{uuid.uuid4().hex[:8]}@example.com"
    owner.execute("select app_private.create_admin(%s, %s)", (email, PASSWORD))
    listing = new_listing(owner, host.id)
    owner.execute("update app.products set name = 'Harbour loft' where id = %s", (listing,))
    paid = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(60), "end_date": day(63), "guests": 1},
        headers=guest.auth,
    ).json()
    payment = pay_and_succeed(api, stripe, guest, paid)
    in_a_thread(work)  # the payment confirms the booking before any clock moves
    stayed = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(1), "end_date": day(2), "guests": 1},
        headers=guest.auth,
    ).json()
    api.post(f"/api/bookings/{stayed['id']}/confirm/", headers=host.auth)
    owner.execute("select app.run_booking_jobs(now() + interval '3 days')")
    review = api.post(
        f"/api/bookings/{stayed['id']}/review/", json={"rating": 1, "comment": "Rude words here"}, headers=guest.auth
    ).json()
    first = api.post(
        "/api/conversations/", json={"product_id": listing, "body": "Send me your card number"}, headers=guest.auth
    ).json()
    api.post(f"/api/messages/{first['message']['id']}/report/", json={"reason": "Phishing"}, headers=host.auth)
    in_a_thread(work)
    return {"email": email, "listing": listing, "paid": paid, "payment": payment, "review": review}


def test_an_admin_works_through_every_page_and_every_action_is_audited(
    page: Any, live: LiveApp, world: dict[str, Any], guest: User
) -> None:
    response = sign_in(page, live, world["email"], PASSWORD)
    assert response.status == 200 and page.get_by_role("heading", name="Overview").is_visible()
    assert page.locator(".chart svg").count() >= 1
    shot(page, "overview")

    # Keyboard: the first Tab lands on the skip link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"

    # Users: search, open one, deactivate.
    page.goto(f"{live.base_url}/admin/users")
    page.get_by_label("Email or name").fill(guest.email)
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    assert "search=" in page.url and page.get_by_role("link", name=guest.email).is_visible()
    shot(page, "users")
    with page.expect_navigation():
        page.get_by_role("link", name=guest.email).click()
    shot(page, "user")
    assert (
        submit(page, page.locator("form", has=page.get_by_role("button", name="Deactivate")), "Deactivate") == "Saved."
    )

    # Listings: filter, unpublish.
    page.goto(f"{live.base_url}/admin/listings?search=Harbour")
    row = page.locator("tr", has_text="Harbour loft")
    shot(page, "listings")
    assert submit(page, row, "Unpublish") == "Listing unpublished."

    # Bookings: filter by status, open the paid one, cancel it (refund in full).
    page.goto(f"{live.base_url}/admin/bookings")
    page.get_by_label("Status").select_option("confirmed")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    assert "status=confirmed" in page.url
    shot(page, "bookings")
    page.goto(f"{live.base_url}/admin/bookings/{world['paid']['id']}")
    shot(page, "booking")
    page.get_by_label("Reason").fill("Listing withdrawn")
    assert "Canceled; refund 300.00 USD" in submit(page, page.locator("form.card"), "Cancel booking (refund in full)")

    # Payments: the refund is there; a second one is refused with the reason shown.
    page.goto(f"{live.base_url}/admin/payments?provider=stripe")
    shot(page, "payments")
    page.goto(f"{live.base_url}/admin/payments/{world['payment']['id']}")
    shot(page, "payment")
    assert page.get_by_text("cancellation").first.is_visible()

    # Moderation: the reported message is there; hide the review with a reason.
    page.goto(f"{live.base_url}/admin/moderation?hidden=false")
    assert page.locator("tr", has_text="Phishing").get_by_text("Send me your card number").is_visible()
    row = page.locator("tr", has_text="Rude words here")
    row.get_by_label("Reason").fill("Abusive")
    shot(page, "moderation")
    assert submit(page, row, "Hide") == "Review updated."

    # The audit log has each kind of action.
    page.goto(f"{live.base_url}/admin/audit?page_size=100")
    shot(page, "audit")
    text = page.locator("main").inner_text()
    for table in ("app.users", "app.products", "app.bookings", "app.reviews"):
        assert table in text, table


def test_a_guest_cannot_use_the_dashboard(page: Any, live: LiveApp, api: TestClient) -> None:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    api.post(
        "/api/register/", json={"email": email, "password": "guest-password-1", "first_name": "G", "last_name": "U"}
    )

    response = sign_in(page, live, email, "guest-password-1")

    assert response.status == 403
    assert page.get_by_text("for admins only").is_visible()
    shot(page, "refused")
