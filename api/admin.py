"""The admin dashboard at /admin/: server-rendered HTML, no JavaScript, another client of the stored functions.

Every page reads and every form writes through the same `api.*` functions, grants and RLS as
the JSON API, as the signed-in admin (`db.call` with the admin's claims): the dashboard has no
privilege of its own. Signing in is `api.login` (the same credentials and throttling); the
session is the access token and the refresh token in two cookies (HttpOnly, SameSite=Strict,
Path=/admin, Secure over TLS), rotated through `api.token_refresh` when the access token
expires, and ended by `api.token_revoke`. Every form carries a CSRF token (an HMAC, with the
first JWT key, of a random seed kept in a third cookie that never rotates) and every POST
checks it and the Origin's host.
Pages send a strict Content-Security-Policy: no scripts at all; charts are inline SVG.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import orjson
import psycopg
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api import auth, db
from api.errors import Problem, from_database
from api.settings import Settings

HERE = Path(__file__).parent
ACCESS, REFRESH, CSRF = "nexus_admin", "nexus_admin_refresh", "nexus_admin_csrf"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_SIZE = 25

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates" / "admin"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class NotSignedIn(Exception):
    """No valid admin session: back to the sign-in page."""


class NotAdmin(Exception):
    """A valid session of someone who is not an admin: 403."""


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, access: str, refresh: str, csrf_seed: str | None = None) -> None:
    """The session cookies; `csrf_seed` (a random value made at sign-in) only when signing in: it never rotates."""
    cookies = [(ACCESS, access), (REFRESH, refresh)] + ([(CSRF, csrf_seed)] if csrf_seed else [])
    for name, value in cookies:
        response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure(request), path="/admin")


def clear_session(response: Response) -> None:
    for name in (ACCESS, REFRESH, CSRF):
        response.delete_cookie(name, path="/admin")


def csrf_token(cfg: Settings, seed: str) -> str:
    """The forms' token: an HMAC of the session's CSRF seed, so it survives token rotation."""
    secret = next(iter(cfg.jwt_keys.values()))
    return hmac.new(secret.encode(), b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """A POST from our own pages: no Origin (some browsers omit it) or one naming our host.
    The host only: behind a TLS proxy the scheme we see may differ from the browser's."""
    origin = request.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == request.headers.get("host", request.url.netloc)


class Session:
    """The signed-in admin of one request: their claims, and new tokens when they were rotated."""

    def __init__(self, claims: dict[str, Any], refresh: str, seed: str, rotated: tuple[str, str] | None = None) -> None:
        self.claims = claims
        self.refresh = refresh
        self.seed = seed
        self.rotated = rotated


async def session(request: Request) -> Session:
    cfg: Settings = request.app.state.settings
    access, refresh, seed = request.cookies.get(ACCESS), request.cookies.get(REFRESH), request.cookies.get(CSRF)
    if not access or not refresh or not seed:
        raise NotSignedIn
    try:
        claims = auth.verify(cfg, f"Bearer {access}")
        rotated = None
    except Problem:
        # Expired (or from a rotated key): rotate the pair once through the refresh token.
        try:
            outcome = orjson.loads(
                (
                    await db.call(
                        request.app.state.pool,
                        "anon",
                        None,
                        "select api.token_refresh(%s)::text",
                        [orjson.dumps({"refresh": refresh}).decode()],
                        False,
                    )
                )[0][0]
            )
        except psycopg.Error as exc:
            raise NotSignedIn from exc
        if not outcome.get("ok"):
            raise NotSignedIn from None
        access = auth.sign_outcome(cfg, outcome)
        refresh = outcome["refresh"]
        claims = auth.verify(cfg, f"Bearer {access}")
        rotated = (access, refresh)
    if claims is None:
        raise NotSignedIn
    if claims.get("role") != "admin":
        raise NotAdmin
    return Session(claims, refresh, seed, rotated)


