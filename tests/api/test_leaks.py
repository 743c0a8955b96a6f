"""Leaks: every operation of the route table, fuzzed as every kind of caller, gives nothing away.

Issue 14, "secure by default". For each row of api.routes.ROUTES (so a new route is fuzzed
the day it is added) the test sends a deterministic corpus (seeded per route) as anonymous,
a guest, a host, another host, the two owners of the seeded data and an admin: path
parameters that are real ids of the owners' objects, random UUIDs, malformed ids, huge,
unicode, NUL and SQL-ish strings; hostile query strings; JSON bodies with fields of the wrong
type, size, sign or calendar, invalid JSON and wrong content types; multipart uploads that
are not images; request headers a function reads; malformed, forged and wrongly-signed
bearer tokens. Every answer must:

- never be a 500, and be problem+json (type, title, status, detail) when it is an error;
- carry no stack trace, SQL text, PostgreSQL error text, schema-qualified name, and none of
  the constraint, index, table, trigger and function names read from the catalog;
- show nobody another user's private data: the owners' emails, private profile fields,
  password hashes, refresh token, message text, the unpublished listing and its photo,
  the payment's client secret, payout details, a hidden review, nor (to an outsider) the
  ids of those private objects. What the request itself said may come back: an echo
  reveals nothing, so it is cut out before looking;
- not let an outsider reach the owners' objects (a write naming any of them, or a read
  naming a private one, is refused), nor tell a private object from one that does not exist
  (the same answer as for a random id).

What is public is what sql/policies/ says: published listings with their photos, categories,
amenities, visible reviews, the host's public profile (id, first name, photo) and the taken
date ranges. An owner sees what they are a party to (SEES); an admin sees everything but
credentials, a refresh token, the guest's payment secret and a message nobody reported (NEVER).

A defect found here that lives in sql/ (not fixed in this file's commit) goes into
KNOWN_DEFECTS: its route's case becomes a strict xfail that says why, so the suite stays
green, the defect stays visible, and the day it is fixed the xfail fails and asks to be removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import httpx2
import jwt
import orjson
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from api import openapi, specials
from api.app import create_app
from api.errors import from_database
from api.routes import ROUTES, Route
from api.settings import Settings
from tests.fix_data import day, image
from tests.fix_users import User, access_token
from tests.loopback import Server

SCHEMAS = ("app", "app_private", "api", "analytics")
PROBLEM = "application/problem+json"
JSON = "application/json"

# --- who acts --------------------------------------------------------------------------------

# In the order they act within one route: outsiders first (they must find the owners' world
# as it was made), then the owners, then the admin (whose writes may change anything).
ACTORS = ("anonymous", "guest", "host", "other_host", "owner_guest", "owner_host", "admin")
ROLE = {"anonymous": "anon", "guest": "guest", "host": "host", "other_host": "host"}
ROLE |= {"owner_guest": "guest", "owner_host": "host", "admin": "admin"}
OUTSIDERS = frozenset({"anonymous", "guest", "host", "other_host", "token"})  # token: a bad bearer token

# What each owner may see of the owners' secrets (their own, and the conversation, booking and
# review they are a party to). Admins see every secret but NEVER's and the password hashes.
SEES = {
    "owner_guest": {
        *("guestlast", "guestphone", "guestemail", "clientsecret"),
        *("secretmsg", "reportedmsg", "reviewtext", "hidereason"),
    },
    "owner_host": {
        *("hostlast", "hostphone", "hostemail", "payoutemail", "payoutfail"),
        *("hiddenname", "hiddendesc", "photopath", "blockreason"),
        *("secretmsg", "reportedmsg", "reviewtext", "hidereason"),
    },
}
NEVER = frozenset({"refresh", "clientsecret", "secretmsg"})

# The resource a path parameter names is the path segment before it (/api/products/{id}/photos/{photo_id}/:
# products, photos). Real values for a parameter that names no object of the owners:
REAL = {"auth": ["google", "facebook"]}
# The owner who acts on an object of this resource when a request should get far.
GUEST_SIDE = frozenset({"bookings", "payments", "reviews", "conversations", "messages", "notifications"})

# --- what no answer may contain --------------------------------------------------------------

# Literal fragments of Python tracebacks, driver errors and PostgreSQL's error reports.
FORBIDDEN_TEXT = (
    "Traceback",
    'File "',
    "psycopg",
    "ERROR:",
    "DETAIL:",
    "HINT:",
    "CONTEXT:",
    "STATEMENT:",
    "PL/pgSQL",
    "plpgsql",
    "SQL statement",
    "SQLSTATE",
    "pg_catalog",
)
# SQL in statement shape, and PostgreSQL's own error sentences. Keywords are matched in one
# letter case (the code's lowercase, or PostgreSQL's uppercase), so English ("Select a date
# from ...") does not count.
FORBIDDEN_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\bselect\b.{0,200}?\bfrom\b",
        r"\bSELECT\b.{0,200}?\bFROM\b",
        r"\binsert into\b|\bINSERT INTO\b",
        r"\bupdate \w+(\.\w+)? set\b|\bUPDATE \w+(\.\w+)? SET\b",
        r"\bdelete from\b|\bDELETE FROM\b",
        r"\bline \d+\b",
        r"\bat character \d+\b",
        r"\b(relation|column|function|type|schema|constraint|index|operator|role) \"?[\w.]+\"? does not exist",
        r"\binvalid input syntax\b",
        r"\bviolates (check|foreign key|unique|not-null|exclusion) constraint\b",
        r"\bduplicate key value\b",
        r"\bvalue too long for type\b",
        r"\bout of range for type\b",
        r"\bsyntax error at or near\b",
        r"\bpermission denied for\b",
        r"\bnull value in column\b",
        r"\bcanceling statement due to\b",
        r"\bunsupported Unicode escape sequence\b",
        r"\binvalid byte sequence for encoding\b",
        r"\bdivision by zero\b",
        r"\bcannot cast type\b",
        r"\bstack depth limit exceeded\b",
        r"\bindex row (size|requires)\b",
        r"\bis not assigned yet\b",
    )
)
# A schema-qualified name (app.bookings, api.login, ...): checked where catalog names are.
QUALIFIED = re.compile(r"(?<![\w.@/-])(app|app_private|api|analytics)\.[a-z_][a-z0-9_]*")
# JSON keys whose values name tables by design: the admin's audit log says which table changed.
NAMING_KEYS = frozenset({"table", "table_name"})
# JSON keys whose values are SQL by design, in a success: the admin System page's statements
# (pg_stat_statements, normalised: parameters as $n; utility statements left out, never a literal).
SQL_KEYS = frozenset({"query"})


@pytest.fixture(scope="module")
def contract(owner_url: str) -> openapi.Contract:
    """What the database says about the API, as the app reads it: who may call each route."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        return openapi.load(conn)


