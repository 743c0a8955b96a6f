"""The one error path: real database errors, raised by PostgreSQL, become the problems clients see.

Each case makes PostgreSQL itself raise (as the owner, in a transaction rolled back), then
checks what api.errors.from_database answers. The mapping reads SQLSTATEs only (never the
message, whose language is the server's lc_messages), so it holds in any language.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from api.errors import from_database

CASES = {
    "unique": ("insert into app.currencies select * from app.currencies limit 1", 409),
    "still referenced": (
        "insert into app.users (email, first_name, last_name, role) values ('err@example.com', 'E', 'R', 'host');"
        " insert into app.categories (name, slug) values ('x-used', 'x-used');"
        " insert into app.products (host_id, category_id, name, description, location, price_per_night, max_guests)"
        " select u.id, c.id, 'n', 'd', 'l', 1, 1 from app.users u, app.categories c"
        " where u.email = 'err@example.com' and c.slug = 'x-used';"
        " delete from app.categories where slug = 'x-used'",
        409,
    ),
    "missing reference": (
        "insert into app.categories (name, slug) values ('x-err', 'x-err');"
        " insert into app.products (host_id, category_id, name, description, location, price_per_night, max_guests)"
        " select gen_random_uuid(), id, 'n', 'd', 'l', 1, 1 from app.categories where slug = 'x-err'",
        409,
    ),
    "check": ("insert into app.categories (name, slug) values ('Bad slug', 'Bad Slug')", 400),
    "not null": ("insert into app.categories (name, slug) values (null, 'no-name')", 400),
    "bad input": ("select 'not-a-uuid'::uuid", 400),
    "client error from a function": ("select app.fail(409, 'Taken.', 'slug')", 409),
    "every field at once": ('select app.raise_errors(\'{"a": ["x"], "b": ["y"]}\')', 400),
}


def raised(owner: psycopg.Connection[Any], statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info, owner.transaction(force_rollback=True):
        owner.execute(statement)
    return info.value


@pytest.mark.parametrize("case", sorted(CASES))
def test_database_errors_map_by_sqlstate(owner: psycopg.Connection[Any], case: str) -> None:
    statement, status = CASES[case]

    problem = from_database(raised(owner, statement), anonymous=False)

    assert problem.status == status, (case, problem.detail)


def test_not_null_names_the_column_postgresql_reports(owner: psycopg.Connection[Any]) -> None:
    problem = from_database(raised(owner, CASES["not null"][0]), anonymous=False)

    assert problem.errors == {"name": ["This field is required."]}


def test_a_function_names_its_fields(owner: psycopg.Connection[Any]) -> None:
    one = from_database(raised(owner, CASES["client error from a function"][0]), anonymous=False)
    many = from_database(raised(owner, CASES["every field at once"][0]), anonymous=False)

    assert (one.detail, one.errors) == ("Taken.", {"slug": ["Taken."]})
    assert (many.detail, many.errors) == ("Some fields are invalid.", {"a": ["x"], "b": ["y"]})


def test_no_constraint_name_or_sql_text_leaks(owner: psycopg.Connection[Any]) -> None:
    for case in ("unique", "still referenced", "missing reference", "check"):
        problem = from_database(raised(owner, CASES[case][0]), anonymous=False)

        assert problem.errors is None, case
        assert "_" not in problem.detail and "app." not in problem.detail, case


def test_a_forbidden_call_is_401_when_anonymous_and_403_when_signed_in(owner: psycopg.Connection[Any]) -> None:
    error = raised(owner, "select app.fail(403, 'No.')")

    assert from_database(error, anonymous=True).status == 401
    assert from_database(error, anonymous=False).status == 403


def test_a_function_can_ask_the_client_to_retry_later(owner: psycopg.Connection[Any]) -> None:
    limited = from_database(raised(owner, "select app.fail(429, 'Slow down.', null, 17)"), anonymous=False)
    at_least_one = from_database(raised(owner, "select app.fail(429, 'Slow down.', null, 0)"), anonymous=False)
    plain = from_database(raised(owner, "select app.fail(409, 'Taken.', 'slug')"), anonymous=False)

    assert (limited.status, limited.detail, limited.headers) == (429, "Slow down.", {"Retry-After": "17"})
    assert at_least_one.headers == {"Retry-After": "1"}
    assert plain.headers == {}
