"""OAuth 2.0 / OpenID Connect sign-in with Google and Facebook: the protocol, and nothing else.

`GET /api/auth/{provider}/login` starts an authorization-code flow with PKCE (S256) and a
random `state`, remembered by `api.oauth_begin`, and redirects to the provider.
`GET /api/auth/{provider}/callback` consumes the state (`api.oauth_complete`), exchanges the
code (with the PKCE verifier and our client secret), learns who the user is, and hands that to
`api.oauth_sign_in`, which decides (known identity, link by verified email, or new guest) and
returns the same outcome as the password login; `specials.tokens_response` signs our tokens.

- Google (any OIDC provider): endpoints from the discovery document; the ID token is verified
  (RS256 only, against the provider's JWKS; iss, aud, exp, iat, nonce). The nonce is derived
  from the PKCE verifier (`nonce_for`), so the stored flow binds it without a column of its own.
- Facebook: its token endpoint, then the Graph `me` endpoint with `appsecret_proof`.
- The state is also set in a short-lived HttpOnly cookie and must come back with the callback
  (RFC 6749 §10.12): a code obtained by someone else cannot sign this browser in.

Providers come from settings (OAUTH_GOOGLE_*, OAUTH_FACEBOOK_*, OAUTH_REDIRECT_BASE); a
provider without a client id is not configured (404). Tests replace them by setting
`app.state.oauth` to an `OAuthSettings` pointing at a stand-in server on loopback.
Provider failures are problems too: refusals 400/401, unreachable 503, nonsense 502.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx2
import jwt
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api import db
from api.errors import Problem
from api.settings import config

log = logging.getLogger("nexus.oauth")

STATE_COOKIE = "nexus_oauth_state"
TIMEOUT = httpx2.Timeout(10.0)
METADATA_TTL = 3600.0  # discovery documents and JWKS are cached this long (per URL)
CLOCK_SKEW = 60  # seconds of leeway on ID-token exp/iat
BAD_STATE = "Invalid or expired state."
REFUSED = "The sign-in provider did not accept the sign-in."
BAD_ID_TOKEN = "The sign-in provider's ID token is not valid."


@dataclass(frozen=True)
class Provider:
    """One provider's client registration and endpoints (OIDC by discovery, or plain OAuth 2.0)."""

    name: str
    client_id: str
    client_secret: str
    scope: str
    discovery_url: str = ""  # OIDC: authorization/token endpoints, issuer and JWKS come from here
    authorize_url: str = ""  # plain OAuth 2.0 (Facebook)
    token_url: str = ""
    me_url: str = ""  # Facebook's Graph `me`, with the fields to return

    @property
    def oidc(self) -> bool:
        return bool(self.discovery_url)


@dataclass(frozen=True)
class OAuthSettings:
    providers: dict[str, Provider] = field(default_factory=dict)
    redirect_base: str = ""  # e.g. https://api.example.com; empty: PUBLIC_URL (never the request's Host)


def from_config() -> OAuthSettings:
    """Providers from the environment / .env; one without a client id is left out (not configured)."""
    providers = [
        Provider(
            name="google",
            client_id=config("OAUTH_GOOGLE_CLIENT_ID", default=""),
            client_secret=config("OAUTH_GOOGLE_CLIENT_SECRET", default=""),
            scope="openid email profile",
            discovery_url=config(
                "OAUTH_GOOGLE_DISCOVERY_URL", default="https://accounts.google.com/.well-known/openid-configuration"
            ),
        ),
        Provider(
            name="facebook",
            client_id=config("OAUTH_FACEBOOK_CLIENT_ID", default=""),
            client_secret=config("OAUTH_FACEBOOK_CLIENT_SECRET", default=""),
            scope="email public_profile",
            authorize_url=config("OAUTH_FACEBOOK_AUTHORIZE_URL", default="https://www.facebook.com/v19.0/dialog/oauth"),
            token_url=config("OAUTH_FACEBOOK_TOKEN_URL", default="https://graph.facebook.com/v19.0/oauth/access_token"),
            me_url=config(
                "OAUTH_FACEBOOK_ME_URL",
                default="https://graph.facebook.com/me?fields=id,name,email,first_name,last_name",
            ),
        ),
    ]
    return OAuthSettings(
        providers={p.name: p for p in providers if p.client_id},
        redirect_base=config("OAUTH_REDIRECT_BASE", default="").rstrip("/"),
    )


DEFAULT = from_config()


def current(request: Request) -> OAuthSettings:
    configured: OAuthSettings | None = getattr(request.app.state, "oauth", None)
    return configured or DEFAULT


def provider_for(settings: OAuthSettings, name: str) -> Provider:
    found = settings.providers.get(name)
    if found is None or not found.client_id:
        raise Problem(404, "No such sign-in provider is configured.")
    return found


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def challenge_for(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier))."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def nonce_for(verifier: str) -> str:
    """The OIDC nonce of a flow, derived from its (secret, stored) verifier; distinct from the challenge."""
    return b64url(hashlib.sha256(b"nexus-oidc-nonce:" + verifier.encode("ascii")).digest())