@pytest.fixture(scope="module")
def catalog_names(owner_url: str) -> re.Pattern[str]:
    """One pattern matching, as a whole word, every constraint, index, table, view, sequence,
    trigger and function name of the project's schemas that a client has no business seeing.

    Only names with an underscore count (a bare "users" or "login" is ordinary English), and
    names a client legitimately sees are left out: column names (they are the JSON fields),
    enum labels and notification types (they are values), amenity slugs, query parameters.
    """
    with psycopg.connect(owner_url, autocommit=True) as conn:
        names = {
            name
            for (name,) in conn.execute(
                """select c.conname::text from pg_constraint c join pg_namespace n on n.oid = c.connamespace
                    where n.nspname = any(%(s)s)
                   union select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = any(%(s)s)
                   union select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                    where n.nspname = any(%(s)s)
                   union select t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid
                     join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = any(%(s)s) and not t.tgisinternal""",
                {"s": list(SCHEMAS)},
            ).fetchall()
        }
        seen_by_clients = {
            name
            for (name,) in conn.execute(
                """select a.attname::text from pg_attribute a join pg_class c on c.oid = a.attrelid
                     join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = any(%(s)s) and a.attnum > 0
                   union select enumlabel::text from pg_enum
                   union select type from app_private.notification_types
                   union select slug from app.amenities""",
                {"s": list(SCHEMAS)},
            ).fetchall()
        }
    seen_by_clients |= {name for route in ROUTES for name in route.query}
    secret = sorted((n for n in names if "_" in n and n not in seen_by_clients), key=len, reverse=True)
    assert len(secret) > 100, "the catalog gave too few names for the check to mean anything"
    return re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, secret)) + r")(?![A-Za-z0-9_])")


@pytest.fixture(scope="module")
def body_fields(owner_url: str) -> dict[str, list[str]]:
    """The JSON body fields each route's function reads, from the functions' source in the catalog.

    A field is a literal next to p_body (`p_body ->> 'name'`, `app.check_text(v, p_body, 'name', ...)`)
    in the function or in the functions it hands p_body to.
    """
    with psycopg.connect(owner_url, autocommit=True) as conn:
        sources: dict[str, str] = dict(
            conn.execute(
                """select n.nspname || '.' || p.proname, string_agg(pg_get_functiondef(p.oid), E'\\n')
                     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                    where n.nspname = any(%s) and p.prokind = 'f'
                    group by 1""",
                (list(SCHEMAS),),
            ).fetchall()
        )
    json_types = {"string", "object", "array", "number", "boolean", "null"}
    own = {
        fn: set(re.findall(r"p_body\s*(?:->>|->|\?|,)\s*'([a-z_]+)'", src)) - json_types for fn, src in sources.items()
    }
    calls = {fn: set(re.findall(r"\b(app\w*\.\w+)\([^;]*?\bp_body\b", src)) for fn, src in sources.items()}

    def fields(fn: str, seen: frozenset[str]) -> set[str]:
        found = set(own.get(fn, ()))
        for callee in calls.get(fn, set()) - seen:
            found |= fields(callee, seen | {fn})
        return found

    return {
        route.function: sorted(fields(route.function, frozenset({route.function}))) for route in ROUTES if route.body
    }


# --- the world: the owners' data -------------------------------------------------------------


@dataclass
class World:
    """What the owners (a host and a guest) have, and everyone who acts."""

    people: dict[str, User | None]  # each actor (None: anonymous)
    category: str  # a category's slug (public)
    public: dict[str, list[str]]  # resource -> ids anyone may name
    private: dict[str, list[str]]  # resource -> ids of the owners' private objects
    secrets: dict[str, str]  # label -> a string of the owners' that outsiders must never see

    def owner(self, actor: str) -> User:
        user = self.people[actor]
        assert user is not None
        return user

    def ids(self, resource: str) -> list[str]:
        return self.public.get(resource, []) + self.private.get(resource, [])

    @property
    def private_ids(self) -> set[str]:
        return {i.lower() for ids in self.private.values() for i in ids}

    @property
    def all_ids(self) -> set[str]:
        return self.private_ids | {i.lower() for ids in self.public.values() for i in ids}

    def forbidden(self, actor: str) -> dict[str, str]:
        """The secrets this actor must not see: all of them for outsiders; for an owner, the other's."""
        if actor in SEES:
            return {k: v for k, v in self.secrets.items() if k not in SEES[actor]}
        if actor == "admin":
            return {k: v for k, v in self.secrets.items() if k in NEVER or k.startswith("hash")}
        return dict(self.secrets)


