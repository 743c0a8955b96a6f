"""Who may call what, and who may see which rows: one source each, pinned.

Who may call a route is its function's EXECUTE grants in sql/policies/, read by the API at
startup (api/openapi.py, Contract.admits); the route table names no roles. These tests fail
when a client role can call an api function no route calls, or when a function only the API
process may call is routed as if a client called it; and they pin the exact row-level policy
set of every table, so a policy added, dropped or widened is a visible change here.
"""

from __future__ import annotations

from typing import Any

import psycopg

from api import openapi
from api.routes import ROUTES

ROLES = ("anon", "guest", "host", "admin", "api_internal")

# Functions that no route calls, with the roles that may execute them and why.
UNROUTED: dict[str, tuple[set[str], str]] = {
    "api.oauth_complete": (
        {"api_internal"},
        "No route of its own: the callback route hands back a PKCE verifier for a state, which only the "
        "API process (holding the state cookie) may ask for.",
    ),
    "api.server_error_record": (
        {"api_internal"},
        "No route of its own: the API process records a 5xx it answered (api/app.py); a client could otherwise "
        "fill the admin System page with invented errors.",
    ),
    "api.payment_attach": (
        {"api_internal"},
        "No route of its own: it records the provider object the API (or the worker, as the owner) created "
        "for a payment; a client could otherwise attach any provider id to its payment.",
    ),
    "api.payment_report": (
        {"api_internal"},
        "No route of its own: it applies what a provider answered the API's own capture call; a client could "
        "otherwise report any payment as succeeded.",
    ),
    "api.payout_account_attach": (
        {"api_internal"},
        "No route of its own: it records the Stripe account the API (or the worker) created for a host, and "
        "whether Stripe lets it receive payouts; a client could otherwise point payouts at any account.",
    ),
    "api.health": (
        {"anon", "guest", "host", "admin"},
        "No route in the table: GET /readyz calls it as anon to compare applied migrations with the shipped files.",
    ),
}

# Routes whose function only the API process executes (as api_internal, after its own check):
# the route admits any caller, and its special makes the call.
INTERNAL = {
    "api.oauth_sign_in": "The callback asserts that a provider verified an identity, a fact only api/oauth.py "
    "establishes (ID token or Graph call); granted to anon, anyone could claim any identity.",
    "api.webhook_receive": "Recording an event asserts that its signature verified, which only api/specials.py "
    "checks (with the provider's secret); as anon, anyone could queue events.",
}


