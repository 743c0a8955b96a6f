"""A stand-in OAuth 2.0 / OpenID Connect provider on loopback, for the OAuth sign-in tests.

It speaks the protocol our API speaks to Google and Facebook, on one port:

- OIDC (Google-like): /.well-known/openid-configuration, /jwks, /authorize, /token
  (code + PKCE S256 + client secret -> access_token and an RS256 id_token carrying the nonce);
- Facebook-like: /dialog/oauth, /oauth/access_token, /me (checks appsecret_proof).

/authorize consents at once: it redirects to redirect_uri with a code and the state, signing in
whoever `next_user` says. Knobs (`id_token_claims`, `sign_with`, `token_status`) let a test
make the provider misbehave. `registered` holds the client ids and secrets it accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: dict[str, Any]
    used: bool = False


@dataclass
class StandIn:
    """The provider's state; tests read and change it between requests."""

    registered: dict[str, str] = field(default_factory=dict)  # client_id -> client_secret
    next_user: dict[str, Any] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = "standin-1"
    # Misbehaviour: extra/overridden ID-token claims, another signing key, a failing token endpoint.
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    sign_with: tuple[rsa.RSAPrivateKey, str] | None = None
    token_status: int | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""

    def reset(self) -> None:
        self.next_user = {}
        self.id_token_claims = {}
        self.sign_with = None
        self.token_status = None
        self.authorize_requests.clear()

    # --- endpoints ---------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        b = self.base_url
        return JSONResponse(
            {
                "issuer": b,
                "authorization_endpoint": f"{b}/authorize",
                "token_endpoint": f"{b}/token",
                "jwks_uri": f"{b}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [public_jwk(self.key, self.kid)]})

    async def authorize(self, request: Request) -> Response:
        """Auto-consent: record the request, issue a code for `next_user`, redirect back with state."""
        q = dict(request.query_params)
        self.authorize_requests.append(q)
        if self.registered.get(q.get("client_id", "")) is None or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE required"}, status_code=400)
        back = {"state": q.get("state", "")}
        if self.next_user.get("deny"):
            back["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(
                q["client_id"], q["redirect_uri"], q["code_challenge"], q.get("nonce"), dict(self.next_user)
            )
            back["code"] = code
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode(back), status_code=302)

    def redeem(self, form: dict[str, str]) -> Grant | Response:
        """The RFC 6749 / 7636 checks of a code exchange: client, code (once), redirect_uri, PKCE."""
        if self.token_status is not None:
            return JSONResponse({"error": "server_error"}, status_code=self.token_status)
        client_id = form.get("client_id", "")
        secret = self.registered.get(client_id)
        if secret is None or not hmac.compare_digest(secret, form.get("client_secret", "")):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.used or grant.client_id != client_id:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        return grant

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        grant = self.redeem(form)
        if isinstance(grant, Response):
            return grant
        now = int(time.time())
        claims = {
            "iss": self.base_url,
            "aud": grant.client_id,
            "sub": grant.user.get("sub"),
            "iat": now,
            "exp": now + 3600,
            "nonce": grant.nonce,
            "email": grant.user.get("email"),
            "email_verified": grant.user.get("email_verified", True),
            "given_name": grant.user.get("given_name"),
            "family_name": grant.user.get("family_name"),
            **self.id_token_claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        key, kid = self.sign_with or (self.key, self.kid)
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        access = secrets.token_urlsafe(24)
        self.access_tokens[access] = grant.user
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 3600, "id_token": id_token})

    async def facebook_token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        grant = self.redeem(form)
        if isinstance(grant, Response):
            return grant
        access = secrets.token_urlsafe(24)
        self.access_tokens[access] = grant.user
        return JSONResponse({"access_token": access, "token_type": "bearer", "expires_in": 5183944})

    async def me(self, request: Request) -> Response:
        access = request.query_params.get("access_token", "")
        user = self.access_tokens.get(access)
        if user is None:
            return JSONResponse({"error": {"message": "Invalid OAuth access token.", "code": 190}}, status_code=400)
        proof = request.query_params.get("appsecret_proof")
        if proof is not None:
            secrets_ = self.registered.values()
            expected = [hmac.new(s.encode(), access.encode(), hashlib.sha256).hexdigest() for s in secrets_]
            if proof not in expected:
                return JSONResponse({"error": {"message": "Invalid appsecret_proof", "code": 100}}, status_code=400)
        fields = request.query_params.get("fields", "id,name").split(",")
        profile = {
            "id": user.get("sub"),
            "name": " ".join(x for x in (user.get("given_name"), user.get("family_name")) if x),
            "email": user.get("email"),
            "first_name": user.get("given_name"),
            "last_name": user.get("family_name"),
        }
        return JSONResponse({k: v for k, v in profile.items() if k in fields and v is not None})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/dialog/oauth", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/oauth/access_token", self.facebook_token, methods=["POST"]),
                Route("/me", self.me),
            ]
        )