def marker(rng: random.Random, label: str) -> str:
    """A unique, searchable string (letters only, so no tokenizer splits it)."""
    return label + "".join(rng.choice("bcdfghjkmnpqrstvwxz") for _ in range(14))


def one(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> str:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return str(row[0])


def person(owner: psycopg.Connection[Any], settings: Settings, actor: str, tag: str, **columns: str) -> User:
    """A user made as a DBA would, with a signed access token (as tests/fix_users.py's make_user,
    but on the one connection the world is made on: a route's world is made in a few ms)."""
    row: dict[str, str | None] = {"email": f"leak-{actor.replace('_', '-')}-{tag}@example.com"}
    row["first_name"] = actor.split("_")[-1].title()
    row |= {"last_name": "User", "phone_number": None, "role": ROLE[actor], **columns}
    uid = one(
        owner,
        "insert into app.users (email, first_name, last_name, phone_number, role)"
        " values (%(email)s, %(first_name)s, %(last_name)s, %(phone_number)s, %(role)s) returning id",
        row,
    )
    return User(uid, str(row["email"]), ROLE[actor], access_token(owner, settings, uid, ROLE[actor]))


@pytest.fixture
def world(owner: psycopg.Connection[Any], settings: Settings) -> World:
    """The owners' data, made as a DBA would (straight in the tables), and everyone who acts;
    fresh for each route (the owners' and the admin's writes change it).

    A host with a published listing (public) and an unpublished one with a photo (private), a
    blocked range, a payout account and a failed payout; a guest with a pending booking and an
    open payment carrying a client secret, a completed stay with a paid payment and a hidden
    review; their conversation, whose first message is private and whose reply the guest
    reported (so admins may read that reply, and only it); the notifications the triggers made.
    """
    rng = random.Random()  # the markers need only be unique; the corpus has its own seed
    tag = uuid.uuid4().hex[:10]
    s = {k: marker(rng, k) for k in ("hostlast", "guestlast", "hiddenname", "hiddendesc", "blockreason", "payoutfail")}
    s |= {k: marker(rng, k) for k in ("secretmsg", "reportedmsg", "reviewtext", "hidereason")}
    s |= {"hostphone": f"+1 555 {rng.randrange(10**6, 10**7)}", "guestphone": f"+44 20 {rng.randrange(10**7, 10**8)}"}
    s |= {"payoutemail": f"payout-{tag}@example.com", "clientsecret": f"pi_{tag}_secret_{marker(rng, 'cs')}"}
    s |= {"photopath": f"ab/{uuid.uuid4().hex}.png"}
    own = {
        "owner_host": {"first_name": "Ada", "last_name": s["hostlast"], "phone_number": s["hostphone"]},
        "owner_guest": {"first_name": "Grace", "last_name": s["guestlast"], "phone_number": s["guestphone"]},
    }
    with owner.transaction():
        people: dict[str, User | None] = {"anonymous": None}
        people |= {actor: person(owner, settings, actor, tag, **own.get(actor, {})) for actor in ACTORS[1:]}
        host, guest = people["owner_host"], people["owner_guest"]
        assert host and guest
        s |= {"hostemail": host.email, "guestemail": guest.email}
        for user in (host, guest):
            s[f"hash{user.role}"] = one(
                owner,
                "insert into app_private.credentials (user_id, password_hash)"
                " values (%s, extensions.crypt('owner password 1', extensions.gen_salt('bf', 4))) returning password_hash",
                (user.id,),
            )
        s["refresh"] = one(owner, "select app_private.issue_refresh(%s) ->> 'refresh'", (host.id,))
        category = "leak-" + tag
        cat = one(owner, "insert into app.categories (name, slug) values (%s, %s) returning id", (category, category))
        listing = (
            "insert into app.products (host_id, category_id, name, description, location, price_per_night,"
            " max_guests, published) values (%s, %s, %s, %s, 'Lagos', 100, 4, %s) returning id"
        )
        pub = one(owner, listing, (host.id, cat, "Public flat " + tag, "Open to all.", True))
        hidden = one(owner, listing, (host.id, cat, s["hiddenname"], s["hiddendesc"], False))
        photo = one(
            owner,
            "insert into app.product_photos (product_id, path, content_type, size_bytes, position)"
            " values (%s, %s, 'image/png', 100, 0) returning id",
            (hidden, s["photopath"]),
        )
        block = one(
            owner,
            "insert into app.calendar_entries (product_id, stay, reason, created_by)"
            " values (%s, daterange(%s::date, %s::date), %s, %s) returning id",
            (pub, day(60), day(63), s["blockreason"], host.id),
        )
        booking = one(
            owner,
            "insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, price_per_night,"
            " total_price, currency, cancellation_policy, expires_at)"
            " values (%s, %s, %s, %s, %s, 1, 100, 300, 'USD', 'moderate', now() + interval '1 day') returning id",
            (pub, guest.id, host.id, day(30), day(33)),
        )
        payment = one(
            owner,
            "insert into app.payments (booking_id, guest_id, host_id, provider, payment_method, amount, currency,"
            " booking_amount, booking_currency, provider_payment_id, client_secret)"
            " values (%s, %s, %s, 'stripe', 'stripe', 300, 'USD', 300, 'USD', %s, %s) returning id",
            (booking, guest.id, host.id, "pi_" + tag, s["clientsecret"]),
        )
        stay = one(
            owner,
            "insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, price_per_night,"
            " total_price, currency, cancellation_policy, status, confirmed_at, completed_at)"
            " values (%s, %s, %s, %s, %s, 1, 100, 200, 'USD', 'moderate', 'completed', now() - interval '5 days',"
            " now() - interval '1 day') returning id",
            (pub, guest.id, host.id, day(-5), day(-3)),
        )
        paid = one(
            owner,
            "insert into app.payments (booking_id, guest_id, host_id, provider, payment_method, amount, currency,"
            " booking_amount, booking_currency, status, succeeded_at, provider_payment_id)"
            " values (%s, %s, %s, 'paypal', 'paypal', 200, 'USD', 200, 'USD', 'succeeded', now(), %s) returning id",
            (stay, guest.id, host.id, "order-" + tag),
        )
        owner.execute(
            "insert into app.payout_accounts (host_id, provider, provider_account_id, status)"
            " values (%s, 'paypal', %s, 'active')",
            (host.id, s["payoutemail"]),
        )
        payout = one(
            owner,
            "insert into app.payouts (booking_id, payment_id, host_id, status, gross, fee_percent, fee, amount, currency,"
            " provider, destination, failure_reason, scheduled_at, failed_at)"
            " values (%s, %s, %s, 'failed', 200, 10, 20, 180, 'USD', 'paypal', %s, %s, now(), now()) returning id",
            (stay, paid, host.id, s["payoutemail"], s["payoutfail"]),
        )
        review = one(
            owner,
            "insert into app.reviews (booking_id, product_id, guest_id, host_id, rating, comment, hidden_at, hidden_by,"
            " hidden_reason) values (%s, %s, %s, %s, 2, %s, now(), %s, %s) returning id",
            (stay, pub, guest.id, host.id, s["reviewtext"], people["admin"].id, s["hidereason"]),  # type: ignore[union-attr]
        )
        conversation = one(
            owner,
            "insert into app.conversations (product_id, guest_id, host_id) values (%s, %s, %s) returning id",
            (pub, guest.id, host.id),
        )
        message = "insert into app.messages (conversation_id, sender_id, recipient_id, body) values (%s, %s, %s, %s) returning id"
        secret_msg = one(owner, message, (conversation, guest.id, host.id, s["secretmsg"]))
        reported_msg = one(owner, message, (conversation, host.id, guest.id, s["reportedmsg"]))
        owner.execute(
            "insert into app.message_reports (message_id, conversation_id, reporter_id, reason) values (%s, %s, %s, 'Rude')",
            (reported_msg, conversation, guest.id),
        )
        notifications = [
            str(n)
            for (n,) in owner.execute(
                "select id from app.notifications where user_id in (%s, %s) order by seq", (host.id, guest.id)
            ).fetchall()
        ]
    assert notifications, "the triggers made no notification for the owners"
    return World(
        people=people,
        category=category,
        public={"products": [pub], "categories": [category], "users": [host.id]},
        private={
            "products": [hidden],
            "photos": [photo],
            "blocked-dates": [block],
            "bookings": [booking, stay],
            "payments": [payment, paid],
            "payouts": [payout],
            "reviews": [review],
            "conversations": [conversation],
            "messages": [secret_msg, reported_msg],
            "notifications": notifications,
            "users": [guest.id],
        },
        secrets=s,
    )


# --- the corpus ------------------------------------------------------------------------------


@dataclass
class Req:
    """One request of the corpus: who sends what, and why (`kind`, for the report)."""

    actor: str
    method: str
    values: dict[str, str]  # the path parameters, as sent
    kind: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    ctype: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    twin: Req | None = None  # the same request naming random ids instead of the owners' private ones

    def url(self, route: Route) -> str:
        path = re.sub(r"{(\w+)}", lambda m: quote(self.values[m[1]], safe=""), route.path)
        return path + ("?" + urlencode(self.query, quote_via=quote) if self.query else "")

    def said(self) -> list[str]:
        """Every string the request carried (an echo of these reveals nothing)."""
        found = [*self.values.values(), *(x for pair in self.query for x in pair), *self.headers.values()]
        if self.body:
            text = self.body.decode("utf-8", "replace")
            found.append(text)
            try:
                found += strings(json.loads(text))
            except (ValueError, RecursionError):
                pass
        return [s for s in found if len(s) >= 3]

    def describe(self, route: Route) -> str:
        body = "" if self.body is None else f" body={self.body[:120]!r}" + ("..." if len(self.body) > 120 else "")
        extra = f" content-type={self.ctype!r}" if self.ctype is not None else ""
        extra += "".join(f" {k}={v[:80]!r}" for k, v in self.headers.items())
        return f"[{self.kind}] {self.actor}: {self.method} {self.url(route)[:300]}{body}{extra}"


def strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def hostile_ids(world: World, rng: random.Random) -> list[str]:
    """Values for a path parameter that are no usable id (or the owners' id in another spelling)."""
    real = world.private["bookings"][0]
    return [
        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "0",
        "-1",
        "1e309",
        real.upper(),
        "{" + real + "}",
        real.replace("-", ""),
        real + " ",
        real[:-1] + "g",
        "x" * 5_000,
        "ünïcødé-😀",
        "\u202e\u200b",
        "a\x00b",
        "' or 1=1 --",
        "'; select 1; --",
        "%",
        "%25",
        "\\",
        "_",
        "*",
        "me",
        "null",
        "[]",
    ]


QUERY_VALUES = [
    "",
    " ",
    "' or 1=1 --",
    "'; select pg_sleep(0); --",
    "%",
    "\\",
    "_",
    "-1",
    "0",
    "1.5",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "-Infinity",
    "2024-02-30",
    "0000-01-01",
    "9999-12-31",
    "-infinity",
    "2024-13-01",
    "x" * 10_000,
    "ünïcødé ✓ 😀",
    "\u202e",
    "a\x00b",
    "true",
    "yes",
    "[]",
    '{"a":1}',
    "-price",
    "price;drop",
    "rating,name",
    "wifi,,pool",
    "wifi,' or 1=1 --",
    "me",
    "<script>alert(1)</script>",
    "& | ! ( ) :*",
]

# Field values of the wrong type, size, sign or calendar.
FIELD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**30,
    -(10**30),
    10**400,
    1e308,
    "",
    " \t\n",
    "x" * 100_000,
    {"nested": {"deeper": [1, {"a": None}]}},
    {"$gt": ""},
    [],
    [1, "a", None],
    "2024-02-30",
    "9999-12-31",
    "0001-01-01",
    "-1",
    "NaN",
    "Infinity",
    "1e309",
    "99999999999999999999",
    "ünïcødé ✓ 😀",
    "\u202e",
    "a\x00b",
    "' or 1=1 --",
    "<script>alert(1)</script>",
]

