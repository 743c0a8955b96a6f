"""Row-level security on conversations, messages and reports, tested in SQL as each role.

A denied read is 0 rows (or 42501 for a role without the grant); a denied write is SQLSTATE
42501: no client role holds insert, update or delete on these tables, not even a party.
Rows are made as the owner (a DBA), each test reads them as someone else.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.fix_data import new_listing
from tests.fix_db import As
from tests.fix_users import MakeUser, User


@dataclass
class Thread:
    conversation: str
    guest: User
    host: User
    inquiry: str  # guest -> host
    reply: str  # host -> guest


def one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def thread(owner: psycopg.Connection[Any], make_user: MakeUser) -> Thread:
    guest, host = make_user("guest"), make_user("host")
    listing = new_listing(owner, host.id)
    conversation = one(
        owner,
        "insert into app.conversations (product_id, guest_id, host_id) values (%s, %s, %s) returning id::text",
        listing,
        guest.id,
        host.id,
    )
    send = "insert into app.messages (conversation_id, sender_id, recipient_id, body) values (%s, %s, %s, %s) returning id::text"
    inquiry = one(owner, send, conversation, guest.id, host.id, "Is it quiet?")
    reply = one(owner, send, conversation, host.id, guest.id, "Very.")
    return Thread(conversation, guest, host, inquiry, reply)


def visible(conn: psycopg.Connection[Any], thread: Thread) -> tuple[int, set[str]]:
    conversations = one(conn, "select count(*) from app.conversations where id = %s", thread.conversation)
    messages = {
        m
        for (m,) in conn.execute("select id::text from app.messages where conversation_id = %s", (thread.conversation,))
    }
    return conversations, messages


# --- reads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("party", ["guest", "host"])
def test_each_party_reads_the_conversation_and_every_message(as_role: As, thread: Thread, party: str) -> None:
    user = thread.guest if party == "guest" else thread.host

    seen = visible(as_role(user.role, user.id), thread)

    assert seen == (1, {thread.inquiry, thread.reply})


@pytest.mark.parametrize("role", ["guest", "host", "admin"])
def test_anyone_else_reads_zero_rows(as_role: As, make_user: MakeUser, thread: Thread, role: str) -> None:
    stranger = make_user(role)

    seen = visible(as_role(role, stranger.id), thread)

    assert seen == (0, set())


def test_anonymous_has_no_grant_at_all(as_role: As, thread: Thread) -> None:
    for table in ("app.conversations", "app.messages", "app.message_reports", "app_private.message_settings"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role("anon").execute(f"select count(*) from {table}")


@pytest.mark.parametrize("party", ["guest", "host"])
def test_parties_never_read_reports_or_settings(as_role: As, thread: Thread, party: str) -> None:
    user = thread.guest if party == "guest" else thread.host
    for table in ("app.message_reports", "app_private.message_settings"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(user.role, user.id).execute(f"select count(*) from {table}")


def test_a_report_opens_that_message_and_its_conversation_to_admins(
    owner: psycopg.Connection[Any], as_role: As, make_user: MakeUser, thread: Thread
) -> None:
    admin, stranger = make_user("admin"), make_user("guest")
    owner.execute(
        "insert into app.message_reports (message_id, conversation_id, reporter_id, reason) values (%s, %s, %s, 'spam')",
        (thread.inquiry, thread.conversation, thread.host.id),
    )

    as_admin = visible(as_role("admin", admin.id), thread)
    reports = one(
        as_role("admin", admin.id), "select count(*) from app.message_reports where message_id = %s", thread.inquiry
    )
    as_stranger = visible(as_role("guest", stranger.id), thread)

    assert as_admin == (1, {thread.inquiry})  # the reported message, never the reply
    assert reports == 1
    assert as_stranger == (0, set())


def test_the_profile_helper_answers_only_to_a_party(as_role: As, make_user: MakeUser, thread: Thread) -> None:
    stranger = make_user("guest")
    query = "select app.conversation_json(%s)"

    mine = one(as_role("guest", thread.guest.id), query, thread.conversation)
    theirs = one(as_role("guest", stranger.id), query, thread.conversation)

    assert mine["other_party"]["id"] == thread.host.id and "email" not in mine["other_party"]
    assert theirs is None


# --- writes --------------------------------------------------------------------------------------

WRITES = {
    "insert conversation": "insert into app.conversations (guest_id, host_id) values ('{guest}', '{host}')",
    "move a conversation": "update app.conversations set last_message_at = now() where id = '{conversation}'",
    "delete conversation": "delete from app.conversations where id = '{conversation}'",
    "insert message": "insert into app.messages (conversation_id, sender_id, recipient_id, body)"
    " values ('{conversation}', '{guest}', '{host}', 'forged')",
    "edit message": "update app.messages set body = 'edited' where id = '{inquiry}'",
    "mark read": "update app.messages set read_at = now() where id = '{inquiry}'",
    "delete message": "delete from app.messages where id = '{inquiry}'",
    "report": "insert into app.message_reports (message_id, conversation_id, reporter_id, reason)"
    " values ('{inquiry}', '{conversation}', '{host}', 'x')",
    "change the limit": "update app_private.message_settings set max_messages = 1000",
}


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("who", ["guest", "host", "admin"])
def test_no_client_role_writes_directly(as_role: As, make_user: MakeUser, thread: Thread, write: str, who: str) -> None:
    user = {"guest": thread.guest, "host": thread.host, "admin": make_user("admin")}[who]
    statement = WRITES[write].format(
        guest=thread.guest.id, host=thread.host.id, conversation=thread.conversation, inquiry=thread.inquiry
    )

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role(user.role, user.id).execute(statement)


@pytest.fixture
def dba(owner: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """The owner inside a transaction that is rolled back."""
    with owner.transaction(force_rollback=True):
        yield owner


def test_a_message_is_immutable_even_for_the_owner(dba: psycopg.Connection[Any], thread: Thread) -> None:
    for change in (
        "body = 'edited'",
        "sender_id = recipient_id, recipient_id = sender_id",
        "sent_at = sent_at - interval '1 day'",
    ):
        with pytest.raises(psycopg.Error) as refused, dba.transaction():
            dba.execute(f"update app.messages set {change} where id = %s", (thread.inquiry,))
        assert refused.value.sqlstate == "PT409", change


def test_read_at_is_set_once(dba: psycopg.Connection[Any], thread: Thread) -> None:
    dba.execute("update app.messages set read_at = now() where id = %s", (thread.inquiry,))

    with pytest.raises(psycopg.Error) as refused, dba.transaction():
        dba.execute("update app.messages set read_at = null where id = %s", (thread.inquiry,))

    assert refused.value.sqlstate == "PT409"


def test_a_conversation_keeps_its_parties(dba: psycopg.Connection[Any], make_user: MakeUser, thread: Thread) -> None:
    intruder = make_user("guest")

    with pytest.raises(psycopg.Error) as refused:
        dba.execute("update app.conversations set guest_id = %s where id = %s", (intruder.id, thread.conversation))

    assert refused.value.sqlstate == "PT409"


def test_one_conversation_per_listing_and_guest(dba: psycopg.Connection[Any], thread: Thread) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        dba.execute(
            "insert into app.conversations (product_id, guest_id, host_id)"
            " select product_id, guest_id, host_id from app.conversations where id = %s",
            (thread.conversation,),
        )


# --- the functions, as a DBA would call them ------------------------------------------------------


def test_api_as_each_party_and_as_a_stranger(as_role: As, make_user: MakeUser, thread: Thread) -> None:
    stranger = make_user("host")

    unread = one(as_role("guest", thread.guest.id), "select api.conversation_unread()")
    sent = one(
        as_role("host", thread.host.id), 'select api.message_send(%s, \'{"body": "Welcome"}\')', thread.conversation
    )
    with pytest.raises(psycopg.Error) as refused:
        as_role("host", stranger.id).execute('select api.message_send(%s, \'{"body": "Hi"}\')', (thread.conversation,))

    assert unread == {"unread_messages": 1, "unread_conversations": 1}
    assert sent["recipient_id"] == thread.guest.id
    assert refused.value.sqlstate == "PT404"


def test_concurrent_sends_never_overshoot_the_limit(
    owner: psycopg.Connection[Any], app_url: str, thread: Thread
) -> None:
    senders = 8
    barrier = threading.Barrier(senders, timeout=30)
    results: list[str] = []
    lock = threading.Lock()
    claims = json.dumps({"sub": thread.host.id, "role": "host"})

    def worker() -> None:
        with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:
            barrier.wait()
            try:
                with conn.transaction():
                    conn.execute(
                        "select set_config('role', 'host', true), set_config('request.jwt.claims', %s, true)", (claims,)
                    )
                    conn.execute('select api.message_send(%s, \'{"body": "again"}\')', (thread.conversation,))
                outcome = "ok"
            except psycopg.Error as exc:
                outcome = exc.sqlstate or "?"
            with lock:
                results.append(outcome)

    before = one(owner, "select max_messages from app_private.message_settings")
    owner.execute("update app_private.message_settings set max_messages = 4")
    try:
        threads = [threading.Thread(target=worker) for _ in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        owner.execute("update app_private.message_settings set max_messages = %s", (before,))

    # The host already sent one (the fixture's reply): three more fit, five are refused.
    assert sorted(results) == ["PT429"] * 5 + ["ok"] * 3


# --- analytics -----------------------------------------------------------------------------------


def test_analysts_see_monthly_counts_and_no_text(analyst_url: str, thread: Thread) -> None:
    with psycopg.connect(analyst_url) as conn:
        row = conn.execute(
            "select messages, from_guests, from_hosts, new_conversations from analytics.messages_monthly"
            " where month = date_trunc('month', now() at time zone 'UTC')::date"
        ).fetchone()
        columns = {d.name for d in conn.execute("select * from analytics.messages_monthly limit 0").description or []}

    assert row is not None and row[0] >= 2 and row[1] >= 1 and row[2] >= 1 and row[3] >= 1
    assert columns == {
        "month",
        "messages",
        "from_guests",
        "from_hosts",
        "read",
        "active_conversations",
        "new_conversations",
        "reported_messages",
    }
