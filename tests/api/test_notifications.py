"""Notifications over HTTP: who hears about what, in the app and by email through a real SMTP server
on loopback (tests/smtp_sink.py), preferences, retries and dead letters, and the outbox."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from starlette.testclient import TestClient

from api.settings import Settings
from api.worker import make_app, recover_stalled, run_until_idle
from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_payments import pay, pay_and_succeed, retry_now, webhook
from tests.fix_users import MakeUser, User
from tests.smtp_sink import SmtpSink
from tests.stripe_standin import StripeStandIn

ROOT = Path(__file__).resolve().parents[2]


def book(
    api: TestClient, owner: psycopg.Connection[Any], host: User, guest: User, name: str = "Sea view"
) -> dict[str, Any]:
    listing = new_listing(owner, host.id)
    owner.execute("update app.products set name = %s where id = %s", (name, listing))
    r = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(20), "end_date": day(23), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def types(api: TestClient, user: User) -> list[str]:
    """The user's in-app notification types, oldest first."""
    return [
        n["type"] for n in reversed(api.get("/api/notifications/?page_size=100", headers=user.auth).json()["results"])
    ]


def subjects(smtp: SmtpSink, user: User) -> list[str]:
    return [str(m["Subject"]) for m in smtp.to(user.email)]


# --- who hears what ------------------------------------------------------------------------


def test_a_booking_request_tells_the_host_by_email_and_in_the_app_and_nobody_else(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, host: User, guest: User
) -> None:
    booking = book(api, owner, host, guest, name='Loft <script>alert("x")</script> & more')
    work()

    assert types(api, host) == ["booking_requested"]
    assert types(api, guest) == []
    (mail,) = smtp.to(host.email)
    assert smtp.to(guest.email) == []
    assert str(mail["Subject"]) == 'New booking request for Loft <script>alert("x")</script> & more'
    assert str(mail["From"]) == "Nexus <bookings@nexus.test>"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"https://nexus.test/host/bookings/{booking['id']}" in text and "Hi Ada" in text
    assert "<script>" not in html and "Loft &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    (notification,) = api.get("/api/notifications/", headers=host.auth).json()["results"]
    assert str(mail["Message-ID"]) == f"<{notification['id']}.email@nexus>"
    assert notification["data"]["booking_id"] == booking["id"] and notification["read_at"] is None


def test_paying_confirms_and_both_parties_hear_it_and_the_guest_gets_a_receipt(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    smtp: SmtpSink,
    work: Any,
    host: User,
    guest: User,
) -> None:
    booking = book(api, owner, host, guest)
    pay_and_succeed(api, stripe, guest, booking)
    work()

    assert types(api, guest) == ["payment_succeeded", "booking_confirmed"]
    assert types(api, host) == ["booking_requested", "booking_confirmed"]
    assert "Payment received: 300.00 USD" in subjects(smtp, guest)


def test_a_cancellation_tells_the_other_party_with_the_refund_and_the_refund_tells_the_guest(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    smtp: SmtpSink,
    work: Any,
    host: User,
    guest: User,
) -> None:
    booking = book(api, owner, host, guest)
    pay_and_succeed(api, stripe, guest, booking)
    work()

    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=guest.auth)
    work()

    assert types(api, host)[-1] == "booking_canceled"
    assert "booking_canceled" not in types(api, guest)
    assert types(api, guest)[-1] == "refund_succeeded"
    canceled = api.get("/api/notifications/", headers=host.auth).json()["results"][0]
    assert canceled["data"]["refund"] == "300.00"
    assert "Refund sent: 300.00 USD" in subjects(smtp, guest)


def test_an_expired_hold_tells_the_guest(
    api: TestClient, owner: psycopg.Connection[Any], work: Any, host: User, guest: User
) -> None:
    booking = book(api, owner, host, guest)
    owner.execute("update app.bookings set expires_at = now() - interval '1 minute' where id = %s", (booking["id"],))
    owner.execute("select app.run_booking_jobs()")

    assert types(api, guest) == ["hold_expired"]
    assert types(api, host) == ["booking_requested"]


def test_a_completed_stay_invites_a_review_the_review_tells_the_host_the_response_tells_the_guest(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, host: User, guest: User
) -> None:
    booking = book(api, owner, host, guest)
    api.post(f"/api/bookings/{booking['id']}/confirm/", headers=host.auth)
    owner.execute("select app.run_booking_jobs(now() + interval '30 days')")
    assert types(api, guest)[-1] == "stay_completed"

    review = api.post(
        f"/api/bookings/{booking['id']}/review/", json={"rating": 4, "comment": "Nice"}, headers=guest.auth
    )
    api.put(f"/api/reviews/{review.json()['id']}/response/", json={"body": "Thanks!"}, headers=host.auth)
    api.put(f"/api/reviews/{review.json()['id']}/response/", json={"body": "Thanks again!"}, headers=host.auth)
    work()

    assert types(api, host)[-1] == "new_review"
    assert types(api, guest)[-1] == "review_response" and types(api, guest).count("review_response") == 1
    assert "New 4-star review of Sea view" in subjects(smtp, host)


