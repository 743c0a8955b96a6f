"""Messages over HTTP: the messages half of issue 10 (conversations, keyset reading, unread, reports, the rate limit).

Actors: `guest` (inquires or books), `host` (Ada, hosts the listing), `other_guest`,
`other_host` and `admin` (none of them a party), and anonymous callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_users import MakeUser, User


@pytest.fixture
def listing(owner: psycopg.Connection[Any], host: User) -> str:
    return new_listing(owner, host.id)


@pytest.fixture
def other_guest(make_user: MakeUser) -> User:
    return make_user("guest")


def start(client: TestClient, user: User | None, **body: Any) -> Any:
    return client.post("/api/conversations/", json=body, headers=user.auth if user else {})


def started(client: TestClient, user: User, **body: Any) -> dict[str, Any]:
    r = start(client, user, **{"body": "Hello!", **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def send(client: TestClient, user: User | None, conversation: str, text: Any = "Hi") -> Any:
    return client.post(
        f"/api/conversations/{conversation}/messages/", json={"body": text}, headers=user.auth if user else {}
    )


def messages(client: TestClient, user: User | None, conversation: str, query: str = "") -> Any:
    return client.get(f"/api/conversations/{conversation}/messages/{query}", headers=user.auth if user else {})


def book(client: TestClient, guest: User, listing: str) -> dict[str, Any]:
    r = client.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(20), "end_date": day(22), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def outsiders(other_guest: User, other_host: User, admin: User) -> list[User]:
    return [other_guest, other_host, admin]


# --- opening a conversation ---------------------------------------------------------------------


def test_a_guest_inquires_about_a_listing_before_booking(
    client: TestClient, guest: User, host: User, listing: str
) -> None:
    r = start(client, guest, product_id=listing, body="  Is the flat quiet at night?  ")

    assert r.status_code == 201, r.text
    c = r.json()
    assert c["as"] == "guest"
    assert c["product"]["id"] == listing and c["product"]["name"] == "A place"
    assert c["other_party"] == {"id": host.id, "first_name": "Ada", "photo_url": None}  # never email or phone
    assert c["message"]["body"] == "Is the flat quiet at night?"
    assert (c["message"]["sender_id"], c["message"]["recipient_id"]) == (guest.id, host.id)
    assert c["message"]["read_at"] is None
    assert c["last_message"] == c["message"] and c["unread_count"] == 0


def test_one_conversation_per_listing_and_guest(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User, listing: str
) -> None:
    first = started(client, guest, product_id=listing)
    booking = book(client, guest, listing)

    again = started(client, guest, product_id=listing, body="Me again")
    about_booking = started(client, host, booking_id=booking["id"], body="Welcome!")

    assert first["id"] == again["id"] == about_booking["id"]
    assert about_booking["as"] == "host" and about_booking["other_party"]["id"] == guest.id
    assert about_booking["message"]["recipient_id"] == guest.id
    (n,) = owner.execute("select count(*) from app.conversations where guest_id = %s", (guest.id,)).fetchone()  # type: ignore[misc]
    assert n == 1


def test_a_host_writes_to_a_guest_who_booked(client: TestClient, guest: User, host: User, listing: str) -> None:
    booking = book(client, guest, listing)

    c = started(client, host, booking_id=booking["id"], body="Check-in is at 15:00.")

    assert c["other_party"]["id"] == guest.id and c["product"]["id"] == listing
    assert client.get("/api/conversations/", headers=guest.auth).json()["results"][0]["id"] == c["id"]


def test_a_guest_writes_about_their_booking(client: TestClient, guest: User, host: User, listing: str) -> None:
    booking = book(client, guest, listing)

    c = started(client, guest, booking_id=booking["id"])

    assert c["as"] == "guest" and c["other_party"]["id"] == host.id


def test_a_host_writes_to_a_guest_who_inquired_in_their_conversation(
    client: TestClient, guest: User, host: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)

    r = send(client, host, c["id"], "Yes, very quiet.")

    assert r.status_code == 201, r.text
    assert (r.json()["sender_id"], r.json()["recipient_id"]) == (host.id, guest.id)


def test_nobody_opens_a_conversation_with_themselves(client: TestClient, host: User, listing: str) -> None:
    assert_problem(start(client, host, product_id=listing, body="Hi me"), 403, "product_id")


def test_nobody_opens_a_conversation_about_a_stranger_s_booking(
    client: TestClient, guest: User, other_guest: User, other_host: User, admin: User, listing: str
) -> None:
    booking = book(client, guest, listing)

    for user in outsiders(other_guest, other_host, admin):
        assert_problem(start(client, user, booking_id=booking["id"], body="Hi"), 404, "booking_id")


def test_anonymous_cannot_open_a_conversation(client: TestClient, listing: str) -> None:
    assert_problem(start(client, None, product_id=listing, body="Hi"), 401)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"product_id", "body"}),
        ({"body": "Hi"}, {"product_id"}),
        ({"product_id": "x", "body": ""}, {"product_id", "body"}),
        ({"product_id": None, "booking_id": None, "body": "Hi"}, {"product_id"}),
        ({"body": "   \n\t "}, {"product_id", "body"}),
        ({"body": "x" * 5001}, {"product_id", "body"}),
        ({"body": 42}, {"product_id", "body"}),
        ({"product_id": "00000000-0000-0000-0000-000000000000", "body": ""}, {"body"}),  # the unknown id waits
        ({"booking_id": 7, "body": "Hi"}, {"booking_id"}),
    ],
)
def test_start_reports_every_invalid_field(
    client: TestClient, guest: User, body: dict[str, Any], fields: set[str]
) -> None:
    problem = assert_problem(start(client, guest, **body), 400)

    assert set(problem["errors"]) == fields, problem


@pytest.mark.parametrize("field", ["product_id", "booking_id"])
def test_start_naming_what_does_not_exist_is_404_on_that_field(client: TestClient, guest: User, field: str) -> None:
    problem = assert_problem(start(client, guest, **{field: "00000000-0000-0000-0000-000000000000", "body": "Hi"}), 404)

    assert set(problem["errors"]) == {field}, problem


def test_both_ids_at_once_is_400_on_booking_id(client: TestClient, guest: User, listing: str) -> None:
    booking = book(client, guest, listing)

    assert_problem(start(client, guest, product_id=listing, booking_id=booking["id"], body="Hi"), 400, "booking_id")


def test_an_unpublished_listing_cannot_be_inquired_about(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User
) -> None:
    hidden = new_listing(owner, host.id, published=False)

    assert_problem(start(client, guest, product_id=hidden, body="Hi"), 404, "product_id")


def test_a_closed_account_receives_no_messages(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)
    owner.execute("update app.users set is_active = false where id = %s", (host.id,))

    assert_problem(send(client, guest, c["id"]), 409)
    assert_problem(start(client, guest, product_id=listing, body="Hello?"), 409)


def test_a_message_of_exactly_5000_characters_is_accepted(client: TestClient, guest: User, listing: str) -> None:
    c = started(client, guest, product_id=listing, body="é" * 5000)

    assert len(c["message"]["body"]) == 5000


# --- the list and unread counts ---------------------------------------------------------------


def test_list_newest_activity_first_with_unread_counts(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User, other_guest: User
) -> None:
    first, second = new_listing(owner, host.id), new_listing(owner, host.id)
    a = started(client, guest, product_id=first)
    b = started(client, other_guest, product_id=second)
    assert send(client, guest, a["id"], "Still there?").status_code == 201

    page = client.get("/api/conversations/", headers=host.auth).json()

    assert page["count"] == 2 and [c["id"] for c in page["results"]] == [a["id"], b["id"]]
    assert [c["unread_count"] for c in page["results"]] == [2, 1]
    assert page["results"][0]["last_message"]["body"] == "Still there?"
    assert {c["other_party"]["id"] for c in page["results"]} == {guest.id, other_guest.id}
    assert all(set(c["other_party"]) == {"id", "first_name", "photo_url"} for c in page["results"])
    assert client.get("/api/conversations/unread/", headers=host.auth).json() == {
        "unread_messages": 3,
        "unread_conversations": 2,
    }
    mine = client.get("/api/conversations/", headers=guest.auth).json()
    assert mine["count"] == 1 and mine["results"][0]["unread_count"] == 0


def test_list_shows_only_your_own_conversations(
    client: TestClient, guest: User, other_guest: User, other_host: User, admin: User, listing: str
) -> None:
    started(client, guest, product_id=listing)

    for user in outsiders(other_guest, other_host, admin):
        assert client.get("/api/conversations/", headers=user.auth).json()["count"] == 0, user.role
        assert client.get("/api/conversations/unread/", headers=user.auth).json()["unread_messages"] == 0
    assert_problem(client.get("/api/conversations/"), 401)
    assert_problem(client.get("/api/conversations/unread/"), 401)


def test_list_pagination_and_bad_params(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User
) -> None:
    for _ in range(3):
        started(client, guest, product_id=new_listing(owner, host.id))

    page = client.get("/api/conversations/?page_size=2&page=2", headers=guest.auth).json()

    assert page["count"] == 3 and len(page["results"]) == 1 and page["previous"]
    assert_problem(client.get("/api/conversations/?page=3&page_size=2", headers=guest.auth), 404, "page")
    assert_problem(client.get("/api/conversations/?page_size=0", headers=guest.auth), 400, "page_size")


def test_reading_marks_only_received_messages(client: TestClient, guest: User, host: User, listing: str) -> None:
    c = started(client, guest, product_id=listing)
    send(client, guest, c["id"], "One more thing")
    send(client, host, c["id"], "Sure")

    as_guest = client.post(f"/api/conversations/{c['id']}/read/", headers=guest.auth)
    as_host = client.post(f"/api/conversations/{c['id']}/read/", headers=host.auth)
    again = client.post(f"/api/conversations/{c['id']}/read/", headers=host.auth)

    assert as_guest.json() == {"conversation_id": c["id"], "marked_read": 1, "unread_count": 0, "unread_total": 0}
    assert as_host.json()["marked_read"] == 2 and again.json()["marked_read"] == 0
    thread = messages(client, host, c["id"]).json()["results"]
    assert [m["read_at"] is not None for m in thread] == [True, True, True]
    assert client.get("/api/conversations/unread/", headers=host.auth).json()["unread_messages"] == 0


def test_only_parties_mark_a_conversation_read(
    client: TestClient, guest: User, other_guest: User, other_host: User, admin: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)

    for user in outsiders(other_guest, other_host, admin):
        assert_problem(client.post(f"/api/conversations/{c['id']}/read/", headers=user.auth), 404)
    assert_problem(client.post(f"/api/conversations/{c['id']}/read/"), 401)
    assert_problem(client.post("/api/conversations/nope/read/", headers=guest.auth), 404)


# --- reading messages (keyset) -------------------------------------------------------------------


def test_messages_newest_first_by_keyset(client: TestClient, guest: User, host: User, listing: str) -> None:
    c = started(client, guest, product_id=listing, body="m0")
    for i in range(1, 5):
        assert send(client, guest if i % 2 else host, c["id"], f"m{i}").status_code == 201

    first = messages(client, host, c["id"], "?page_size=2").json()
    second = messages(client, host, c["id"], f"?page_size=2&before={first['next_before']}").json()
    last = messages(client, host, c["id"], f"?page_size=2&before={second['next_before']}").json()

    assert [m["body"] for m in first["results"]] == ["m4", "m3"]
    assert [m["body"] for m in second["results"]] == ["m2", "m1"]
    assert [m["body"] for m in last["results"]] == ["m0"] and last["next_before"] is None
    assert first["next_before"] == first["results"][-1]["id"]
    assert first["conversation"]["id"] == c["id"] and first["conversation"]["unread_count"] == 3  # m0, m1, m3
    everything = messages(client, guest, c["id"], "?page_size=500").json()  # capped at 100, like page_size elsewhere
    assert len(everything["results"]) == 5 and everything["next_before"] is None


def test_messages_bad_params_name_the_parameter(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)
    elsewhere = started(client, guest, product_id=new_listing(owner, host.id))

    assert_problem(messages(client, guest, c["id"], "?before=x"), 400, "before")
    assert_problem(messages(client, guest, c["id"], f"?before={elsewhere['message']['id']}"), 404, "before")
    assert_problem(messages(client, guest, c["id"], "?page_size=0"), 400, "page_size")
    assert_problem(messages(client, guest, c["id"], "?page_size=ten"), 400, "page_size")


def test_only_the_two_parties_read_the_messages(
    client: TestClient, guest: User, host: User, other_guest: User, other_host: User, admin: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)

    for user in (guest, host):
        assert messages(client, user, c["id"]).status_code == 200
    for user in outsiders(other_guest, other_host, admin):
        assert_problem(messages(client, user, c["id"]), 404)
    assert_problem(messages(client, None, c["id"]), 401)
    assert_problem(messages(client, guest, "not-a-uuid"), 404)
    assert_problem(messages(client, guest, "00000000-0000-0000-0000-000000000000"), 404)


# --- sending -------------------------------------------------------------------------------------


def test_only_the_two_parties_send(
    client: TestClient, guest: User, host: User, other_guest: User, other_host: User, admin: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)

    for user in outsiders(other_guest, other_host, admin):
        assert_problem(send(client, user, c["id"]), 404)
    assert_problem(send(client, None, c["id"]), 401)
    assert send(client, host, c["id"]).status_code == 201


@pytest.mark.parametrize("text", ["", "  \n ", "x" * 5001, None, 7, ["hi"]])
def test_send_names_the_body_field(client: TestClient, guest: User, listing: str, text: Any) -> None:
    c = started(client, guest, product_id=listing)

    assert_problem(send(client, guest, c["id"], text), 400, "body")


def test_the_body_is_plain_text_returned_as_sent(client: TestClient, guest: User, listing: str) -> None:
    c = started(client, guest, product_id=listing)

    r = send(client, guest, c["id"], "<script>alert(1)</script>\nline two")

    assert r.json()["body"] == "<script>alert(1)</script>\nline two"
    assert r.headers["content-type"] == "application/json"


@pytest.fixture
def low_limit(owner: psycopg.Connection[Any]) -> Iterator[int]:
    """Two messages a minute, restored afterwards."""
    (before,) = owner.execute("select max_messages from app_private.message_settings").fetchone()  # type: ignore[misc]
    owner.execute("update app_private.message_settings set max_messages = 2")
    try:
        yield 2
    finally:
        owner.execute("update app_private.message_settings set max_messages = %s", (before,))


def test_past_the_rate_limit_is_429_with_retry_after(
    client: TestClient, guest: User, host: User, listing: str, low_limit: int
) -> None:
    c = started(client, guest, product_id=listing)
    assert send(client, guest, c["id"]).status_code == 201

    refused = send(client, guest, c["id"])
    refused_start = start(client, guest, product_id=listing, body="Hi")

    problem = assert_problem(refused, 429)
    assert "2 messages" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert_problem(refused_start, 429)
    assert send(client, host, c["id"]).status_code == 201  # the limit is per sender
    assert len(messages(client, guest, c["id"]).json()["results"]) == 3


# --- reports and moderation ----------------------------------------------------------------------


def test_a_recipient_reports_a_message_and_admins_see_only_that(
    client: TestClient, guest: User, host: User, admin: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing, body="Pay me outside the platform")
    send(client, guest, c["id"], "An unreported message")
    reported = c["message"]["id"]

    r = client.post(
        f"/api/messages/{reported}/report/", json={"reason": "Asks for off-platform payment"}, headers=host.auth
    )

    assert r.status_code == 201, r.text
    assert r.json()["message_id"] == reported and r.json()["conversation_id"] == c["id"]
    queue = client.get("/api/reports/messages/", headers=admin.auth).json()
    mine = [x for x in queue["results"] if x["message"]["id"] == reported]
    assert len(mine) == 1 and mine[0]["reason"] == "Asks for off-platform payment"
    assert mine[0]["reporter_id"] == host.id and mine[0]["message"]["body"] == "Pay me outside the platform"
    assert mine[0]["conversation"]["guest"]["id"] == guest.id and mine[0]["conversation"]["host"]["id"] == host.id
    assert mine[0]["conversation"]["product"]["id"] == listing
    assert "An unreported message" not in r.text + str(queue)
    # The party endpoints stay closed to admins: moderation reads the queue only.
    assert_problem(messages(client, admin, c["id"]), 404)


def test_report_refusals(
    client: TestClient, guest: User, host: User, other_guest: User, other_host: User, admin: User, listing: str
) -> None:
    c = started(client, guest, product_id=listing)
    url = f"/api/messages/{c['message']['id']}/report/"

    assert_problem(client.post(url, json={"reason": "spam"}, headers=guest.auth), 403)  # your own message
    for user in outsiders(other_guest, other_host, admin):
        assert_problem(client.post(url, json={"reason": "spam"}, headers=user.auth), 404)
    assert_problem(client.post(url, json={"reason": "spam"}), 401)
    assert_problem(client.post(url, json={}, headers=host.auth), 400, "reason")
    assert_problem(client.post(url, json={"reason": "x" * 1001}, headers=host.auth), 400, "reason")
    assert client.post(url, json={"reason": "spam"}, headers=host.auth).status_code == 201
    assert_problem(client.post(url, json={"reason": "spam again"}, headers=host.auth), 409)
    assert_problem(client.post("/api/messages/nope/report/", json={"reason": "x"}, headers=host.auth), 404)


def test_only_admins_read_the_report_queue(
    client: TestClient, guest: User, host: User, other_host: User, admin: User
) -> None:
    for user in (guest, host, other_host):
        assert_problem(client.get("/api/reports/messages/", headers=user.auth), 403)
    assert_problem(client.get("/api/reports/messages/"), 401)
    assert client.get("/api/reports/messages/", headers=admin.auth).status_code == 200


# --- the listing goes away -----------------------------------------------------------------------


def test_deleting_the_listing_keeps_the_conversation(client: TestClient, guest: User, host: User, listing: str) -> None:
    c = started(client, guest, product_id=listing)

    assert client.delete(f"/api/products/{listing}/", headers=host.auth).status_code == 204

    mine = client.get("/api/conversations/", headers=guest.auth).json()["results"]
    assert [x["id"] for x in mine] == [c["id"]] and mine[0]["product"] is None
    assert send(client, guest, c["id"], "Where did the listing go?").status_code == 201
