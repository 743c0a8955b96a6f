"""Catalog row-level security, tried directly in SQL as each role (no API in between).

A denied read is 0 rows; a denied write is 0 rows changed (the row is invisible to the
policy) or SQLSTATE 42501 (no grant, or a new row the policy refuses).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.fix_db import As
from tests.fix_users import User

Conn = psycopg.Connection[Any]


@pytest.fixture
def catalog(owner: Conn, make_user: Callable[..., User]) -> dict[str, Any]:
    """A host with one published and one unpublished listing, another host, a guest, an admin."""
    host, other, guest, admin = make_user("host"), make_user("host"), make_user("guest"), make_user("admin")
    slug = "rls-" + uuid.uuid4().hex[:12]
    (cat,) = owner.execute(
        "insert into app.categories (name, slug) values (%s, %s) returning id", (slug, slug)
    ).fetchone()  # type: ignore[misc]
    ids = {}
    for published in (True, False):
        (ids[published],) = owner.execute(
            """insert into app.products (host_id, category_id, name, description, location, price_per_night, max_guests,
                                         published)
               values (%s, %s, 'RLS flat', '', 'Accra', 10, 1, %s) returning id""",
            (host.id, cat, published),
        ).fetchone()  # type: ignore[misc]
    return {
        "host": host,
        "other": other,
        "guest": guest,
        "admin": admin,
        "category": cat,
        "published": ids[True],
        "unpublished": ids[False],
    }


def visible(conn: Conn, product_id: object) -> bool:
    return conn.execute("select count(*) from app.products where id = %s", (product_id,)).fetchone() == (1,)


def test_anon_and_guests_see_only_published(as_role: As, catalog: dict[str, Any]) -> None:
    for role, user in (("anon", None), ("guest", catalog["guest"].id), ("host", catalog["other"].id)):
        conn = as_role(role, user)
        assert visible(conn, catalog["published"]), role
        assert not visible(conn, catalog["unpublished"]), role


def test_host_and_admin_see_unpublished(as_role: As, catalog: dict[str, Any]) -> None:
    assert visible(as_role("host", catalog["host"].id), catalog["unpublished"])
    assert visible(as_role("admin", catalog["admin"].id), catalog["unpublished"])


def test_other_host_cannot_update_or_delete(as_role: As, catalog: dict[str, Any]) -> None:
    conn = as_role("host", catalog["other"].id)
    for pid in (catalog["published"], catalog["unpublished"]):
        assert conn.execute("update app.products set name = 'Taken' where id = %s", (pid,)).rowcount == 0
        assert conn.execute("delete from app.products where id = %s", (pid,)).rowcount == 0
        assert conn.execute("delete from app.product_amenities where product_id = %s", (pid,)).rowcount == 0


def test_host_updates_own_but_cannot_give_it_away(as_role: As, catalog: dict[str, Any]) -> None:
    conn = as_role("host", catalog["host"].id)
    assert conn.execute("update app.products set name = 'Mine' where id = %s", (catalog["unpublished"],)).rowcount == 1
    with pytest.raises(errors.InsufficientPrivilege):  # host_id is not in the update grant
        conn.execute("update app.products set host_id = %s where id = %s", (catalog["other"].id, catalog["published"]))


def test_ratings_are_not_writable_by_clients(as_role: As, catalog: dict[str, Any]) -> None:
    for role, user in (("host", catalog["host"].id), ("admin", catalog["admin"].id)):
        conn = as_role(role, user)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("update app.products set rating_avg = 5 where id = %s", (catalog["published"],))


def test_guest_and_anon_cannot_insert(as_role: As, catalog: dict[str, Any]) -> None:
    for role, user in (("guest", catalog["guest"].id), ("anon", None)):
        conn = as_role(role, user)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                """insert into app.products (host_id, category_id, name, description, location, price_per_night,
                                             max_guests) values (%s, %s, 'x', '', 'y', 1, 1)""",
                (catalog["guest"].id, catalog["category"]),
            )


def test_host_cannot_insert_for_someone_else(as_role: As, catalog: dict[str, Any]) -> None:
    conn = as_role("host", catalog["other"].id)
    with pytest.raises(errors.InsufficientPrivilege):  # new row violates the insert_own policy
        conn.execute(
            """insert into app.products (host_id, category_id, name, description, location, price_per_night,
                                         max_guests) values (%s, %s, 'x', '', 'y', 1, 1)""",
            (catalog["host"].id, catalog["category"]),
        )
    conn = as_role("host", catalog["other"].id)
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(
            "insert into app.product_amenities (product_id, amenity) values (%s, 'wifi')", (catalog["published"],)
        )


def test_categories_are_written_by_admins_only(as_role: As, catalog: dict[str, Any]) -> None:
    for role, user in (("anon", None), ("guest", catalog["guest"].id), ("host", catalog["host"].id)):
        conn = as_role(role, user)
        assert conn.execute("select count(*) from app.categories where id = %s", (catalog["category"],)).fetchone() == (
            1,
        )
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("update app.categories set name = 'x' where id = %s", (catalog["category"],))
    conn = as_role("admin", catalog["admin"].id)
    assert (
        conn.execute("update app.categories set description = 'ok' where id = %s", (catalog["category"],)).rowcount == 1
    )


def test_photos_of_unpublished_listings_are_hidden(owner: Conn, as_role: As, catalog: dict[str, Any]) -> None:
    owner.execute(
        "insert into app.product_photos (product_id, path, content_type, size_bytes) values (%s, 'x/y.png', 'image/png', 1)",
        (catalog["unpublished"],),
    )
    count = "select count(*) from app.product_photos where product_id = %s"
    assert as_role("anon").execute(count, (catalog["unpublished"],)).fetchone() == (0,)
    assert as_role("host", catalog["host"].id).execute(count, (catalog["unpublished"],)).fetchone() == (1,)


def test_public_profiles_never_expose_private_columns(as_role: As, catalog: dict[str, Any]) -> None:
    conn = as_role("anon")
    cols = [
        d.name
        for d in conn.execute("select * from app.public_profiles(array[%s]::uuid[])", (catalog["host"].id,)).description
        or []
    ]
    assert cols == ["id", "first_name", "photo_url"]
    # Users who host nothing (a guest) are not revealed at all.
    assert conn.execute(
        "select count(*) from app.public_profiles(array[%s]::uuid[])", (catalog["guest"].id,)
    ).fetchone() == (0,)
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select email from app.users")