async def call(request: Request, s: Session, sql: str, params: list[Any], write: bool = False) -> Any:
    """One stored function call as the signed-in admin; its JSON, parsed."""
    try:
        rows = await db.call(request.app.state.pool, "admin", s.claims, sql, params, read_only=not write)
    except psycopg.Error as exc:
        raise from_database(exc, anonymous=False) from exc
    value = rows[0][0] if rows else None
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def page(request: Request, s: Session, function: str, params: dict[str, str | None]) -> dict[str, Any]:
    """A paginated list function's page: {count, page, page_size, results, pages}."""
    args = {k: v for k, v in params.items() if v not in (None, "")}
    args.setdefault("page_size", request.query_params.get("page_size") or str(PAGE_SIZE))
    names = ", ".join(f"p_{k} => %s" for k in args)
    try:
        rows = await db.call(
            request.app.state.pool, "admin", s.claims, f"select * from {function}({names})", list(args.values()), True
        )
    except psycopg.Error as exc:
        raise from_database(exc, anonymous=False) from exc
    count, number, size, results = rows[0][:4]
    return {
        "count": count,
        "page": number,
        "pages": max(1, -(-count // size)),
        "results": orjson.loads(results),
    }


def render(request: Request, s: Session | None, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    cfg: Settings = request.app.state.settings
    query = dict(request.query_params)

    def link(**changes: Any) -> str:
        merged = {**query, **{k: v for k, v in changes.items()}}
        return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})

    html = templates.get_template(name).render(
        request=request,
        query=query,
        link=link,
        me=s.claims if s else None,
        csrf=csrf_token(cfg, s.seed) if s else "",
        flash=request.query_params.get("flash"),
        error=context.pop("error", request.query_params.get("error")),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def back(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(path + ("?" + urlencode(params) if params else ""), status_code=303)


Handler = Callable[[Request, Session], Awaitable[Response]]


def admin_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Sign-in required (else the sign-in page); POSTs need the CSRF token and a same-origin Origin."""

    async def endpoint(request: Request) -> Response:
        try:
            s = await session(request)
        except NotAdmin:
            return render(request, None, "login.html", status=403, error="This dashboard is for admins only.")
        except NotSignedIn:
            if request.method == "POST":
                return render(request, None, "login.html", status=403, error="Your session has ended; sign in again.")
            return back("/admin/login", next=request.url.path)
        response = await respond(request, s)
        if s.rotated:  # whatever the answer, the browser must keep the rotated pair
            set_session(response, request, *s.rotated)
        return response

    async def respond(request: Request, s: Session) -> Response:
        if request.method == "POST":
            form = await request.form()
            if not same_origin(request):
                return render(request, s, "error.html", status=403, error="Cross-site request refused.")
            if not hmac.compare_digest(str(form.get("csrf", "")), csrf_token(request.app.state.settings, s.seed)):
                return render(
                    request, s, "error.html", status=403, error="The form expired or was not ours; try again."
                )
        if any("\x00" in v for v in (*request.query_params.values(), *request.path_params.values())):
            return render(request, s, "error.html", status=400, error="Invalid characters in the request.")
        try:
            return await handler(request, s)
        except Problem as exc:
            if request.method == "POST":
                detail = exc.detail + "".join(f" {k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
                return back(request.headers.get("referer", request.url.path).split("?")[0], error=detail)
            return render(request, s, "error.html", status=exc.status, error=exc.detail)

    return endpoint


# --- signing in and out -----------------------------------------------------------------------


async def login(request: Request) -> Response:
    cfg: Settings = request.app.state.settings
    if request.method == "GET":
        return render(request, None, "login.html")
    form = await request.form()
    if not same_origin(request):  # nobody signs a browser into an account from another site
        return render(request, None, "login.html", status=403, error="Cross-site request refused.")
    body = orjson.dumps({"email": str(form.get("email", "")), "password": str(form.get("password", ""))}).decode()
    client = request.client.host if request.client else None
    try:
        rows = await db.call(
            request.app.state.pool, "anon", None, "select api.login(%s, %s)::text", [body, client], False
        )
    except psycopg.Error as exc:
        problem = from_database(exc, anonymous=True)
        return render(request, None, "login.html", status=problem.status, error=problem.detail)
    outcome = orjson.loads(rows[0][0])
    if not outcome.get("ok"):
        return render(request, None, "login.html", status=int(outcome["status"]), error=outcome["detail"])
    if outcome["role"] != "admin":
        await db.call(
            request.app.state.pool,
            "anon",
            None,
            "select api.token_revoke(%s)",
            [orjson.dumps({"refresh": outcome["refresh"]}).decode()],
            False,
        )
        return render(request, None, "login.html", status=403, error="This dashboard is for admins only.")
    access = auth.sign_outcome(cfg, outcome)
    target = str(form.get("next") or "/admin/")
    response = back(target if target.startswith("/admin/") else "/admin/")
    set_session(response, request, access, outcome["refresh"], secrets.token_urlsafe(32))
    return response


async def logout(request: Request, s: Session) -> Response:
    await db.call(
        request.app.state.pool,
        "anon",
        None,
        "select api.token_revoke(%s)",
        [orjson.dumps({"refresh": s.refresh}).decode()],
        False,
    )
    s.rotated = None
    response = back("/admin/login", flash="Signed out.")
    clear_session(response)
    return response


# --- pages ------------------------------------------------------------------------------------


def bars(series: list[dict[str, Any]], value: str) -> list[dict[str, Any]]:
    """Bar heights (0-100) for an inline SVG chart."""
    values = [float(p[value]) for p in series]
    top = max(values, default=0) or 1
    return [{**p, "height": round(100 * v / top, 1), "value": v} for p, v in zip(series, values, strict=True)]


async def overview(request: Request, s: Session) -> Response:
    data = await call(request, s, "select api.admin_overview()", [])
    revenue: dict[str, list[dict[str, Any]]] = {}
    for point in data["revenue_per_day"]:
        revenue.setdefault(point["currency"], []).append(point)
    return render(
        request,
        s,
        "overview.html",
        o=data,
        bookings_chart=bars(data["bookings_per_day"], "n"),
        revenue_charts={c: bars(points, "paid_in") for c, points in revenue.items()},
    )


async def users(request: Request, s: Session) -> Response:
    q = request.query_params
    listing = await page(request, s, "api.user_list", {k: q.get(k) for k in ("search", "role", "active", "page")})
    return render(request, s, "users.html", page=listing)


async def user(request: Request, s: Session) -> Response:
    uid = request.path_params["id"]
    if request.method == "POST":
        form = await request.form()
        action = form.get("action")
        if action == "end-sessions":
            await call(request, s, "select api.user_sessions_end(%s)", [uid], write=True)
        else:
            body = {"deactivate": {"active": False}, "reactivate": {"active": True}, "role": {"role": form.get("role")}}
            if action not in body:
                raise Problem(400, "Unknown action.")
            await call(
                request,
                s,
                "select api.user_update(%s, %s)",
                [uid, orjson.dumps(body[str(action)]).decode()],
                write=True,
            )
        return back(f"/admin/users/{uid}", flash="Saved.")
    found = await call(request, s, "select api.admin_user(%s)", [uid])
    if found is None:
        raise Problem(404, "No such user.")
    return render(request, s, "user.html", u=found)


async def listings(request: Request, s: Session) -> Response:
    q = request.query_params
    params = {k: q.get(k) for k in ("search", "host", "category", "published", "min_price", "max_price", "page")}
    return render(request, s, "listings.html", page=await page(request, s, "api.admin_products", params))


async def listing(request: Request, s: Session) -> Response:
    pid = request.path_params["id"]
    form = await request.form()
    action = form.get("action")
    if action in ("publish", "unpublish"):
        body = orjson.dumps({"published": action == "publish"}).decode()
        await call(request, s, "select api.product_update(%s, %s)", [pid, body], write=True)
    elif action == "delete":
        await call(request, s, "select api.product_delete(%s)", [pid], write=True)
    else:
        raise Problem(400, "Unknown action.")
    return back("/admin/listings", flash=f"Listing {action}ed." if action != "delete" else "Listing deleted.")


async def bookings(request: Request, s: Session) -> Response:
    q = request.query_params
    params = {k: q.get(k) for k in ("status", "product", "guest", "host", "from", "to", "page")}
    return render(request, s, "bookings.html", page=await page(request, s, "api.booking_list", params))


async def booking(request: Request, s: Session) -> Response:
    bid = request.path_params["id"]
    if request.method == "POST":
        form = await request.form()
        body = orjson.dumps({"reason": str(form.get("reason") or "") or None}).decode()
        result = await call(request, s, "select api.booking_cancel(%s, %s)", [bid, body], write=True)
        return back(f"/admin/bookings/{bid}", flash=f"Canceled; refund {result['refund_amount']} {result['currency']}.")
    return render(request, s, "booking.html", b=await call(request, s, "select api.admin_booking(%s)", [bid]))


async def payments(request: Request, s: Session) -> Response:
    q = request.query_params
    params = {k: q.get(k) for k in ("status", "provider", "booking", "currency", "from", "to", "page")}
    payouts = await page(
        request, s, "api.payout_list", {"status": q.get("payout_status"), "page": q.get("payout_page")}
    )
    return render(request, s, "payments.html", page=await page(request, s, "api.payment_list", params), payouts=payouts)


async def payment(request: Request, s: Session) -> Response:
    pid = request.path_params["id"]
    if request.method == "POST":
        form = await request.form()
        body = {
            "reason": str(form.get("reason") or ""),
            **({"amount": str(form["amount"])} if form.get("amount") else {}),
        }
        refund = await call(
            request, s, "select api.payment_refund(%s, %s)", [pid, orjson.dumps(body).decode()], write=True
        )
        return back(
            f"/admin/payments/{pid}", flash=f"Refund of {refund['amount']} {refund['currency']} sent to the provider."
        )
    return render(request, s, "payment.html", p=await call(request, s, "select api.admin_payment(%s)", [pid]))


async def payout(request: Request, s: Session) -> Response:
    await call(request, s, "select api.payout_retry(%s)", [request.path_params["id"]], write=True)
    return back("/admin/payments", flash="Payout scheduled again.")


async def moderation(request: Request, s: Session) -> Response:
    q = request.query_params
    reports = await page(request, s, "api.message_report_list", {"page": q.get("reports_page")})
    reviews = await page(request, s, "api.review_list", {"hidden": q.get("hidden"), "page": q.get("page")})
    return render(request, s, "moderation.html", reports=reports, reviews=reviews)


async def review(request: Request, s: Session) -> Response:
    rid = request.path_params["id"]
    form = await request.form()
    if form.get("action") == "hide":
        body = orjson.dumps({"reason": str(form.get("reason") or "")}).decode()
        await call(request, s, "select api.review_hide(%s, %s)", [rid, body], write=True)
    elif form.get("action") == "unhide":
        await call(request, s, "select api.review_unhide(%s)", [rid], write=True)
    else:
        raise Problem(400, "Unknown action.")
    return back("/admin/moderation", flash="Review updated.")


async def audit(request: Request, s: Session) -> Response:
    q = request.query_params
    params = {k: q.get(k) for k in ("actor", "table", "row", "page")}
    return render(request, s, "audit.html", page=await page(request, s, "api.audit_list", params))


async def reconciliation(request: Request, s: Session) -> Response:
    if request.method == "POST":
        await call(request, s, "select api.reconciliation_run(%s)", ["{}"], write=True)
        return back("/admin/reconciliation", flash="The reconciliation runs now; reload in a minute.")
    q = request.query_params
    state = q.get("state", "open")
    differences = await page(
        request,
        s,
        "api.reconciliation_list",
        {"state": None if state == "all" else state, "provider": q.get("provider"), "page": q.get("page")},
    )
    runs = await page(request, s, "api.reconciliation_runs", {"page_size": "10"})
    return render(request, s, "reconciliation.html", page=differences, runs=runs)


async def difference(request: Request, s: Session) -> Response:
    form = await request.form()
    body = orjson.dumps({"note": str(form.get("note") or "")}).decode()
    await call(request, s, "select api.reconciliation_resolve(%s, %s)", [request.path_params["id"], body], write=True)
    return back("/admin/reconciliation", flash="Difference resolved.")


async def system(request: Request, s: Session) -> Response:
    return render(request, s, "system.html", sys=await call(request, s, "select api.admin_system()", []))


def routes() -> list[Route | Mount]:
    return [
        Route("/admin/login", login, methods=["GET", "POST"]),
        Route("/admin/logout", admin_page(logout), methods=["POST"]),
        Route("/admin/", admin_page(overview), methods=["GET"]),
        Route("/admin/users", admin_page(users), methods=["GET"]),
        Route("/admin/users/{id}", admin_page(user), methods=["GET", "POST"]),
        Route("/admin/listings", admin_page(listings), methods=["GET"]),
        Route("/admin/listings/{id}", admin_page(listing), methods=["POST"]),
        Route("/admin/bookings", admin_page(bookings), methods=["GET"]),
        Route("/admin/bookings/{id}", admin_page(booking), methods=["GET", "POST"]),
        Route("/admin/payments", admin_page(payments), methods=["GET"]),
        Route("/admin/payments/{id}", admin_page(payment), methods=["GET", "POST"]),
        Route("/admin/payouts/{id}", admin_page(payout), methods=["POST"]),
        Route("/admin/moderation", admin_page(moderation), methods=["GET"]),
        Route("/admin/reviews/{id}", admin_page(review), methods=["POST"]),
        Route("/admin/audit", admin_page(audit), methods=["GET"]),
        Route("/admin/system", admin_page(system), methods=["GET"]),
        Route("/admin/reconciliation", admin_page(reconciliation), methods=["GET", "POST"]),
        Route("/admin/reconciliation/{id}", admin_page(difference), methods=["POST"]),
        Mount("/admin/static", StaticFiles(directory=HERE / "static"), name="admin-static"),
    ]