def test_messages_notify_in_the_app_always_and_by_email_once_per_conversation_per_window(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, host: User, guest: User
) -> None:
    listing = new_listing(owner, host.id)
    first = api.post("/api/conversations/", json={"product_id": listing, "body": "Is it quiet?"}, headers=guest.auth)
    conversation = first.json()["id"]
    for text in ("Also: parking?", "And pets?"):
        api.post(f"/api/conversations/{conversation}/messages/", json={"body": text}, headers=guest.auth)
    work()

    assert types(api, host) == ["new_message"] * 3
    assert len([s for s in subjects(smtp, host) if s.startswith("New message from")]) == 1
    assert types(api, guest) == []


def test_a_sign_in_from_a_new_address_is_a_security_notice_that_cannot_be_turned_off(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, guest: User
) -> None:
    def signed_in(addr: str) -> None:
        owner.execute(
            "insert into app_private.login_attempts (email, client_addr, succeeded) values (%s, %s, true)",
            (guest.email, addr),
        )

    signed_in("10.0.0.1")  # the first sign-in is not news
    signed_in("10.0.0.1")  # nor a known address
    signed_in("203.0.113.7")
    work()

    assert types(api, guest) == ["new_sign_in"]
    (mail,) = smtp.to(guest.email)
    assert "203.0.113.7" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    r = api.put("/api/users/me/notification-preferences/", json={"new_sign_in": {"email": False}}, headers=guest.auth)
    assert_problem(r, 400, "new_sign_in")


# --- preferences -------------------------------------------------------------------------------


def test_preferences_are_respected_per_type_and_channel(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, host: User, guest: User
) -> None:
    url = "/api/users/me/notification-preferences/"
    r = api.put(url, json={"booking_requested": {"email": False}}, headers=host.auth)
    assert r.status_code == 200, r.text
    prefs = {t["type"]: t for t in r.json()["types"]}
    assert (prefs["booking_requested"]["email"], prefs["booking_requested"]["in_app"]) == (False, True)
    assert prefs["new_sign_in"]["mandatory"] is True

    book(api, owner, host, guest)
    work()
    assert types(api, host) == ["booking_requested"] and smtp.to(host.email) == []

    api.put(url, json={"booking_requested": {"in_app": False}}, headers=host.auth)
    book(api, owner, host, guest)
    work()
    assert types(api, host) == ["booking_requested"]  # no new in-app row, still no email
    assert api.get(url, headers=host.auth).json()["types"][0]["type"]
    me = api.get("/api/users/me/", headers=host.auth).json()
    assert me["preferences"]["notifications"]["booking_requested"] == {"email": False, "in_app": False}


def test_bad_preferences_name_the_type(api: TestClient, guest: User) -> None:
    url = "/api/users/me/notification-preferences/"

    body = assert_problem(
        api.put(
            url,
            json={"nope": {"email": False}, "new_review": {"sms": True}, "hold_expired": {"email": "no"}},
            headers=guest.auth,
        ),
        400,
    )
    assert {"nope", "new_review", "hold_expired"} <= body["errors"].keys()
    assert_problem(api.put(url, json=[1], headers=guest.auth), 400)
    assert_problem(api.get(url), 401)


# --- the in-app list -------------------------------------------------------------------------


def test_read_unread_and_nobody_elses(
    api: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, host: User, guest: User
) -> None:
    book(api, owner, host, guest)
    book(api, owner, host, guest)
    first, second = api.get("/api/notifications/", headers=host.auth).json()["results"]

    assert api.get("/api/notifications/unread-count/", headers=host.auth).json() == {"unread": 2}
    read = api.post(f"/api/notifications/{first['id']}/read/", headers=host.auth)
    assert read.status_code == 200 and read.json()["read_at"]
    assert [n["id"] for n in api.get("/api/notifications/?unread=true", headers=host.auth).json()["results"]] == [
        second["id"]
    ]
    assert api.post("/api/notifications/read-all/", headers=host.auth).json() == {"marked": 1}
    assert api.get("/api/notifications/unread-count/", headers=host.auth).json() == {"unread": 0}

    stranger = make_user("host")
    assert_problem(api.post(f"/api/notifications/{first['id']}/read/", headers=stranger.auth), 404)
    assert_problem(api.post(f"/api/notifications/{first['id']}/read/", headers=guest.auth), 404)
    assert api.get("/api/notifications/", headers=stranger.auth).json()["count"] == 0
    assert_problem(api.get("/api/notifications/"), 401)
    assert_problem(api.get("/api/notifications/?unread=yes", headers=host.auth), 400, "unread")
    assert_problem(api.post("/api/notifications/nope/read/", headers=host.auth), 404)


