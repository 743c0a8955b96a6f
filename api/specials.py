"""The few routes that need a Python step around their one function call.

Each is a `Special`: the route table names it (`Route(..., special=specials.upload)`) and
the endpoint awaits it with the route, the request, the parsed arguments, and `execute`,
which calls the route's function with (possibly changed) arguments.

- `issue_tokens`: the function decides (password check, throttling, refresh rotation)
  and returns an outcome; Python only signs the access token. A refusal is returned,
  not raised, so what it records (a failed attempt, a revoked token family) commits.
- `upload`: Python checks the file (type by content, size), decodes it and stores it
  re-encoded under a generated name in the media storage (api/images.py, api/storage.py),
  and passes its path, size and colour to the function; if the function refuses, the file
  is removed again, so a failed request leaves nothing behind. (Deleting a photo needs no
  Python: the row's trigger defers the job that removes its files.)
- `oauth_login`, `oauth_callback`: the OAuth protocol steps around the flow's functions
  (api/oauth.py).
- `pay`: the function writes the payment and its provider job; Python then makes the same
  idempotent provider call at once (api/payments.py), so the guest usually gets the client
  secret in this response; if the provider fails, the job retries and the guest reads again.
- `capture`: the function checks the guest and defers the capture job; Python captures the
  PayPal order at once and reports the provider's answer (api.payment_report).
- `payout_account`: the function records the host's choice; for Stripe, Python creates the
  Connect account at once (or the job does) and returns its onboarding URL.
- `stream`: Server-Sent Events of the caller's notifications; the function reads what is new,
  LISTEN/NOTIFY (api/events.py) says when to read again.
- `webhook`: Python verifies the provider's signature over the raw body (Stripe's HMAC,
  PayPal's verify call); the event is recorded once as api_internal (the worker applies it).
- `calendar`: the function returns a listing's taken dates as JSON; Python writes them as an
  iCalendar file (text/calendar, api/calendars.py), with an ETag for If-None-Match.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from api import auth, calendars, db, events, images, metrics, oauth, payments, storage
from api.auth import sign_outcome
from api.errors import Problem, from_database
from api.settings import Settings

if TYPE_CHECKING:
    from api.routes import Route

log = logging.getLogger("nexus.payments")

Execute = Callable[[dict[str, Any]], Awaitable[list[tuple[Any, ...]]]]
Special = Callable[["Route", Request, dict[str, Any], Execute], Awaitable[Response]]


def client_address(request: Request) -> str | None:
    """The client's address: the peer, or, when the peer is a trusted proxy (TRUSTED_PROXIES), the
    address it names in X-Forwarded-For (uvicorn's ProxyHeadersMiddleware, api/app.py, put it in the
    scope). Never a client-chosen value otherwise."""
    return request.client.host if request.client else None


def header_value(request: Request, name: str) -> str | None:
    """Request metadata a function may receive: the client address, the API's public address
    (PUBLIC_URL, for URLs a client keeps), or a request header."""
    if name == "client_addr":
        return client_address(request)
    if name == "public_url":
        settings: Settings = request.app.state.settings
        return settings.base_url()
    return request.headers.get(name.replace("_", "-"))


def tokens_response(cfg: Settings, outcome: bytes) -> Response:
    """Turn a sign-in outcome from SQL into the token pair (or the problem it names)."""
    result = orjson.loads(outcome)
    if not result.get("ok"):
        if result["status"] == 429:
            metrics.refused("sign_in")
        headers = {"Retry-After": str(result["retry_after"])} if result.get("retry_after") else None
        raise Problem(int(result["status"]), result["detail"], result.get("errors"), headers)
    access = sign_outcome(cfg, result)
    body = {
        "access": access,
        "refresh": result["refresh"],
        "token_type": "Bearer",
        "expires_in": cfg.access_ttl,
        "refresh_expires_in": result.get("refresh_expires_in"),
        "user": {"id": result["user_id"], "role": result["role"]},
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def read_upload(request: Request, cfg: Settings) -> bytes:
    """The multipart `file` field's bytes: 415, 413 or 400 naming `file` unless it is a JPEG, PNG or
    WebP by its first bytes, not empty and within MAX_UPLOAD_BYTES."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise Problem(415, "Send the photo as multipart/form-data with the file in a field named `file`.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cfg.max_upload_bytes + 64_000:
        raise Problem(413, f"The file is larger than {cfg.max_upload_bytes} bytes.")
    try:
        form = await request.form(max_files=1, max_fields=5, max_part_size=cfg.max_upload_bytes + 1)
    except Exception as exc:  # the multipart parser's errors are client mistakes
        raise Problem(400, "The multipart body could not be read.", {"file": ["Could not be read."]}) from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(400, "A file is required.", {"file": ["This field is required."]})
        data = await upload.read(cfg.max_upload_bytes + 1)
        if len(data) > cfg.max_upload_bytes:
            raise Problem(413, f"The file is larger than {cfg.max_upload_bytes} bytes.", {"file": ["Too large."]})
        if not data:
            raise Problem(400, "The file is empty.", {"file": ["The file is empty."]})
        if not images.looks_like_one(data[:16]):
            raise Problem(
                415, "Only JPEG, PNG and WebP images are accepted.", {"file": ["Not a JPEG, PNG or WebP image."]}
            )
    finally:
        await form.close()
    return data