# Bodies that are not a JSON object, or not JSON, or not declared as JSON.
RAW_BODIES: list[tuple[bytes, str | None]] = [
    (b"{", JSON),
    (b"", JSON),
    (b"null", JSON),
    (b"[]", JSON),
    (b'[{"a": 1}]', JSON),
    (b'"text"', JSON),
    (b"12", JSON),
    (b'{"a": 1e999999}', JSON),
    (b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}", JSON),
    (b'{"a": 1, "a": 2}', JSON),
    (b"\xef\xbb\xbf{}", JSON),
    (b'{"a": "\xff\xfe"}', JSON),
    (b'{"a": "\\ud800"}', JSON),
    (b'{"a": "\\u0000"}', JSON),
    (b'{"name": "x"}', "text/plain"),
    (b"name=x&body=y", "application/x-www-form-urlencoded"),
    (b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--b--\r\n', "multipart/form-data; boundary=b"),
    (b"{}", "application/json; charset=utf-16"),
    (b"{}", "application/vnd.evil+json"),
    (b"{}", "APPLICATION/JSON"),
    (b'{"a": 1}', None),
    (b"x" * (1_048_576 + 16), JSON),
]

PNG = image("PNG")


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "fuzzboundary") -> tuple[bytes, str]:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


UPLOADS: list[tuple[bytes, str | None]] = [
    multipart([("file", "a.png", PNG)]),
    multipart([("file", "a.txt", b"just text")]),
    multipart([("file", "a.png", b"")]),
    multipart([("other", "a.png", PNG)]),
    multipart([("file", None, b"not a file")]),
    multipart([("file", "../../etc/passwd", PNG)]),
    multipart([("file", "ünï\u202e.png", PNG)]),
    (b"--x\r\nbroken", "multipart/form-data; boundary=fuzzboundary"),
    (b"", "multipart/form-data"),
    (PNG, "image/png"),
    (b"{}", JSON),
]


