"""The traffic: an asyncio driver on httpx2 (the HTTP client the project already uses), one task per
actor, each request recorded as (time, class, status, seconds).

An asyncio driver rather than locust: on this 2-core machine the stack under test needs the cores,
and one event loop drives the whole mix in ~15-25 % of one core (locust's gevent workers and web
UI cost more and add nothing a soak needs: its actors are stateful flows, not independent hits).

The driver also plays the third parties' other side: it pays at Stripe (the stand-in's
set_status) and delivers Stripe's signed webhooks, approves PayPal orders, tells PayPal's payouts
succeeded, finishes hosts' Stripe onboarding; and it moves time as a DBA would (stays end: as the
owner, the booking job's own UPDATE on the confirmed bookings of the soak).

Webhooks go through a mailbag that delivers each one until it gets a 2xx (as both providers do),
sometimes twice, sometimes late (so out of order); in the webhook fault window always twice and
shuffled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import psycopg

from soak.stack import Stack

PASSWORD = "soak-password-1234"
WORDS = ["Lagos", "beach", "loft", "garden", "quiet", "city", "view", "pool", "Abuja", "studio", "family", "cozy"]


@dataclass
class User:
    id: str
    email: str
    role: str
    access: str
    refresh: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, str, int, float]] = field(default_factory=list)  # (t, class, status, seconds)
    flows: list[tuple[float, str, float]] = field(default_factory=list)  # (t, flow, seconds)
    counts: dict[str, int] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.started

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


class Mailbag:
    """Webhook deliveries: each one until a 2xx, at a due time (late ones arrive out of order)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.heap: list[tuple[float, int, str, bytes, dict[str, str], int]] = []
        self.seq = itertools.count()
        self.chaos = False  # the webhook fault: every event twice, each delayed at random
        self.wake = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()

    def post(self, provider: str, body: bytes, headers: dict[str, str]) -> None:
        r = self.driver.recorder
        delays = [0.0]
        if self.chaos:
            delays = [random.uniform(0, 15), random.uniform(0, 15)]
            r.count("webhooks duplicated")
            r.count("webhooks delayed", 2)
        elif random.random() < 0.15:
            delays.append(random.uniform(0.2, 10))  # a redelivery
            r.count("webhooks duplicated")
        elif random.random() < 0.1:
            delays = [random.uniform(2, 20)]  # late: events after it arrive first
            r.count("webhooks delayed")
        for delay in delays:
            heapq.heappush(self.heap, (time.monotonic() + delay, next(self.seq), provider, body, headers, 0))
        self.wake.set()

    async def run(self) -> None:
        while True:
            if not self.heap:
                self.wake.clear()
                await self.wake.wait()
                continue
            due = self.heap[0][0]
            if due > time.monotonic():
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=due - time.monotonic())
                except TimeoutError:
                    pass
                continue
            _, _, provider, body, headers, tries = heapq.heappop(self.heap)
            task = asyncio.create_task(self.deliver(provider, body, headers, tries))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

    async def deliver(self, provider: str, body: bytes, headers: dict[str, str], tries: int) -> None:
        r = await self.driver.call(
            f"webhook.{provider}",
            "POST",
            f"/api/webhooks/{provider}/",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        if r is None or r.status_code >= 300:
            # the provider tries again later: Stripe and PayPal back off over hours; here seconds
            delay = min(30.0, 1.5 * 2**tries)
            heapq.heappush(self.heap, (time.monotonic() + delay, next(self.seq), provider, body, headers, tries + 1))
            self.wake.set()
        else:
            self.driver.recorder.count(f"webhooks delivered ({provider})")


class Driver:
    def __init__(self, stack: Stack, recorder: Recorder, seed: int = 28) -> None:
        self.stack = stack
        self.recorder = recorder
        self.random = random.Random(seed)
        self.client = httpx2.AsyncClient(
            base_url=stack.api.base_url,
            timeout=httpx2.Timeout(20.0, connect=5.0),
            limits=httpx2.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.mailbag = Mailbag(self)
        self.guests: list[User] = []
        self.hosts: list[User] = []
        self.admin: User | None = None
        self.listings: list[dict[str, Any]] = []  # the soak's own: {"id", "host", "popular"}
        self.popular: list[dict[str, Any]] = []
        self.browse_ids: list[str] = []  # listings to look at (the soak's and, with bench data, those)
        self.booked: list[dict[str, Any]] = []  # bookings made, for the admin's and the reviewers' look
        self.disputes: list[dict[str, Any]] = []  # open at the provider: {"provider", "id", "since"}
        self.running = True
        self.streams_open = 0
        self.pages = 1

    # --- one request -----------------------------------------------------------------------------

    async def call(self, cls: str, method: str, url: str, **kw: Any) -> httpx2.Response | None:
        t0 = time.monotonic()
        try:
            r = await self.client.request(method, url, **kw)
        except httpx2.HTTPError:
            self.recorder.samples.append((t0 - self.recorder.started, cls, 0, time.monotonic() - t0))
            return None
        self.recorder.samples.append((t0 - self.recorder.started, cls, r.status_code, time.monotonic() - t0))
        return r

    async def retried(
        self, cls: str, method: str, url: str, tries: int = 8, key: bool = True, **kw: Any
    ) -> httpx2.Response | None:
        """A write sent again, with the same Idempotency-Key, while the answer is lost or 503 (as a
        careful client does): the first answer that is not, or None."""
        headers = dict(kw.pop("headers", {}))
        if key:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        for attempt in range(tries):
            r = await self.call(cls, method, url, headers=headers, **kw)
            if r is not None and r.status_code not in (502, 503, 504):
                return r
            await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
        return None

    # --- people ----------------------------------------------------------------------------------

    async def sign_up(self, role: str = "guest") -> User | None:
        email = f"{role}-{uuid.uuid4().hex[:12]}@soak.test"
        body = {"email": email, "password": PASSWORD, "first_name": "Soak", "last_name": role.title(), "role": role}
        r = await self.retried("signup", "POST", "/api/register/", json=body, key=False)
        if r is None or r.status_code != 201:
            return None
        return await self.sign_in(email)

    async def sign_in(self, email: str) -> User | None:
        r = await self.retried("signin", "POST", "/api/token/", json={"email": email, "password": PASSWORD}, key=False)
        if r is None or r.status_code != 200:
            return None
        t = r.json()
        return User(t["user"]["id"], email, t["user"]["role"], t["access"], t["refresh"])

    async def refresh(self, user: User) -> None:
        r = await self.call("refresh", "POST", "/api/token/refresh/", json={"refresh": user.refresh})
        if r is not None and r.status_code == 200:
            t = r.json()
            user.access, user.refresh = t["access"], t["refresh"]

    # --- setup -----------------------------------------------------------------------------------

    async def setup(self, hosts: int = 8, guests: int = 30, listings_per_host: int = 3) -> None:
        email = "admin@soak.test"
        with psycopg.connect(self.stack.cluster.owner_url, autocommit=True) as conn:
            conn.execute("select app_private.create_admin(%s, %s)", (email, PASSWORD))
        self.admin = await self.sign_in(email)
        if self.admin is None:
            raise RuntimeError("the soak's admin cannot sign in")
        made = await asyncio.gather(*(self.sign_up("host") for _ in range(hosts)))
        self.hosts = [h for h in made if h]
        categories = (await self.client.get("/api/categories/")).json()["results"]
        if not categories:  # a fresh database: the admin makes a few
            for name in ("Apartments", "Houses", "Cabins", "Lofts"):
                await self.call(
                    "admin",
                    "POST",
                    "/api/categories/",
                    json={"name": name, "slug": name.lower()},
                    headers=self.admin.auth,
                )
            categories = (await self.client.get("/api/categories/")).json()["results"]
        policies = ["flexible", "moderate", "strict"]
        for i, host in enumerate(self.hosts):
            for j in range(listings_per_host):
                body = {
                    "name": f"Soak {self.random.choice(WORDS)} {i}-{j}",
                    "description": "A place the soak books. " + " ".join(self.random.sample(WORDS, 4)),
                    "location": self.random.choice(["Lagos", "Abuja", "Accra", "Nairobi"]),
                    "price_per_night": f"{self.random.randint(40, 300)}.00",
                    "max_guests": 4,
                    "category": categories[(i + j) % len(categories)]["slug"],
                    "cancellation_policy": policies[(i + j) % 3],
                }
                r = await self.call("host.listing", "POST", "/api/products/", json=body, headers=host.auth)
                if r is not None and r.status_code == 201:
                    listing = {"id": r.json()["id"], "host": host, "popular": j == 0 and i < 3}
                    self.listings.append(listing)
            # half the hosts are paid through Stripe Connect, half by PayPal
            if i % 2 == 0:
                await self.call(
                    "host.payout_account", "POST", "/api/users/me/payout-account/",
                    json={"provider": "stripe"}, headers=host.auth,
                )  # fmt: skip
            else:
                await self.call(
                    "host.payout_account", "POST", "/api/users/me/payout-account/",
                    json={"provider": "paypal", "email": host.email}, headers=host.auth,
                )  # fmt: skip
        self.popular = [x for x in self.listings if x["popular"]]
        made = await asyncio.gather(*(self.sign_up() for _ in range(guests)))
        self.guests = [g for g in made if g]
        self.browse_ids = [x["id"] for x in self.listings]
        with psycopg.connect(self.stack.cluster.owner_url, autocommit=True) as conn:
            rows = conn.execute(
                "select id::text from app.products where published order by random() limit 2000"
            ).fetchall()
        self.browse_ids += [r[0] for r in rows]
        count = (await self.client.get("/api/products/", params={"page_size": "10"})).json()["count"]
        self.pages = max(1, min(20, count // 10))
        if not (self.hosts and self.guests and self.popular and self.admin):
            raise RuntimeError("the soak's setup failed: no hosts, guests, listings or admin")

    # --- the actors ------------------------------------------------------------------------------

    async def forever(self, actor: Callable[[], Any], pause: tuple[float, float]) -> None:
        while self.running:
            try:
                await actor()
            except (KeyError, ValueError, TypeError, IndexError) as exc:  # an answer not shaped as expected
                self.recorder.count(f"driver: {type(exc).__name__} in {getattr(actor, '__name__', '?')}")
            await asyncio.sleep(self.random.uniform(*pause))

    async def browse(self) -> None:
        """Anonymous: the catalog's list, search, filters, a listing's page, its calendar, its reviews."""
        roll = self.random.random()
        if roll < 0.25:
            params = {
                "page": str(self.random.randint(1, self.pages)),
                "page_size": "10",
                "ordering": self.random.choice(["price", "-price", "-created_at", "-rating"]),
            }
            await self.call("browse.list", "GET", "/api/products/", params=params)
        elif roll < 0.45:
            params = {"search": self.random.choice(WORDS)}
            if self.random.random() < 0.5:
                params |= {"min_price": "50", "max_price": "250", "guests": "2"}
            await self.call("browse.search", "GET", "/api/products/", params=params)
        elif roll < 0.55:
            await self.call(
                "browse.facets",
                "GET",
                "/api/products/facets/",
                params={"location": self.random.choice([*WORDS[:1], "Abuja"])},
            )
        elif roll < 0.85:
            pid = self.random.choice(self.browse_ids)
            await self.call("browse.detail", "GET", f"/api/products/{pid}/")
        elif roll < 0.93:
            pid = self.random.choice(self.popular if self.random.random() < 0.5 else self.listings)["id"]
            start = dt.date.today() + dt.timedelta(days=5)
            params = {"from": start.isoformat(), "to": (start + dt.timedelta(days=60)).isoformat()}
            await self.call("browse.availability", "GET", f"/api/products/{pid}/availability/", params=params)
        else:
            pid = self.random.choice(self.listings)["id"]
            await self.call("browse.reviews", "GET", f"/api/products/{pid}/reviews/")

    async def sign_ups(self) -> None:
        """New guests arrive, and some come back and sign in again (a new session)."""
        if self.random.random() < 0.6:
            user = await self.sign_up()
            if user:
                self.guests.append(user)
        else:
            guest = self.random.choice(self.guests)
            again = await self.sign_in(guest.email)
            if again:
                guest.access, guest.refresh = again.access, again.refresh
            elif self.random.random() < 0.5:
                await self.refresh(guest)

    async def guest_flow(self) -> None:
        """Book (a popular listing half the time: contention), pay with Stripe or PayPal, then maybe
        cancel, message the host; after the stay (the time machine), review it."""
        guest = self.random.choice(self.guests)
        popular = self.random.random() < 0.5
        listing = self.random.choice(self.popular if popular else self.listings)
        start = dt.date.today() + dt.timedelta(
            days=self.random.randint(10, 40) if popular else self.random.randint(10, 400)
        )
        end = start + dt.timedelta(days=self.random.randint(1, 4))
        body = {"product_id": listing["id"], "start_date": start.isoformat(), "end_date": end.isoformat(), "guests": 2}
        r = await self.retried("booking.create", "POST", "/api/bookings/", json=body, headers=guest.auth)
        if r is None or r.status_code != 201:
            if r is not None and r.status_code == 409:
                self.recorder.count("bookings refused: dates taken")
            return
        booking = r.json()
        self.recorder.count("bookings made")
        roll = self.random.random()
        if roll < 0.08:
            self.recorder.count("holds abandoned (expire)")
            return
        if roll < 0.12:
            await self.retried(
                "booking.cancel",
                "POST",
                f"/api/bookings/{booking['id']}/cancel/",
                json={"reason": "Changed my mind"},
                headers=guest.auth,
                key=False,
            )
            return
        provider = "stripe" if self.random.random() < 0.65 else "paypal"
        t0 = time.monotonic()
        paid = await (self.pay_stripe(guest, booking) if provider == "stripe" else self.pay_paypal(guest, booking))
        if not paid:
            return
        status = await self.wait_booking(guest, booking["id"], {"confirmed", "canceled"}, 120)
        if status == "confirmed":
            self.recorder.flows.append((self.recorder.now(), f"paid→confirmed ({provider})", time.monotonic() - t0))
        self.booked.append({"booking": booking, "guest": guest, "host": listing["host"], "provider": provider})
        roll = self.random.random()
        if status == "confirmed" and roll < 0.25:
            await self.retried(
                "booking.cancel",
                "POST",
                f"/api/bookings/{booking['id']}/cancel/",
                json={"reason": "Plans changed"},
                headers=guest.auth,
                key=False,
            )
            self.recorder.count("paid bookings canceled (refund)")
        elif roll < 0.5:
            r = await self.retried(
                "message",
                "POST",
                "/api/conversations/",
                json={"booking_id": booking["id"], "body": "What time can we check in?"},
                headers=guest.auth,
                key=False,
            )
            if r is not None and r.status_code == 201:
                self.recorder.count("conversations started")

    async def pay_stripe(self, guest: User, booking: dict[str, Any]) -> bool:
        url = f"/api/bookings/{booking['id']}/payments/"
        r = await self.retried("payment.create", "POST", url, json={"provider": "stripe"}, headers=guest.auth)
        if r is None or r.status_code != 201:
            return False
        payment = r.json()
        intent = payment.get("provider_payment_id") or await self.wait_provider_id(guest, payment["id"])
        if not intent:
            self.recorder.count("stripe payments never created at Stripe (within 120 s)")
            return False
        # The guest's card is charged: Stripe says so, and tells us by webhook.
        obj = self.stack.stripe.set_status(intent, "succeeded")
        self.mailbag.post("stripe", *self.stripe_event("payment_intent.succeeded", obj))
        if self.random.random() < 0.1:  # a stale event, delivered after the newer one
            stale = {**obj, "status": "processing"}
            self.mailbag.post("stripe", *self.stripe_event("payment_intent.processing", stale))
        return True

    def stripe_event(self, kind: str, obj: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body, signature = self.stack.stripe.signed_event(kind, obj)
        return body, {"Stripe-Signature": signature}

    async def pay_paypal(self, guest: User, booking: dict[str, Any]) -> bool:
        url = f"/api/bookings/{booking['id']}/payments/"
        r = await self.retried("payment.create", "POST", url, json={"provider": "paypal"}, headers=guest.auth)
        if r is None or r.status_code != 201:
            return False
        payment = r.json()
        order = payment.get("provider_payment_id") or await self.wait_provider_id(guest, payment["id"])
        if not order:
            self.recorder.count("paypal payments never created at PayPal (within 120 s)")
            return False
        self.stack.paypal.approve(order)
        r = await self.retried(
            "payment.capture", "POST", f"/api/payments/{payment['id']}/capture/", headers=guest.auth, key=False
        )
        if self.random.random() < 0.3:  # PayPal's webhook too, sometimes twice
            with self.stack.paypal.lock:
                captures = self.stack.paypal.orders[order]["purchase_units"][0].get("payments", {}).get("captures", [])
            if captures:
                self.mailbag.post(
                    "paypal", *self.stack.paypal.signed_event("PAYMENT.CAPTURE.COMPLETED", dict(captures[0]))
                )
        return r is not None and r.status_code == 200

    async def wait_provider_id(self, guest: User, payment_id: str, seconds: float = 120) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.running:
            await asyncio.sleep(2)
            r = await self.call("payment.get", "GET", f"/api/payments/{payment_id}/", headers=guest.auth)
            if r is not None and r.status_code == 200 and r.json().get("provider_payment_id"):
                return str(r.json()["provider_payment_id"])
        return None

    async def wait_booking(self, guest: User, booking_id: str, statuses: set[str], seconds: float) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.running:
            await asyncio.sleep(1)
            r = await self.call("booking.get", "GET", f"/api/bookings/{booking_id}/", headers=guest.auth)
            if r is not None and r.status_code == 200 and r.json()["status"] in statuses:
                return str(r.json()["status"])
        return None

    async def reviewer(self) -> None:
        """A guest whose stay completed reviews it; the host responds."""
        done = [b for b in self.booked if b.get("completed") and not b.get("reviewed")]
        if not done:
            return
        b = self.random.choice(done)
        b["reviewed"] = True
        r = await self.retried(
            "review", "POST", f"/api/bookings/{b['booking']['id']}/review/",
            json={"rating": self.random.randint(3, 5), "comment": "Lovely stay, would come back."},
            headers=b["guest"].auth, key=False,
        )  # fmt: skip
        if r is not None and r.status_code == 201:
            self.recorder.count("reviews")
            await self.call(
                "review.respond", "PUT", f"/api/reviews/{r.json()['id']}/response/",
                json={"body": "Thank you, come again!"}, headers=b["host"].auth,
            )  # fmt: skip

    async def host_flow(self) -> None:
        """A host looks at their bookings, notifications and conversations, and answers a message."""
        host = self.random.choice(self.hosts)
        roll = self.random.random()
        if roll < 0.3:
            await self.call("host.bookings", "GET", "/api/bookings/", params={"as": "host"}, headers=host.auth)
        elif roll < 0.55:
            await self.call("notifications", "GET", "/api/notifications/", headers=host.auth)
            await self.call("notifications", "GET", "/api/notifications/unread-count/", headers=host.auth)
        elif roll < 0.85:
            r = await self.call("message", "GET", "/api/conversations/", headers=host.auth)
            if r is not None and r.status_code == 200 and r.json()["results"]:
                conv = self.random.choice(r.json()["results"])
                await self.call(
                    "message",
                    "POST",
                    f"/api/conversations/{conv['id']}/messages/",
                    json={"body": "From 3 pm; welcome!"},
                    headers=host.auth,
                )
                await self.call("message", "POST", f"/api/conversations/{conv['id']}/read/", headers=host.auth)
        else:
            await self.call("host.payouts", "GET", "/api/payouts/", headers=host.auth)

    async def guest_reads(self) -> None:
        guest = self.random.choice(self.guests)
        roll = self.random.random()
        if roll < 0.4:
            await self.call("guest.bookings", "GET", "/api/bookings/", headers=guest.auth)
        elif roll < 0.8:
            await self.call("notifications", "GET", "/api/notifications/unread-count/", headers=guest.auth)
        else:
            await self.call("notifications", "POST", "/api/notifications/read-all/", headers=guest.auth)

    async def stream(self) -> None:
        """A notification stream (SSE) held 10-40 s by a guest or a host, counting what arrives."""
        user = self.random.choice(self.hosts + self.guests[:20])
        t0 = time.monotonic()
        hold = self.random.uniform(10, 40)
        try:
            async with self.client.stream(
                "GET", "/api/notifications/stream", headers={**user.auth, "Accept": "text/event-stream"},
                timeout=httpx2.Timeout(hold + 30, connect=5.0),
            ) as r:  # fmt: skip
                self.recorder.samples.append(
                    (t0 - self.recorder.started, "stream", r.status_code, time.monotonic() - t0)
                )
                if r.status_code != 200:
                    return
                self.streams_open += 1
                try:
                    async with asyncio.timeout(hold):
                        async for line in r.aiter_lines():
                            if line.startswith("data:"):
                                self.recorder.count("stream events")
                except TimeoutError:
                    pass
                finally:
                    self.streams_open -= 1
        except httpx2.HTTPError:
            if time.monotonic() - t0 < 1:
                self.recorder.samples.append((t0 - self.recorder.started, "stream", 0, time.monotonic() - t0))
            else:
                self.recorder.count("streams cut (reconnect)")

    async def admin_flow(self) -> None:
        admin = self.admin
        assert admin is not None
        roll = self.random.random()
        if roll < 0.3:
            await self.call("admin", "GET", "/api/admin/overview/", headers=admin.auth)
        elif roll < 0.45:
            await self.call(
                "admin", "GET", "/api/admin/products/", params={"search": self.random.choice(WORDS)}, headers=admin.auth
            )
        elif roll < 0.7 and self.booked:
            b = self.random.choice(self.booked)
            await self.call("admin", "GET", f"/api/admin/bookings/{b['booking']['id']}/", headers=admin.auth)
        elif roll < 0.85:
            await self.call("admin", "GET", "/api/payments/", params={"status": "succeeded"}, headers=admin.auth)
        else:
            # goodwill: a little back on a paid booking (never more than what is left: SQL says 409)
            r = await self.call(
                "admin", "GET", "/api/payments/", params={"status": "succeeded", "page_size": "50"}, headers=admin.auth
            )
            if r is not None and r.status_code == 200 and r.json()["results"]:
                p = self.random.choice(r.json()["results"])
                r = await self.retried(
                    "admin.refund", "POST", f"/api/payments/{p['id']}/refund/",
                    json={"reason": "Goodwill: a noisy night.", "amount": "5.00"}, headers=admin.auth, key=False,
                )  # fmt: skip
                if r is not None and r.status_code == 201:
                    self.recorder.count("goodwill refunds")

    async def disputer(self) -> None:
        """A guest's bank (Stripe) or PayPal disputes a paid booking, all or part of it, and decides
        some 10 to 40 s later, won or lost: each by webhook, as the providers tell. Before or after
        the stay completes, so payouts are held, released and withheld from (issue 27)."""
        now = time.monotonic()
        for d in [d for d in self.disputes if now - d["since"] > d["after"]]:
            self.disputes.remove(d)
            won = self.random.random() < 0.5
            if d["provider"] == "stripe":
                obj = self.stack.stripe.close_dispute(d["id"], "won" if won else "lost")
                self.mailbag.post("stripe", *self.stripe_event("charge.dispute.closed", obj))
            else:
                outcome = "RESOLVED_SELLER_FAVOUR" if won else "RESOLVED_BUYER_FAVOUR"
                obj = self.stack.paypal.close_dispute(d["id"], outcome)
                self.mailbag.post("paypal", *self.stack.paypal.signed_event("CUSTOMER.DISPUTE.RESOLVED", obj))
            self.recorder.count("disputes won" if won else "disputes lost")
        admin = self.admin
        if admin is None or not self.booked or self.random.random() < 0.5:
            return
        b = self.random.choice(self.booked)
        r = await self.call(
            "admin", "GET", "/api/payments/", params={"booking": b["booking"]["id"]}, headers=admin.auth
        )
        paid = [p for p in (r.json()["results"] if r is not None and r.status_code == 200 else [])
                if p["status"] in ("succeeded", "partially_refunded") and not p["disputes"]]  # fmt: skip
        if not paid:
            return
        payment = paid[0]
        minor = round(float(payment["amount"]) * 100 * self.random.choice((0.25, 0.5, 1.0)))
        if payment["provider"] == "stripe":
            obj = self.stack.stripe.open_dispute(payment["provider_payment_id"], amount=minor)
            self.mailbag.post("stripe", *self.stripe_event("charge.dispute.created", obj))
            opened = {"provider": "stripe", "id": obj["id"]}
        else:
            obj = self.stack.paypal.open_dispute(payment["provider_payment_id"], value=f"{minor / 100:.2f}")
            self.mailbag.post("paypal", *self.stack.paypal.signed_event("CUSTOMER.DISPUTE.CREATED", obj))
            opened = {"provider": "paypal", "id": obj["dispute_id"]}
        self.disputes.append({**opened, "since": time.monotonic(), "after": self.random.uniform(10, 40)})
        self.recorder.count("disputes opened")

    # --- the other side of the providers, and the clock ------------------------------------------

    async def providers(self) -> None:
        """Stripe: hosts finish onboarding. PayPal: payouts succeed, and say so by webhook."""
        stripe, paypal = self.stack.stripe, self.stack.paypal
        with stripe.lock:
            waiting = [a["id"] for a in stripe.accounts.values() if not a["payouts_enabled"]]
        for account in waiting:
            self.mailbag.post("stripe", *self.stripe_event("account.updated", stripe.enable_payouts(account)))
        with paypal.lock:
            pending = [
                b for b, v in paypal.payouts.items() if v["batch_header"]["batch_status"] in ("PENDING", "PROCESSING")
            ]
        for batch in pending:
            paypal.set_payout_status(batch, "SUCCESS")
            with paypal.lock:
                item = dict(paypal.payouts[batch]["items"][0])
            self.mailbag.post("paypal", *paypal.signed_event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", item))
            self.recorder.count("paypal payouts succeeded")

    async def time_machine(self) -> None:
        """Stays end: the confirmed bookings the soak made, confirmed 20 s ago or more, are completed
        by the booking job's own statement (as if their check-out had passed); payouts open."""
        ids = [b["booking"]["id"] for b in self.booked if not b.get("completed")]
        if not ids:
            return

        def complete() -> list[str]:
            with psycopg.connect(self.stack.cluster.owner_url, autocommit=True, connect_timeout=3) as conn:
                rows = conn.execute(
                    "update app.bookings set status = 'completed', completed_at = now()"
                    " where id = any(%s::uuid[]) and status = 'confirmed' and confirmed_at < now() - interval '20 seconds'"
                    " returning id::text",
                    (ids,),
                ).fetchall()
                return [r[0] for r in rows]

        try:
            done = set(await asyncio.to_thread(complete))
        except psycopg.Error:
            return  # the database is restarting: next time
        for b in self.booked:
            if b["booking"]["id"] in done:
                b["completed"] = True
        self.recorder.count("stays completed", len(done))

    # --- all at once -----------------------------------------------------------------------------

    def actors(self, scale: float = 1.0) -> list[asyncio.Task[Any]]:
        def n(k: int) -> int:
            return max(1, round(k * scale))

        plan: list[tuple[Callable[[], Any], tuple[float, float], int]] = [
            (self.browse, (0.0, 0.2), n(6)),
            (self.guest_flow, (0.2, 1.0), n(6)),
            (self.guest_reads, (0.2, 1.0), n(2)),
            (self.host_flow, (0.3, 1.0), n(2)),
            (self.sign_ups, (1.0, 3.0), 1),
            (self.reviewer, (1.0, 3.0), 1),
            (self.admin_flow, (1.0, 3.0), 1),
            (self.disputer, (4.0, 8.0), 1),
            (self.stream, (0.5, 2.0), n(3)),
            (self.providers, (2.0, 2.0), 1),
            (self.time_machine, (5.0, 5.0), 1),
        ]
        tasks = [asyncio.create_task(self.mailbag.run(), name="mailbag")]
        for actor, pause, count in plan:
            for i in range(count):
                tasks.append(asyncio.create_task(self.forever(actor, pause), name=f"{actor.__name__}-{i}"))
        return tasks