async def upload(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Decode the multipart `file` and store it re-encoded under a new name in the media storage, then
    call the function with its path, size and colour. If the function refuses, the stored file is
    removed again: a failed request leaves neither a row nor a file. The worker makes the variants."""
    cfg: Settings = request.app.state.settings
    store: storage.Storage = request.app.state.storage
    data = await read_upload(request, cfg)
    # Decoded whole and encoded again, off the event loop: only the pixels are kept (api/images.py).
    photo = await asyncio.to_thread(images.clean, data, cfg.max_image_pixels)
    name = uuid.uuid4().hex
    path = f"{name[:2]}/{name}.{photo.ext}"
    try:
        await asyncio.to_thread(store.put, path, photo.data)
    except storage.StorageUnavailable as exc:
        logging.getLogger("nexus.media").warning("media storage unavailable: %s", exc)
        raise Problem(
            503,
            "Photos cannot be stored right now; try again shortly.",
            {"file": ["The media storage did not answer; nothing was stored."]},
            headers={"Retry-After": "5"},
        ) from exc
    args = {
        **args,
        "path": path,
        "content_type": photo.content_type,
        "size_bytes": len(photo.data),
        "width": photo.width,
        "height": photo.height,
        "placeholder": photo.placeholder,
    }
    try:
        rows = await execute(args)
    except BaseException:
        # Nothing refers to it: the row was not written. If this fails too, the sweep removes it in a day.
        with contextlib.suppress(storage.StorageUnavailable):
            await asyncio.to_thread(store.delete_photo, path)
        raise
    return Response(rows[0][0], status_code=route.status, media_type="application/json")


async def issue_tokens(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """The function decides (password, refresh rotation, becoming a host); Python signs the access token."""
    rows = await execute(args)
    return tokens_response(request.app.state.settings, rows[0][0])


async def oauth_login(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Redirect to the provider (api/oauth.py calls api.oauth_begin as anon itself)."""
    return await oauth.login(request, args)


async def oauth_callback(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Finish the provider's flow (api/oauth.py), then hand out our tokens."""
    outcome = await oauth.callback(request, args)
    return oauth.signed_in(tokens_response(request.app.state.settings, outcome))


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, 413 past `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The body is larger than {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def as_caller(request: Request, sql: str, params: list[Any]) -> str:
    """Read something back as the signed-in caller (their role, their rows, their secrets)."""
    cfg: Settings = request.app.state.settings
    claims = auth.verify(cfg, request.headers.get("authorization"))
    assert claims is not None
    try:
        rows = await db.call(request.app.state.pool, claims["role"], claims, sql, params, True)
    except psycopg.Error as exc:
        raise from_database(exc, anonymous=False) from exc
    return rows[0][0]  # type: ignore[no-any-return]


async def pay(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Write the payment (and its job), then create it at the provider now if it can be done now."""
    cfg: Settings = request.app.state.settings
    provider = orjson.loads(args["body"]).get("provider")
    gateway = payments.gateway(cfg, provider) if provider in ("stripe", "paypal") else None  # else SQL says 400
    payment = orjson.loads((await execute(args))[0][0])
    if gateway and payment["provider"] == gateway.name and payment["status"] == "requires_payment":
        if not payment["provider_payment_id"]:
            try:
                created = await run_in_threadpool(gateway.create, payment)
            except payments.ProviderError as exc:
                log.warning("payment %s: provider call failed, the worker retries: %s", payment["id"], exc)
            else:
                await db.call_as(
                    request.app.state.pool,
                    "api_internal",
                    "select api.payment_attach(%s::uuid, %s, %s, %s)",
                    [payment["id"], created.id, created.client_secret, created.approve_url],
                )
                # Read it back as the guest (the client secret is theirs alone).
                body = await as_caller(request, "select api.payment_get(%s)", [payment["id"]])
                return Response(body, status_code=route.status, media_type="application/json")
    return Response(orjson.dumps(payment), status_code=route.status, media_type="application/json")


async def capture(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """The function checks the guest and defers the capture job; Python captures at once and reports it."""
    payment = orjson.loads((await execute(args))[0][0])
    if payment["status"] in ("requires_payment", "processing"):
        gateway = payments.gateway(request.app.state.settings, payment["provider"])
        try:
            current = await run_in_threadpool(gateway.capture, payment["provider_payment_id"], payment["id"])
        except payments.ProviderError as exc:
            log.warning("payment %s: capture failed, the worker retries: %s", payment["id"], exc)
        else:
            await db.call_as(
                request.app.state.pool,
                "api_internal",
                "select api.payment_report(%s, %s, %s, %s, %s, %s)",
                [
                    payment["provider"],
                    current.id,
                    current.status,
                    current.amount_minor,
                    current.currency,
                    current.reason,
                ],
            )
    body = await as_caller(request, "select api.payment_get(%s)", [payment["id"]])
    return Response(body, status_code=route.status, media_type="application/json")


async def payout_account(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Set the host's payout account; for Stripe, create the Connect account now and return its onboarding URL."""
    account = orjson.loads((await execute(args))[0][0])
    if account["provider"] == "stripe":
        cfg: Settings = request.app.state.settings
        claims = auth.verify(cfg, request.headers.get("authorization"))
        assert claims is not None
        gateway = payments.gateway(cfg, "stripe")
        host = {"id": claims["sub"], "provider_account_id": account["provider_account_id"]}
        try:
            created = await run_in_threadpool(gateway.account, host)
        except payments.ProviderError as exc:
            log.warning("payout account of %s: provider call failed, the worker retries: %s", claims["sub"], exc)
        else:
            account = orjson.loads(
                await db.call_as(
                    request.app.state.pool,
                    "api_internal",
                    "select api.payout_account_attach(%s::uuid, %s, %s)::text",
                    [claims["sub"], created.id, created.status],
                )
            )
            account["onboarding_url"] = created.onboarding_url
    return Response(orjson.dumps(account), status_code=route.status, media_type="application/json")


async def webhook(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Verify a provider's webhook over the raw body, then record the event once (api.webhook_receive).

    The provider is the last part of the path (/api/webhooks/stripe/, /api/webhooks/paypal/).
    """
    cfg: Settings = request.app.state.settings
    provider = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    gateway = payments.gateway(cfg, provider)
    payload = await read_body(request, cfg.max_body_bytes)
    event = await run_in_threadpool(gateway.event, payload, request.headers)
    result = await db.call_as(
        request.app.state.pool,
        "api_internal",
        "select api.webhook_receive(%s, %s, %s, %s, %s)",
        [provider, event.id, event.type, event.kind, event.object_id],
    )
    return Response(result, media_type="application/json")


async def stream(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """Server-Sent Events of the caller's notifications (api.notification_since), woken by LISTEN/NOTIFY.

    Replays what came after Last-Event-ID first; then each notification as it commits, with a
    heartbeat comment when nothing happens. Each read borrows a pool connection for one call;
    waiting holds none (api/events.py). The function reads a little behind the cursor (late
    commits); what this stream already sent is dropped here. The stream ends when the access
    token expires: the client reconnects with a fresh token and its Last-Event-ID.

    A process holds at most STREAMS_PER_USER streams of one user and STREAMS_MAX in all: past
    either, 429 with Retry-After before anything is read (a stream's place is given back
    whenever it ends: events.EventStream).
    """
    cfg: Settings = request.app.state.settings
    claims = auth.verify(cfg, request.headers.get("authorization"))
    assert claims is not None
    last = request.headers.get("last-event-id") or None
    broker: events.Broker = request.app.state.broker
    # Listen first, then read: a notification committed in between still wakes us.
    try:
        queue = await broker.subscribe(claims["sub"], cfg.streams_per_user, cfg.streams_max)
    except events.StreamsFull as full:
        metrics.refused("streams")
        detail = (
            f"You have {full.limit} live notification streams open, the most allowed; close one first."
            if full.per_user
            else "This server holds as many live notification streams as it can; try again shortly."
        )
        raise Problem(429, detail, headers={"Retry-After": str(events.STREAMS_RETRY_AFTER)}) from full
    try:
        first = orjson.loads((await execute({"after": last}))[0][0])  # a bad Last-Event-ID is a 400 here
    except BaseException:
        broker.unsubscribe(claims["sub"], queue)
        raise

    async def frames() -> AsyncIterator[bytes]:
        nonlocal last
        batch = first
        sent: set[int] = {int(last)} if last else set()
        try:
            yield b"retry: 2000\n\n"
            while True:
                fresh = [n for n in batch if n["seq"] not in sent]
                for note in fresh:
                    sent.add(note["seq"])
                    yield b"id: %d\nevent: notification\ndata: %s\n\n" % (note["seq"], orjson.dumps(note))
                if sent:
                    last = str(max(sent))
                    sent = {s for s in sent if s > max(sent) - 200}  # enough to drop the re-read tail
                if len(fresh) < 100:  # caught up: wait for news
                    if time.time() >= claims["exp"]:
                        return
                    try:
                        await asyncio.wait_for(queue.get(), timeout=cfg.sse_heartbeat_seconds)
                    except TimeoutError:
                        yield b": heartbeat\n\n"
                        batch = []
                        continue
                batch = orjson.loads((await execute({"after": last}))[0][0])
        finally:
            broker.unsubscribe(claims["sub"], queue)

    return events.EventStream(
        frames(),
        release=lambda: broker.unsubscribe(claims["sub"], queue),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def calendar(route: Route, request: Request, args: dict[str, Any], execute: Execute) -> Response:
    """A listing's calendar as iCalendar, written by api/calendars.py from api.calendar_export's JSON.

    The ETag is a hash of that JSON, so a platform that polls gets its 304 without a file being
    written, and a file once written is kept (calendars.Rendered) until its calendar changes.
    Written off the event loop. The URL is a secret shared with other platforms: no shared cache
    keeps the answer (private), and every use revalidates it (no-cache).
    """
    raw: bytes = (await execute(args))[0][0]
    tag = '"' + hashlib.blake2b(raw, digest_size=16).hexdigest() + '"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = RENDERED.get(tag)
    if body is None:
        body = await asyncio.to_thread(calendars.render, orjson.loads(raw))
        RENDERED.put(tag, body)
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


RENDERED = calendars.Rendered()  # this process's exports written last, by ETag