def callback_uri(request: Request, settings: OAuthSettings, name: str) -> str:
    base = settings.redirect_base or request.app.state.settings.base_url()
    return f"{base}/api/auth/{name}/callback"


def with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


# --- talking to providers -----------------------------------------------------------------

_cache: dict[str, tuple[float, dict[str, Any]]] = {}


async def fetch(http: httpx2.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx2.Response:
    """One request to a provider; unreachable (connection, timeout) is a 503."""
    try:
        return await http.request(method, url, **kwargs)
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        log.warning("oauth provider unreachable: %s %s: %s", method, url.split("?")[0], type(exc).__name__)
        raise Problem(503, "The sign-in provider is not reachable.", headers={"Retry-After": "5"}) from exc


def json_object(response: httpx2.Response, what: str) -> dict[str, Any]:
    """A provider's JSON object reply; anything else is a 502."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        log.warning("oauth provider sent a non-JSON %s (HTTP %d)", what, response.status_code)
        raise Problem(502, "The sign-in provider sent an invalid response.")
    return data


async def cached_json(http: httpx2.AsyncClient, url: str, what: str, refresh: bool = False) -> dict[str, Any]:
    """Discovery documents and JWKS, cached per URL for METADATA_TTL."""
    hit = _cache.get(url)
    if hit and not refresh and hit[0] > time.monotonic():
        return hit[1]
    response = await fetch(http, "GET", url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        log.warning("oauth %s: HTTP %d from %s", what, response.status_code, url)
        raise Problem(502, "The sign-in provider sent an invalid response.")
    data = json_object(response, what)
    _cache[url] = (time.monotonic() + METADATA_TTL, data)
    return data


async def discovery(http: httpx2.AsyncClient, p: Provider) -> dict[str, Any]:
    meta = await cached_json(http, p.discovery_url, "discovery document")
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str):
            raise Problem(502, "The sign-in provider sent an invalid response.")
    return meta


async def exchange_code(
    http: httpx2.AsyncClient, p: Provider, token_url: str, code: str, flow: dict[str, str]
) -> dict[str, Any]:
    """The authorization code (+ PKCE verifier, client secret) for the provider's tokens."""
    response = await fetch(
        http,
        "POST",
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow["redirect_uri"],
            "client_id": p.client_id,
            "client_secret": p.client_secret,
            "code_verifier": flow["code_verifier"],
        },
        headers={"Accept": "application/json"},
    )
    if response.status_code in (400, 401, 403):
        log.info("oauth %s: code exchange refused (HTTP %d)", p.name, response.status_code)
        raise Problem(401, REFUSED)
    if response.status_code != 200:
        log.warning("oauth %s: code exchange failed (HTTP %d)", p.name, response.status_code)
        raise Problem(502, "The sign-in provider sent an invalid response.")
    tokens = json_object(response, "token response")
    if not isinstance(tokens.get("access_token"), str):
        raise Problem(502, "The sign-in provider sent an invalid response.")
    return tokens


async def signing_key(http: httpx2.AsyncClient, jwks_uri: str, kid: str | None) -> jwt.PyJWK:
    """The provider's key for `kid`; an unknown kid refetches the JWKS once (key rotation)."""
    for refresh in (False, True):
        try:
            keys = jwt.PyJWKSet.from_dict(await cached_json(http, jwks_uri, "JWKS", refresh=refresh)).keys
        except jwt.PyJWTError as exc:
            raise Problem(502, "The sign-in provider sent an invalid response.") from exc
        usable = [k for k in keys if k.public_key_use in (None, "sig")]
        matches = [k for k in usable if k.key_id == kid] if kid else usable[:1] if len(usable) == 1 else []
        if matches:
            return matches[0]
    raise Problem(401, BAD_ID_TOKEN)


async def verify_id_token(
    http: httpx2.AsyncClient, p: Provider, meta: dict[str, Any], id_token: object, nonce: str
) -> dict[str, Any]:
    """An OIDC ID token's claims once its signature (RS256, the provider's JWKS) and claims check out."""
    if not isinstance(id_token, str):
        raise Problem(502, "The sign-in provider sent an invalid response.")
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise Problem(401, BAD_ID_TOKEN) from exc
    if header.get("alg") != "RS256":
        raise Problem(401, BAD_ID_TOKEN)
    kid = header.get("kid")
    key = await signing_key(http, meta["jwks_uri"], kid if isinstance(kid, str) else None)
    issuer: str = meta["issuer"]
    # Google documents both spellings of its issuer in ID tokens.
    issuers = [issuer, issuer.removeprefix("https://")]
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=p.client_id,
            issuer=issuers,
            leeway=CLOCK_SKEW,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        log.info("oauth %s: ID token rejected: %s", p.name, type(exc).__name__)
        raise Problem(401, BAD_ID_TOKEN) from exc
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != p.client_id:
        raise Problem(401, BAD_ID_TOKEN)
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise Problem(401, BAD_ID_TOKEN)
    return claims


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def oidc_identity(http: httpx2.AsyncClient, p: Provider, code: str, flow: dict[str, str]) -> dict[str, Any]:
    meta = await discovery(http, p)
    tokens = await exchange_code(http, p, meta["token_endpoint"], code, flow)
    claims = await verify_id_token(http, p, meta, tokens.get("id_token"), nonce_for(flow["code_verifier"]))
    verified = claims.get("email_verified")
    return {
        "subject": str(claims["sub"]),
        "email": text(claims.get("email")),
        "email_verified": verified is True or verified == "true",
        "first_name": text(claims.get("given_name")),
        "last_name": text(claims.get("family_name")),
    }


