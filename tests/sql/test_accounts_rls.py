"""Row-level security on the users tables, tested in SQL as each role.

A denied read is 0 rows; a denied write is SQLSTATE 42501 or 0 rows changed.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.fix_db import As


@pytest.fixture
def two_users(make_user: Any) -> tuple[Any, Any]:
    return make_user("guest"), make_user("host")


def test_anon_sees_no_user(as_role: As, two_users: Any) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role("anon").execute("select count(*) from app.users").fetchone()


@pytest.mark.parametrize("role", ["guest", "host"])
def test_user_sees_only_own_row(as_role: As, make_user: Any, role: str) -> None:
    me, other = make_user(role), make_user("guest")
    conn = as_role(role, me.id)
    ids = {str(i) for (i,) in conn.execute("select id from app.users").fetchall()}
    assert ids == {me.id}
    assert conn.execute("select count(*) from app.users where id = %s", (other.id,)).fetchone() == (0,)


def test_user_cannot_update_another_user(as_role: As, two_users: Any) -> None:
    guest, host = two_users
    conn = as_role("guest", guest.id)
    cur = conn.execute("update app.users set first_name = 'Mallory' where id = %s", (host.id,))
    assert cur.rowcount == 0


def test_user_cannot_change_own_role_or_email(as_role: As, two_users: Any) -> None:
    guest, _ = two_users
    for column, value in (
        ("role", "admin"),
        ("email", "x@y.zz"),
        ("is_active", "true"),
        ("session_epoch", "5"),
        ("ended_sessions", "{}"),
    ):
        conn = as_role("guest", guest.id)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"update app.users set {column} = %s where id = %s", (value, guest.id))


def test_user_cannot_insert_or_delete_users(as_role: As, two_users: Any) -> None:
    guest, _ = two_users
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role("guest", guest.id).execute(
            "insert into app.users (email, first_name, last_name) values ('a@b.cc', 'a', 'b')"
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role("host", guest.id).execute("delete from app.users where id = %s", (guest.id,))


def test_admin_sees_and_manages_everyone(as_role: As, make_user: Any, two_users: Any) -> None:
    admin = make_user("admin")
    guest, host = two_users
    conn = as_role("admin", admin.id)
    assert conn.execute("select count(*) from app.users where id in (%s, %s)", (guest.id, host.id)).fetchone() == (2,)
    assert conn.execute("update app.users set role = 'host' where id = %s", (guest.id,)).rowcount == 1


@pytest.mark.parametrize("role", ["anon", "guest", "host", "admin"])
def test_nobody_reaches_app_private(as_role: As, make_user: Any, role: str) -> None:
    user = make_user("guest")
    for table in ("credentials", "refresh_tokens", "login_attempts", "oauth_identities", "oauth_states"):
        conn = as_role(role, None if role == "anon" else user.id)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select * from app_private.{table}")


def test_api_me_as_a_dba_would(as_role: As, two_users: Any) -> None:
    guest, _ = two_users
    (me,) = as_role("guest", guest.id).execute("select api.me()").fetchone()  # type: ignore[misc]
    assert me["id"] == guest.id and "password_hash" not in me


def test_create_admin_from_sql(owner: psycopg.Connection[Any]) -> None:
    (uid,) = owner.execute("select app_private.create_admin('Boss@Example.com', 'long enough pw')").fetchone()  # type: ignore[misc]
    assert owner.execute("select role from app.users where id = %s", (uid,)).fetchone() == ("admin",)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        owner.execute("select app_private.create_admin('boss2@example.com', 'short')")


def test_analyst_cannot_read_users(analyst_url: str) -> None:
    with psycopg.connect(analyst_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from app.users")


def test_only_self_admin_or_owner_end_sessions(as_role: As, owner: psycopg.Connection[Any], make_user: Any) -> None:
    guest, other, admin = make_user("guest"), make_user("guest"), make_user("admin")
    with pytest.raises(psycopg.Error) as denied:
        as_role("guest", guest.id).execute("select app.end_sessions(%s)", (other.id,))
    assert denied.value.sqlstate == "PT403"
    as_role("guest", guest.id).execute("select app.end_sessions(%s)", (guest.id,))
    as_role("admin", admin.id).execute("select app.end_sessions(%s)", (other.id,))
    as_role.conn.execute("rollback")  # those ran in rolled-back transactions; release the row
    owner.execute("select app.end_sessions(%s)", (other.id,))  # a DBA in psql
    assert owner.execute("select session_epoch from app.users where id = %s", (other.id,)).fetchone() == (1,)


def test_an_ended_session_is_remembered_for_a_day(owner: psycopg.Connection[Any], make_user: Any) -> None:
    user = make_user("guest")
    sessions = [
        owner.execute("select app_private.issue_refresh(%s) ->> 'session'", (user.id,)).fetchone()[0]  # type: ignore[index]
        for _ in range(2)
    ]
    owner.execute(
        "update app.users set ended_sessions = jsonb_build_object('stale', extract(epoch from now() - interval '25 hours')::bigint)"
        " where id = %s",
        (user.id,),
    )

    owner.execute("select app_private.end_session(%s)", (sessions[0],))

    (ended,) = owner.execute("select ended_sessions from app.users where id = %s", (user.id,)).fetchone()  # type: ignore[misc]
    assert set(ended) == {sessions[0]}  # this one recorded, the day-old one dropped, the live one untouched
    live = owner.execute(
        "select family_id::text from app_private.refresh_tokens where user_id = %s and revoked_at is null", (user.id,)
    ).fetchall()
    assert sessions[1] in {f for (f,) in live} and sessions[0] not in {f for (f,) in live}