def granted(owner: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """Each api function and the roles that may execute it."""
    checks = ", ".join(f"has_function_privilege('{r}', p.oid, 'execute')" for r in ROLES)
    rows = owner.execute(
        f"""select n.nspname || '.' || p.proname, {checks}
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'api'"""
    ).fetchall()
    names = [name for name, *_ in rows]
    assert len(names) == len(set(names)), "api function names must be unique (routes name functions, not signatures)"
    return {name: {r for r, ok in zip(ROLES, privileges, strict=True) if ok} for name, *privileges in rows}


def test_every_route_admits_exactly_the_roles_granted_its_function(owner: psycopg.Connection[Any]) -> None:
    grants = granted(owner)
    contract = openapi.load(owner)

    for route in ROUTES:
        # Granted to anon (e.g. api.oauth_begin: api/oauth.py starts the flow as anon whatever token the
        # browser carries) or only to the API process: any caller; otherwise the client roles granted.
        opened = grants[route.function] & {"anon", "api_internal"}
        expected = openapi.ANYONE if opened else grants[route.function] & openapi.ANYONE
        assert contract.admits(route) == expected, f"{route.method} {route.path}: {route.function}"
        assert expected, f"{route.method} {route.path}: no role may call {route.function}"


def test_only_a_special_calls_a_function_as_the_api_process(owner: psycopg.Connection[Any]) -> None:
    grants = granted(owner)

    internal = {route.function for route in ROUTES if "api_internal" in grants[route.function]}

    assert internal == set(INTERNAL)
    for route in ROUTES:
        if route.function in INTERNAL:
            assert grants[route.function] == {"api_internal"}, route.function
            assert route.special is not None, f"{route.path}: only a special can call {route.function} as api_internal"


def test_no_client_role_can_call_an_api_function_without_a_route(owner: psycopg.Connection[Any]) -> None:
    routed = {route.function for route in ROUTES}

    unrouted = {name: roles for name, roles in granted(owner).items() if name not in routed and roles}

    assert unrouted == {name: roles for name, (roles, _) in UNROUTED.items()}


# Every table in app and app_private: its policies (name, command, roles) besides the
# owner's all_as_owner. app_private tables have none: no client role reaches them.
POLICIES: dict[str, set[tuple[str, str, tuple[str, ...]]]] = {
    "app.users": {
        ("select_own", "SELECT", ("guest", "host")),
        ("update_own", "UPDATE", ("guest", "host")),
        ("all_as_admin", "ALL", ("admin",)),
    },
    "app.currencies": {("select_all", "SELECT", ("admin", "anon", "guest", "host"))},
    "app.amenities": {("select_all", "SELECT", ("admin", "anon", "guest", "host"))},
    "app.categories": {
        ("select_all", "SELECT", ("admin", "anon", "guest", "host")),
        ("insert_as_admin", "INSERT", ("admin",)),
        ("update_as_admin", "UPDATE", ("admin",)),
        ("delete_as_admin", "DELETE", ("admin",)),
    },
    "app.products": {
        ("select_published", "SELECT", ("admin", "anon", "guest", "host")),
        ("select_own", "SELECT", ("host",)),
        ("insert_own", "INSERT", ("admin", "host")),
        ("update_own", "UPDATE", ("host",)),
        ("delete_own", "DELETE", ("host",)),
        ("all_as_admin", "ALL", ("admin",)),
    },
    "app.product_amenities": {
        ("select_all", "SELECT", ("admin", "anon", "guest", "host")),
        ("insert_own", "INSERT", ("host",)),
        ("delete_own", "DELETE", ("host",)),
        ("all_as_admin", "ALL", ("admin",)),
    },
    "app.product_photos": {
        ("select_visible", "SELECT", ("admin", "anon", "guest", "host")),
        ("insert_own", "INSERT", ("host",)),
        ("delete_own", "DELETE", ("host",)),
        ("all_as_admin", "ALL", ("admin",)),
    },
    # Where a listing exactly is: its host, admins and a guest with a confirmed stay; nobody else.
    "app.product_addresses": {
        ("select_own", "SELECT", ("host",)),
        ("select_booked", "SELECT", ("guest", "host")),
        ("insert_own", "INSERT", ("host",)),
        ("update_own", "UPDATE", ("host",)),
        ("delete_own", "DELETE", ("host",)),
        ("all_as_admin", "ALL", ("admin",)),
    },
    "app.bookings": {
        ("select_own", "SELECT", ("admin", "guest", "host")),
        ("select_as_host", "SELECT", ("admin", "guest", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app.calendar_entries": {("select_all", "SELECT", ("admin", "anon", "guest", "host"))},
    "app.payments": {
        ("select_own", "SELECT", ("admin", "guest", "host")),
        ("select_as_host", "SELECT", ("admin", "guest", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app.refunds": {
        ("select_own", "SELECT", ("admin", "guest", "host")),
        ("select_as_host", "SELECT", ("admin", "guest", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app.disputes": {
        ("select_own", "SELECT", ("admin", "guest", "host")),
        ("select_as_host", "SELECT", ("admin", "guest", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app.payout_accounts": {
        ("select_own", "SELECT", ("admin", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app.payouts": {
        ("select_own", "SELECT", ("admin", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app.ledger_entries": {("select_as_admin", "SELECT", ("admin",))},
    "app.reviews": {
        ("select_visible", "SELECT", ("admin", "anon", "guest", "host")),
        ("select_own", "SELECT", ("admin", "guest", "host")),
        ("select_as_host", "SELECT", ("admin", "host")),
        ("select_as_admin", "SELECT", ("admin",)),
    },
    "app_private.rate_feed": set(),
    "app_private.code_state": set(),
    "app_private.reconciliation_settings": set(),
    "app_private.reconciliation_runs": set(),
    "app_private.reconciliation_differences": set(),
    "app_private.review_settings": set(),
    "app_private.server_errors": set(),
    "app.notifications": {
        ("select_own", "SELECT", ("admin", "guest", "host")),
        ("update_own", "UPDATE", ("admin", "guest", "host")),
    },
    "app_private.notification_settings": set(),
    "app_private.notification_types": set(),
    "app_private.email_outbox": set(),
    "app_private.audit_log": set(),
    "app_private.rate_limits": set(),
    "app_private.rate_buckets": set(),
    "app_private.catalog_counts": set(),
    "app_private.channels": set(),  # the owner's only: the secret part of the NOTIFY channel names
    "app.exchange_rates": {
        ("select_all", "SELECT", ("admin", "anon", "guest", "host")),
        ("insert_as_admin", "INSERT", ("admin",)),
    },
    "app_private.credentials": set(),
    "app_private.refresh_tokens": set(),
    "app_private.login_attempts": set(),
    "app_private.oauth_identities": set(),
    "app_private.oauth_states": set(),
    "app_private.booking_settings": set(),
    "app_private.map_settings": set(),
    "app_private.auth_settings": set(),
    "app_private.idempotency_keys": set(),
    "app_private.payment_settings": set(),
    "app_private.webhook_events": set(),
    "app.conversations": {
        ("select_as_party", "SELECT", ("admin", "guest", "host")),
        ("select_reported_as_admin", "SELECT", ("admin",)),
    },
    "app.messages": {
        ("select_as_party", "SELECT", ("admin", "guest", "host")),
        ("select_reported_as_admin", "SELECT", ("admin",)),
    },
    "app.message_reports": {("select_as_admin", "SELECT", ("admin",))},
    "app_private.message_settings": set(),
    "app_private.analyst_settings": set(),  # the owner's only: the analyst's limits, enforced by the worker
    # Calendar sync: export tokens and feed URLs are secrets, read through SECURITY DEFINER functions only.
    "app_private.calendar_settings": set(),
    "app_private.calendar_exports": set(),
    "app_private.calendar_feeds": set(),
}


def test_exact_policy_set_of_every_table(owner: psycopg.Connection[Any]) -> None:
    tables = {
        t
        for (t,) in owner.execute(
            """select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname in ('app', 'app_private') and c.relkind in ('r', 'p')"""
        ).fetchall()
    }
    actual: dict[str, set[tuple[str, str, tuple[str, ...]]]] = {t: set() for t in tables}
    for table, name, command, roles in owner.execute(
        """select schemaname || '.' || tablename, policyname, cmd, roles::text[] from pg_policies
           where schemaname in ('app', 'app_private') and policyname <> 'all_as_owner'"""
    ).fetchall():
        actual[table].add((name, command, tuple(sorted(roles))))

    assert actual == POLICIES


def test_the_owner_has_exactly_one_all_as_owner_policy_on_every_table(owner: psycopg.Connection[Any]) -> None:
    rows = owner.execute(
        """select n.nspname || '.' || c.relname,
                  count(p.policyname) filter (where p.policyname = 'all_as_owner' and p.cmd = 'ALL'
                                              and p.roles = array[current_user]::name[])
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           left join pg_policies p on p.schemaname = n.nspname and p.tablename = c.relname
           where n.nspname in ('app', 'app_private') and c.relkind in ('r', 'p')
           group by 1"""
    ).fetchall()

    assert rows and {table: n for table, n in rows} == {table: 1 for table, _ in rows}
