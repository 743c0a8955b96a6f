"""The counts the database keeps for the catalog (app_private.catalog_counts, migration 0018).

Each test writes listings in categories of its own, as the roles that write them (a host
through the API's functions, the owner as a DBA), and compares the kept counts with the
same counts computed from app.products at that moment: published listings per category
('') and per lexeme of their search vector.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.fix_db import As
from tests.fix_users import User

Conn = psycopg.Connection[Any]

COMPUTED = """
select p.category_id, t.term, count(*)::int
from app.products p, app.catalog_terms(p.search) t(term)
where p.published and p.category_id = any(%s)
group by 1, 2
"""
Make = Callable[[int], list[Any]]
KEPT = (
    "select category_id, term, listings from app_private.catalog_counts where category_id = any(%s) and listings <> 0"
)


@pytest.fixture
def categories(owner: Conn) -> Iterator[Callable[[int], list[Any]]]:
    """`categories(n)`: n new categories; their listings and they are deleted afterwards."""
    made: list[Any] = []

    def make(n: int) -> list[Any]:
        tag = uuid.uuid4().hex[:10]
        for i in range(n):
            made.append(
                owner.execute(
                    "insert into app.categories (name, slug) values (%s, %s) returning id",
                    (f"Counts {tag} {i}", f"c-{tag}-{i}"),
                ).fetchone()[0]  # type: ignore[index]
            )
        return made[-n:]

    yield make
    owner.execute("delete from app.products where category_id = any(%s)", [made])
    owner.execute("delete from app.categories where id = any(%s)", [made])
    assert owner.execute(KEPT, [made]).fetchall() == []


def drift(conn: Conn, cats: list[Any]) -> set[tuple[Any, ...]]:
    """Rows where the kept counts and the listings disagree (empty when they agree)."""
    computed = {tuple(r) for r in conn.execute(COMPUTED, [cats]).fetchall()}
    kept = {tuple(r) for r in conn.execute(KEPT, [cats]).fetchall()}
    return computed ^ kept


def test_the_counts_follow_every_kind_of_write(owner: Conn, make_user: Callable[..., User], categories: Make) -> None:
    host = make_user("host")
    cats = categories(2)
    a, b = cats

    def listing(name: str, category: Any, published: bool = True, description: str = "") -> Any:
        return owner.execute(
            """insert into app.products (host_id, category_id, name, description, location, price_per_night,
                                         max_guests, published)
               values (%s, %s, %s, %s, 'Lagos', 10, 2, %s) returning id""",
            (host.id, category, name, description, published),
        ).fetchone()[0]  # type: ignore[index]

    laptop = listing("Laptop desk by the sea", a)
    listing("Quiet laptop corner", a)
    hidden = listing("Laptop loft", a, published=False)
    assert drift(owner, cats) == set()
    assert owner.execute(KEPT + " and term = 'laptop'", [cats]).fetchall() == [(a, "laptop", 2)]

    steps = [
        ("update app.products set name = 'Sea view flat' where id = %s", [laptop]),  # lexemes change
        ("update app.products set category_id = %s where id = %s", [b, laptop]),  # moves category
        ("update app.products set published = true where id = %s", [hidden]),  # becomes public
        ("update app.products set published = false where id = %s", [laptop]),  # hidden again
        ("update app.products set rating_avg = 4.5 where id = %s", [hidden]),  # nothing counted changes
        ("update app.products set description = 'laptop laptop sea' where category_id = any(%s)", [cats]),  # many rows
        ("delete from app.products where id = %s", [hidden]),
    ]
    for statement, params in steps:
        owner.execute(statement, params)
        assert drift(owner, cats) == set(), statement

    # Several writes in one transaction, one of them rolled back: the counts go with them.
    with owner.transaction():
        listing("Laptop studio", b)
        with pytest.raises(errors.CheckViolation), owner.transaction():
            listing("Laptop loft", b, description="x" * 10001)  # refused: no count either
        owner.execute("delete from app.products where category_id = %s and name = 'Quiet laptop corner'", [a])
    assert drift(owner, cats) == set()

    # A rebuild (every migrate runs one) finds the same counts.
    before = {tuple(r) for r in owner.execute(KEPT, [cats]).fetchall()}
    owner.execute("select app.catalog_counts_rebuild()")
    assert {tuple(r) for r in owner.execute(KEPT, [cats]).fetchall()} == before


def test_a_host_writing_through_the_api_functions_moves_the_counts(
    as_role: As, owner: Conn, host: User, categories: Make
) -> None:
    """The trigger is SECURITY DEFINER: a host, who may not touch the counts, still moves them."""
    (cat,) = categories(1)
    slug = owner.execute("select slug from app.categories where id = %s", [cat]).fetchone()[0]  # type: ignore[index]
    conn = as_role("host", host.id)
    body = {
        "name": "Gaming laptop den",
        "description": "",
        "location": "Accra",
        "price_per_night": "20",
        "max_guests": 2,
        "category": slug,
    }
    created = conn.execute("select api.product_create(%s)", [json.dumps(body)]).fetchone()[0]  # type: ignore[index]
    conn.execute("select api.product_update(%s, %s)", [created["id"], json.dumps({"name": "Gaming room"})])
    listed = conn.execute("select count from api.product_list(p_category => %s, p_search => 'game')", [slug]).fetchone()  # type: ignore[misc]
    conn.execute("commit")
    assert drift(owner, [cat]) == set()
    assert listed == (1,)
    assert owner.execute(KEPT + " and term = 'laptop'", [[cat]]).fetchall() == []  # renamed away
    conn = as_role("host", host.id)
    conn.execute("select api.product_delete(%s)", [created["id"]])
    conn.execute("commit")
    assert owner.execute(KEPT, [[cat]]).fetchall() == []


FORBIDDEN = (
    "select * from app_private.catalog_counts",
    "update app_private.catalog_counts set listings = 0",
    "select app.catalog_counts_rebuild()",
)


@pytest.mark.parametrize("role", ["anon", "guest", "host", "admin"])
def test_no_client_role_reads_or_writes_the_counts(as_role: As, role: str) -> None:
    for statement in FORBIDDEN:
        with pytest.raises(errors.InsufficientPrivilege):
            as_role(role).execute(statement)


def test_the_analyst_does_not_see_the_counts(analyst_url: str) -> None:
    with psycopg.connect(analyst_url) as conn:
        for statement in FORBIDDEN:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


def test_a_single_word_count_is_exact_past_a_thousand(
    as_role: As, owner: Conn, make_user: Callable[..., User], categories: Make
) -> None:
    """Counted by the database: 1,200 exactly, where counting rows stops at 1,001 and estimates."""
    host = make_user("host")
    (cat,) = categories(1)
    slug = owner.execute("select slug from app.categories where id = %s", [cat]).fetchone()[0]  # type: ignore[index]
    owner.execute(
        """insert into app.products (host_id, category_id, name, description, location, price_per_night, max_guests,
                                     published)
           select %s, %s, case when i <= 1250 then 'Laptop nook ' else 'Garden room ' end || i, '', 'Lagos', 10, 2,
                  i %% 25 <> 0
           from generate_series(1, 1400) i""",
        [host.id, cat],
    )
    conn = as_role("anon")
    one_word = conn.execute(
        "select count from api.product_list(p_category => %s, p_search => 'laptops', p_ordering => '-price')", [slug]
    ).fetchone()
    whole = conn.execute("select count from api.product_list(p_category => %s)", [slug]).fetchone()
    assert one_word == (1200,)  # 1,250 laptop nooks, every 25th unpublished
    assert whole == (1344,)
    # Two words: counted up to 1,001, then the planner's estimate (at least 1,001).
    (two_words,) = conn.execute(
        "select count from api.product_list(p_category => %s, p_search => 'laptop nook')", [slug]
    ).fetchone()  # type: ignore[misc]
    assert two_words >= 1001