def plausible(name: str, world: World) -> Any:
    """A value that passes validation for a body field of this name, as far as a name tells."""
    return {
        "name": "Fuzz flat",
        "description": "Quiet and bright.",
        "location": "Lagos",
        "price_per_night": "120.00",
        "max_guests": 2,
        "category": world.category,
        "published": True,
        "amenities": ["wifi"],
        "cancellation_policy": "moderate",
        "currency": "USD",
        "product_id": world.public["products"][0],
        "booking_id": world.private["bookings"][0],
        "start_date": day(40),
        "end_date": day(43),
        "guests": 1,
        "body": "Hello, is it free?",
        "reason": "Spam.",
        "rating": 4,
        "comment": "Nice stay.",
        "response": "Thank you.",
        "provider": "paypal",
        "email": f"fuzz-{uuid.uuid4().hex[:12]}@example.com",
        "password": "correct horse battery",
        "first_name": "Fuzz",
        "last_name": "Tester",
        "phone_number": "+1 555 0100",
        "preferences": {"language": "en"},
        "role": "guest",
        "active": True,
        "refresh": "not-a-refresh-token",
        "base": "USD",
        "quote": "EUR",
        "rate": "1.1",
        "amount": "1.00",
        "slug": "fuzz-" + uuid.uuid4().hex[:8],
    }.get(name, "fuzz")