# --- delivery: retries, dead letters, the outbox --------------------------------------------


def test_a_relay_refusing_is_retried_then_the_mail_is_delivered_once(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, host: User, guest: User
) -> None:
    work()  # whatever earlier tests left to send goes first
    smtp.refuse_next = 2
    book(api, owner, host, guest)

    for _ in range(3):
        work()
        retry_now(owner)
    work()

    assert len(smtp.to(host.email)) == 1
    (state, attempts) = owner.execute(  # type: ignore[misc]
        "select email_state::text, email_attempts from app.notifications where user_id = %s", (host.id,)
    ).fetchone()
    assert (state, attempts) == ("sent", 3)


def test_after_the_last_attempt_a_mail_is_a_dead_letter_admins_see_and_resend(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, admin: User, host: User, guest: User
) -> None:
    owner.execute("update app_private.notification_settings set email_max_attempts = 2")
    try:
        work()  # whatever earlier tests left to send goes first
        smtp.refuse_next = 2
        book(api, owner, host, guest)
        for _ in range(3):
            work()
            retry_now(owner)
    finally:
        owner.execute("update app_private.notification_settings set email_max_attempts = 10")
    dead = api.get("/api/admin/notifications/dead/?page_size=100", headers=admin.auth).json()["results"]
    (letter,) = [d for d in dead if d["user_id"] == host.id]
    assert letter["email_attempts"] == 2 and "451" in letter["email_error"]
    assert smtp.to(host.email) == []
    assert_problem(api.get("/api/admin/notifications/dead/", headers=host.auth), 403)
    assert_problem(api.post(f"/api/admin/notifications/{letter['id']}/resend/", headers=host.auth), 403)

    resent = api.post(f"/api/admin/notifications/{letter['id']}/resend/", headers=admin.auth)
    work()

    assert resent.json()["email_state"] == "pending"
    assert len(smtp.to(host.email)) == 1
    assert_problem(api.post(f"/api/admin/notifications/{letter['id']}/resend/", headers=admin.auth), 409)


def test_without_an_smtp_host_mails_wait_in_the_local_outbox(
    api: TestClient, owner: psycopg.Connection[Any], pay_settings: Settings, smtp: SmtpSink, host: User, guest: User
) -> None:
    book(api, owner, host, guest)

    asyncio.run(run_until_idle(make_app(replace(pay_settings, smtp_host=""))))

    assert smtp.to(host.email) == []
    (to, subject) = owner.execute(  # type: ignore[misc]
        "select o.to_address, o.subject from app_private.email_outbox o"
        " join app.notifications n on n.id = o.notification_id where n.user_id = %s",
        (host.id,),
    ).fetchone()
    assert (to, subject) == (host.email, "New booking request for Sea view")


@pytest.mark.parametrize("role", ["guest", "host", "admin"])
def test_in_sql_nobody_reads_or_marks_anothers_notifications(
    api: TestClient,
    owner: psycopg.Connection[Any],
    as_role: Any,
    make_user: MakeUser,
    host: User,
    guest: User,
    role: str,
) -> None:
    book(api, owner, host, guest)
    other = make_user(role)
    conn = as_role(role, other.id)

    assert conn.execute("select count(*) from app.notifications where user_id = %s", (host.id,)).fetchone() == (0,)
    assert conn.execute("update app.notifications set read_at = now() where user_id = %s", (host.id,)).rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("update app.notifications set data = '{}' where user_id = %s", (other.id,))


def test_a_worker_killed_mid_send_loses_no_mail_and_sends_none_twice(
    api: TestClient,
    owner: psycopg.Connection[Any],
    owner_url: str,
    pay_settings: Settings,
    smtp: SmtpSink,
    work: Any,
    host: User,
    guest: User,
) -> None:
    work()  # whatever earlier tests left to send goes first
    smtp.rcpt_seen.clear()
    smtp.stall_rcpt = 30.0
    book(api, owner, host, guest)
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "LOG_LEVEL": "warning",
    }
    worker = subprocess.Popen([sys.executable, "-m", "api.worker"], cwd=ROOT, env=env)
    try:
        assert smtp.rcpt_seen.wait(timeout=30), "the worker never reached the relay"
    finally:
        worker.kill()  # mid-conversation with the relay: the mail was not accepted
        worker.wait(timeout=10)

    async def recover() -> int:
        app = make_app(pay_settings)
        async with app.open_async():
            return await recover_stalled(app, seconds_since_heartbeat=0)

    assert asyncio.run(recover()) >= 1
    work()
    work()

    (mail,) = smtp.to(host.email)
    assert str(mail["Subject"]) == "New booking request for Sea view"