async def facebook_identity(http: httpx2.AsyncClient, p: Provider, code: str, flow: dict[str, str]) -> dict[str, Any]:
    tokens = await exchange_code(http, p, p.token_url, code, flow)
    access = tokens["access_token"]
    proof = hmac.new(p.client_secret.encode(), access.encode(), hashlib.sha256).hexdigest()
    url = httpx2.URL(p.me_url).copy_merge_params({"access_token": access, "appsecret_proof": proof})
    response = await fetch(http, "GET", str(url), headers={"Accept": "application/json"})
    if response.status_code in (400, 401, 403):
        raise Problem(401, REFUSED)
    if response.status_code != 200:
        log.warning("oauth %s: me endpoint failed (HTTP %d)", p.name, response.status_code)
        raise Problem(502, "The sign-in provider sent an invalid response.")
    me = json_object(response, "profile")
    if not isinstance(me.get("id"), (str, int)) or me.get("id") == "":
        raise Problem(502, "The sign-in provider sent an invalid response.")
    return {
        "subject": str(me["id"]),
        "email": text(me.get("email")),
        "email_verified": True,  # Facebook returns only confirmed addresses
        "first_name": text(me.get("first_name")),
        "last_name": text(me.get("last_name")),
    }


# --- the two routes -----------------------------------------------------------------------


async def login(request: Request, args: dict[str, Any]) -> Response:
    """Redirect to the provider's consent page, with state, PKCE challenge and (OIDC) nonce."""
    settings = current(request)
    p = provider_for(settings, str(args["provider"]))
    if p.oidc:
        async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
            authorize_url = (await discovery(http, p))["authorization_endpoint"]
    else:
        authorize_url = p.authorize_url
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    redirect_uri = callback_uri(request, settings, p.name)
    params = {
        "response_type": "code",
        "client_id": p.client_id,
        "redirect_uri": redirect_uri,
        "scope": p.scope,
        "state": state,
        "code_challenge": challenge_for(verifier),
        "code_challenge_method": "S256",
    }
    if p.oidc:
        params["nonce"] = nonce_for(verifier)
    # The flow's lifetime is a database setting (auth_settings.oauth_flow_seconds); the cookie lives as long.
    flow = orjson.loads(
        await db.call_as(
            request.app.state.pool,
            "anon",
            "select api.oauth_begin(%s, %s, %s, %s)",
            [p.name, state, verifier, redirect_uri],
        )
    )
    response = RedirectResponse(with_query(authorize_url, params), status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(flow["expires_in"]),
        path="/api/auth/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )
    return response


async def callback(request: Request, args: dict[str, Any]) -> bytes:
    """The provider sent the browser back: the sign-in outcome of api.oauth_sign_in (JSON bytes)."""
    p = provider_for(current(request), str(args["provider"]))
    state = args.get("state") or ""
    if args.get("error"):
        if state:  # end the flow; it cannot succeed any more
            try:
                await db.call_as(
                    request.app.state.pool, "api_internal", "select api.oauth_complete(%s, %s)", [p.name, state]
                )
            except Problem:
                pass
        raise Problem(400, "Sign-in was cancelled or refused at the provider.")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not cookie or not hmac.compare_digest(cookie.encode(), state.encode()):
        raise Problem(400, BAD_STATE, {"state": [BAD_STATE]})
    flow: dict[str, str] = orjson.loads(
        await db.call_as(request.app.state.pool, "api_internal", "select api.oauth_complete(%s, %s)", [p.name, state])
    )
    code = args.get("code")
    if not code:
        raise Problem(400, "The provider sent no authorization code.", {"code": ["This field is required."]})
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        if p.oidc:
            who = await oidc_identity(http, p, code, flow)
        else:
            who = await facebook_identity(http, p, code, flow)
    outcome: bytes = await db.call_as(
        request.app.state.pool,
        "api_internal",
        "select api.oauth_sign_in(%s, %s, %s, %s, %s, %s)",
        [p.name, who["subject"], who["email"], who["email_verified"], who["first_name"], who["last_name"]],
    )
    return outcome


def signed_in(response: Response) -> Response:
    """Our token response, never cached, with the flow's cookie gone."""
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(STATE_COOKIE, path="/api/auth/")
    return response