def dumps(value: Any) -> bytes:
    """JSON as a client may send it: integers of any size, NUL escaped, non-ASCII as UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def corpus(route: Route, admitted: frozenset[str], world: World, fields: list[str], rng: random.Random) -> list[Req]:
    """The requests for one route (which `admitted` roles may call), in the order of ACTORS (outsiders, owners, admin)."""
    params = re.findall(r"{(\w+)}", route.path)
    resource = {p: route.path.split("{" + p + "}")[0].rstrip("/").rsplit("/", 1)[-1] for p in params}
    real = {p: world.ids(resource[p]) or REAL.get(resource[p], []) or ["x"] for p in params}
    allowed = [a for a in ACTORS if ROLE[a] in admitted] or ["anonymous"]
    # Who gets far with hostile input: the owner of the named object, else a guest or host
    # acting for themselves; and the admin.
    side = "owner_guest" if any(resource[p] in GUEST_SIDE for p in params) else "owner_host"
    deep = [a for a in ([side] if params else ["guest", "host"]) if a in allowed][:1]
    deep = deep + (["admin"] if "admin" in allowed else []) or allowed
    outsiders = [a for a in allowed if a in OUTSIDERS] or allowed
    body = dumps({f: plausible(f, world) for f in fields}) if route.body else None
    ctype = JSON if body is not None else None
    first = {p: ids[0] for p, ids in real.items()}
    out: list[Req] = []

    # Every actor naming the owners' objects: outsiders are refused, owners and admins served.
    # An outsider's request naming a private object has a twin naming random ids instead.
    combos = [dict(zip(params, c, strict=True)) for c in itertools.product(*(real[p] for p in params))][:6]
    private = world.private_ids
    for actor in ACTORS:
        for values in combos:
            req = Req(actor, route.method, values, "real ids", body=body, ctype=ctype)
            if actor in OUTSIDERS and ROLE[actor] in admitted and {v.lower() for v in values.values()} & private:
                random_ids = {
                    p: str(uuid.UUID(int=rng.getrandbits(128), version=4)) if v.lower() in private else v
                    for p, v in values.items()
                }
                req.twin = replace(req, values=random_ids, kind="random ids")
            out.append(req)

    def add(actors: list[str], kind: str, values: dict[str, str] | None = None, **parts: Any) -> None:
        out.append(Req(rng.choice(actors), route.method, first if values is None else values, kind, **parts))

    # Path parameters that are no usable id.
    for p in params:
        for value in rng.sample(hostile_ids(world, rng), 12):
            add(allowed, f"path {p}", {**first, p: value}, body=body, ctype=ctype)

    # Query parameters: hostile values, and the owners' ids as filters for outsiders.
    owners_ids = [world.owner("owner_guest").id, world.owner("owner_host").id]
    owners_ids += world.private["products"] + world.private["bookings"]
    for name in route.query:
        for value in rng.sample(QUERY_VALUES, 5):
            add(deep if params else allowed, f"query {name}", query=[(name, value)])
        for value in owners_ids:
            add(outsiders, f"query {name}", query=[(name, value)])
    if route.query:
        add(deep, "query all", query=[(name, rng.choice(QUERY_VALUES)) for name in route.query])
        add(deep, "query repeated", query=[(route.query[0], "1"), (route.query[0], "' or 1=1 --")])

    # Bodies: each field missing or of the wrong kind, every field at once, then not JSON at all.
    if route.body:
        plain = {f: plausible(f, world) for f in fields}
        for f in fields:
            add(deep, f"body -{f}", body=dumps({k: v for k, v in plain.items() if k != f}), ctype=JSON)
            for value in rng.sample(FIELD_VALUES, 3):
                add(deep, f"body {f}", body=dumps({**plain, f: value}), ctype=JSON)
        for value in rng.sample(FIELD_VALUES, 8):
            add(deep, "body all", body=dumps({f: value for f in fields or ["x"]}), ctype=JSON)
        for raw, kind in rng.sample(RAW_BODIES, 10):
            add(deep, "raw body", body=raw, ctype=kind)
    elif route.upload:
        for raw, kind in UPLOADS:
            add(deep, "upload", body=raw, ctype=kind)
    else:
        for raw, kind in ((b'{"a": [1, 2]}', JSON), (b"{", JSON), (b"x" * 200_000, "text/plain")):
            add(deep, "unexpected body", body=raw, ctype=kind)

    # Request headers a function reads (the stream reads Last-Event-ID itself).
    for name in route.headers:
        header = name.replace("_", "-")
        for value in ("x" * 300, "ünïcødé", "' or 1=1 --", " ", "a\tb", "a\x00b"):
            add(deep, f"header {header}", body=body, ctype=ctype, headers={header: value})
    if route.special is specials.stream:
        for value in ("-1", "0", "1e309", "99999999999999999999", "' or 1=1 --", "x" * 300, "ünï", "+1", "1.5"):
            add(deep, "header last-event-id", headers={"last-event-id": value})
    out.sort(key=lambda r: ACTORS.index(r.actor))
    return out


# --- tokens that must get nobody in ----------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: Any, claims: dict[str, Any], secret: str | None) -> str:
    """A JWT with any header at all, HS256-signed with `secret` (None: no signature)."""
    head = b64(orjson.dumps(header)) + "." + b64(orjson.dumps(claims))
    signature = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest() if secret else b""
    return head + "." + b64(signature)


def bad_tokens(settings: Settings, world: World) -> list[str]:
    """Authorization headers that are malformed, forged, expired, or signed with our key but wrong."""
    kid, key = next(iter(settings.jwt_keys.items()))
    now = int(time.time())
    guest = world.owner("owner_guest")
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": guest.id,
        "role": "guest",
    }
    claims |= {"iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), "typ": "access", "sev": 0}
    claims["sid"] = jwt.decode(guest.token, options={"verify_signature": False})["sid"]  # a live session

    def signed(changes: dict[str, Any], secret: str = key, header: dict[str, Any] | None = None) -> str:
        return "Bearer " + forge(
            {"alg": "HS256", "typ": "JWT", "kid": kid, **(header or {})}, {**claims, **changes}, secret
        )

    return [
        "Bearer",
        "Bearer ",
        "Basic Z3Vlc3Q6Z3Vlc3Q=",
        "Token abc",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer " + "A" * 8_000,
        "Bearer ünï.cødé.😀",
        "Bearer ' or 1=1 --",
        "Bearer " + forge({"alg": "none", "kid": kid}, claims, None),
        "Bearer " + forge({"alg": "HS256", "kid": kid}, {**claims, "role": "admin"}, None) + "c2ln",
        "Bearer " + forge({"alg": "HS512", "kid": kid}, claims, key),
        "Bearer " + forge({"alg": "HS256", "kid": kid, "crit": ["exp"]}, claims, key),
        "Bearer " + forge(["not", "an", "object"], claims, key),
        signed({}, secret="not-our-key-" * 6),
        signed({"exp": now - 30}),
        signed({"exp": "soon"}),
        signed({"role": "postgres"}),
        signed({"role": "authenticator"}),
        signed({"role": "api_internal"}),
        signed({"role": "anon"}),
        signed({"role": "admin"}),
        signed({"typ": "refresh"}),
        signed({"aud": "someone-else"}),
        signed({"iss": "someone-else"}),
        signed({}, header={"kid": "no-such-key"}),
        signed({}, header={"kid": ["x"]}),
        signed({"sub": "' or 1=1 --"}),
        signed({"sub": str(uuid.uuid4())}),
        signed({"sev": "x"}),
        signed({"sev": {"a": 1}}),
        signed({"sid": None}),
    ]


# --- sending -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Plain:
    """Nexus on loopback (tests.loopback.Server), for the route whose answer never ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = ""

    def app(self) -> Starlette:
        return create_app(self.settings)