def test_a_relay_that_is_down_is_retried_and_the_mail_goes_out_once_it_is_back(
    api: TestClient,
    owner: psycopg.Connection[Any],
    pay_settings: Settings,
    smtp: SmtpSink,
    work: Any,
    host: User,
    guest: User,
) -> None:
    work()  # whatever earlier tests left to send goes first
    book(api, owner, host, guest)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = replace(pay_settings, smtp_port=closed.getsockname()[1])  # nothing listens there

        asyncio.run(run_until_idle(make_app(down)))

    (state, attempts, error) = owner.execute(  # type: ignore[misc]
        "select email_state::text, email_attempts, email_error from app.notifications where user_id = %s", (host.id,)
    ).fetchone()
    assert (state, attempts) == ("pending", 1) and error
    assert smtp.to(host.email) == []
    retry_now(owner)
    work()
    assert len(smtp.to(host.email)) == 1


def test_money_mails_reach_the_right_party(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    smtp: SmtpSink,
    work: Any,
    host: User,
    guest: User,
) -> None:
    booking = book(api, owner, host, guest)
    declined = pay(api, guest, booking).json()
    owner.execute(
        "select app_private.payment_apply('stripe', %s, 'failed', 30000, 'USD', 'Your card was declined.')",
        (declined["provider_payment_id"],),
    )
    account = api.post("/api/users/me/payout-account/", json={"provider": "stripe"}, headers=host.auth).json()
    webhook(api, stripe, "account.updated", stripe.enable_payouts(account["provider_account_id"]))
    pay_and_succeed(api, stripe, guest, booking)
    work()
    owner.execute("select app.run_booking_jobs(now() + interval '30 days')")
    work()

    guest_mail = subjects(smtp, guest)
    host_mail = subjects(smtp, host)
    assert "Your payment for Sea view did not go through" in guest_mail
    assert "How was Sea view?" in guest_mail
    assert "Payout sent: 270.00 USD" in host_mail
    assert not any(s.startswith(("Payout", "Payment")) for s in host_mail if "Payout sent" not in s)
    assert not any(s.startswith("Payout") for s in guest_mail)


def test_garbage_in_a_users_free_form_preferences_breaks_nothing(
    api: TestClient, owner: psycopg.Connection[Any], host: User, guest: User
) -> None:
    junk = {"notifications": {"hold_expired": {"in_app": "nope", "email": 3}, "booking_requested": 7}}
    assert api.patch("/api/users/me/", json={"preferences": junk}, headers=guest.auth).status_code == 400
    owner.execute("update app.users set preferences = %s where id = %s", (Jsonb(junk), guest.id))  # a DBA's typo
    booking = book(api, owner, host, guest)
    owner.execute("update app.bookings set expires_at = now() - interval '1 minute' where id = %s", (booking["id"],))

    owner.execute("select app.run_booking_jobs()")  # the job every booking depends on still runs

    assert types(api, guest) == ["hold_expired"]  # junk is no answer: the defaults apply


def test_a_listing_name_with_line_breaks_makes_a_one_line_subject(
    api: TestClient, owner: psycopg.Connection[Any], smtp: SmtpSink, work: Any, host: User, guest: User
) -> None:
    book(api, owner, host, guest, name="Loft\r\nBcc: victim@example.com")
    work()

    (mail,) = smtp.to(host.email)
    assert str(mail["Subject"]) == "New booking request for Loft Bcc: victim@example.com"
    assert mail["Bcc"] is None


def test_a_notification_committed_late_is_still_read_behind_the_cursor(
    api: TestClient, owner: psycopg.Connection[Any], as_role: Any, host: User, guest: User
) -> None:
    book(api, owner, host, guest)
    book(api, owner, host, guest)
    older, newer = sorted(n["seq"] for n in api.get("/api/notifications/", headers=host.auth).json()["results"])

    conn = as_role("host", host.id)
    (rows,) = conn.execute("select api.notification_since(%s)", (str(newer),)).fetchone()

    assert older in [n["seq"] for n in rows]  # the stream drops what it already sent; nothing committed late is lost