@pytest.fixture(scope="module")
def web(pay_settings: Settings) -> Iterator[TestClient]:
    """The app as deployed (payments configured against the stand-ins); redirects not followed."""
    app = create_app(pay_settings)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


@pytest.fixture(scope="module")
def live(pay_settings: Settings) -> Iterator[Plain]:
    """The app on loopback with a fast heartbeat: an event stream is read up to its first heartbeat."""
    with Server(Plain(replace(pay_settings, sse_heartbeat_seconds=0.05)), lifespan="on") as served:
        yield served


def send(web: TestClient, live: Callable[[], Plain], route: Route, req: Req, auth: str | None) -> Answer:
    headers = {k.encode(): v.encode() for k, v in req.headers.items()}
    if req.ctype is not None:
        headers[b"content-type"] = req.ctype.encode()
    if auth is not None:
        headers[b"authorization"] = auth.encode()
    if route.special is specials.stream:
        return stream(live().base_url + req.url(route), headers)
    r = web.request(req.method, req.url(route), content=req.body, headers=headers)
    return Answer(r.status_code, dict(r.headers), r.content)


def stream(url: str, headers: dict[bytes, bytes]) -> Answer:
    """GET an event stream over real HTTP: its events up to the first heartbeat, then hang up."""
    with httpx2.Client(timeout=5.0) as http, http.stream("GET", url, headers=headers) as r:
        if not r.headers.get("content-type", "").startswith("text/event-stream"):
            return Answer(r.status_code, dict(r.headers), r.read())
        body = b""
        for chunk in r.iter_bytes():
            body += chunk
            if b": heartbeat" in body or len(body) > 1_000_000:
                break
        return Answer(r.status_code, dict(r.headers), body)


# --- judging -----------------------------------------------------------------------------------


def texts(answer: Answer) -> tuple[list[str], list[str]]:
    """The answer's strings: (all of them, those that must not name a database object). JSON is
    walked: the keys of a success are its documented fields, NAMING_KEYS' values name tables."""
    try:
        data = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raw = answer.body.decode("utf-8", "replace")
        return [raw], [raw]
    every: list[str] = []
    naming: list[str] = []

    def walk(value: Any, key: str | None) -> None:
        if key in SQL_KEYS and answer.status < 300:
            return
        if isinstance(value, str):
            every.append(value)
            if key not in NAMING_KEYS:
                naming.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                every.append(k)
                if answer.status >= 300:
                    naming.append(k)
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    walk(data, None)
    return every, naming


def without_echo(found: list[str], said: list[str]) -> str:
    """The strings joined, with what the request said cut out, in the forms the server may give
    it back: trimmed, in lower or upper case, URL-encoded (a page link repeats the query)."""
    forms = {f for s in said for f in (s, s.strip(), s.lower(), s.upper(), quote(s, safe=""), quote(s))}
    forms |= {urlencode({"": s})[1:] for s in said}
    ordered = sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)
    out = []
    for text in found:
        for f in ordered:
            if f in text:
                text = text.replace(f, "\x1f")
        out.append(text)
    return "\n".join(out)


def canonical(value: str) -> str:
    """An id as the database reads it (PostgreSQL takes braces, upper case, no hyphens)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value.lower()


def judge(req: Req, answer: Answer, world: World, names: re.Pattern[str]) -> list[str]:
    """What is wrong with this answer (nothing: [])."""
    wrong: list[str] = []
    if answer.status >= 500 and answer.status != 503:  # 503: a provider or the database is away, said so
        wrong.append(f"status {answer.status}")
    if answer.status >= 400:
        try:
            problem = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            problem = None
        ctype = answer.headers.get("content-type", "")
        if (
            ctype != PROBLEM
            or not isinstance(problem, dict)
            or not {"type", "title", "status", "detail"} <= problem.keys()
        ):
            wrong.append(f"not problem+json ({ctype})")
        elif problem["status"] != answer.status or not isinstance(problem["detail"], str):
            wrong.append("the problem's status or detail is wrong")
    every, naming = texts(answer)
    said = req.said()
    text = without_echo(every, said)
    naming_text = without_echo(naming, said)
    headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items() if k not in ("x-request-id", "location"))
    wrong += [f"contains {piece!r}" for piece in FORBIDDEN_TEXT if piece in text or piece in headers]
    for pattern in FORBIDDEN_PATTERNS:
        if m := pattern.search(text) or pattern.search(headers):
            wrong.append(f"matches {pattern.pattern!r}: {m[0][:80]!r}")
    for pattern in (names, QUALIFIED):
        if m := pattern.search(naming_text) or pattern.search(headers):
            wrong.append(f"names {m[0]!r}")
    lowered = text.lower()
    wrong += [
        f"shows the owners' {label}"
        for label, secret in world.forbidden(req.actor).items()
        if secret.lower() in lowered
    ]
    if req.actor in OUTSIDERS:
        if shown := next((i for i in world.private_ids if i in lowered), None):
            wrong.append(f"shows the private id {shown}")
        named = {canonical(v) for v in req.values.values()}
        reachable = world.all_ids if req.method != "GET" else world.private_ids
        if answer.status < 400 and named & reachable:
            wrong.append(f"{answer.status}: an outsider reached the owners' object")
    return wrong


def fingerprint(answer: Answer) -> tuple[Any, ...]:
    """What an answer tells: its status, detail and the fields it names."""
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return (answer.status,)
    if not isinstance(body, dict):
        return (answer.status,)
    return answer.status, body.get("detail"), sorted(body.get("errors") or {})


# --- the test ------------------------------------------------------------------------------------

# Defects in sql/ that this fuzz finds and that are not fixed yet: (method, path) -> why.
# The route's case is a strict xfail until the fix lands (then it passes, and must be removed).
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}

TOKENS_PER_ROUTE = 4  # the bad tokens take turns: every one is tried on several routes


def cases() -> list[Any]:
    return [
        pytest.param(
            route,
            id=f"{route.method} {route.path}",
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[(route.method, route.path)])]
            if (route.method, route.path) in KNOWN_DEFECTS
            else [],
        )
        for route in ROUTES
    ]


@pytest.mark.parametrize("route", cases())
def test_no_answer_leaks(
    request: pytest.FixtureRequest,
    route: Route,
    web: TestClient,
    world: World,
    pay_settings: Settings,
    catalog_names: re.Pattern[str],
    body_fields: dict[str, list[str]],
    contract: openapi.Contract,
) -> None:
    # Setup: the corpus for this route, and bad tokens in turn.
    rng = random.Random(f"{route.method} {route.path}")
    requests = corpus(route, contract.admits(route), world, body_fields.get(route.function, []), rng)
    tokens = bad_tokens(pay_settings, world)
    start = ROUTES.index(route) * TOKENS_PER_ROUTE
    requests[:0] = [
        Req(
            "token",
            route.method,
            requests[0].values,
            "bad token",
            headers={"authorization": tokens[(start + k) % len(tokens)]},
        )
        for k in range(TOKENS_PER_ROUTE)
    ]

    def live() -> Plain:  # started only for the route that streams
        return request.getfixturevalue("live")  # type: ignore[no-any-return]

    # Action and assertions: every answer judged; an outsider's twin requests answered alike.
    wrong: list[str] = []
    sent = 0
    for req in requests:
        user = world.people.get(req.actor)
        answer = send(web, live, route, req, f"Bearer {user.token}" if user else None)
        sent += 1
        wrong += [
            f"{p} <- {req.describe(route)} -> {answer.status} {answer.body[:300]!r}"
            for p in judge(req, answer, world, catalog_names)
        ]
        if req.twin:
            twin = send(web, live, route, req.twin, f"Bearer {user.token}" if user else None)
            sent += 1
            if fingerprint(twin) != fingerprint(answer):
                wrong.append(
                    f"tells the owners' private object from a missing one: {fingerprint(answer)} vs {fingerprint(twin)}"
                    f" <- {req.describe(route)}"
                )

    assert not wrong, f"{len(wrong)} problems in {sent} answers:\n" + "\n".join(wrong[:30])


def test_text_the_driver_will_not_send_is_the_clients_mistake(owner: psycopg.Connection[Any]) -> None:
    """Text with NUL never reaches PostgreSQL: psycopg refuses it, with no SQLSTATE. Whatever way
    it got past the API's own checks (a header a special reads, like the stream's Last-Event-ID;
    the fuzz cannot send that one, real HTTP servers refuse it first), it is a 400, not a 500."""
    with pytest.raises(psycopg.DataError) as refused:
        owner.execute("select %s::text", ("a\x00b",))

    problem = from_database(refused.value, anonymous=True)

    assert (problem.status, problem.detail) == (400, "Invalid characters in the request.")
