"""A real OpenID Connect provider over HTTP for sign-in tests: discovery, authorize, token,
JWKS and userinfo, plus GitHub's OAuth endpoints and API. It checks what a strict
provider checks (client, redirect URI, PKCE S256, one-time codes, Apple's ES256 client
secret) and has switches to misbehave: bad nonce, wrong audience, expired or foreign-signed
ID tokens, unverified email, Microsoft's multi-tenant issuer template."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import jwt
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "gust-test-client"
CLIENT_SECRET = "gust-test-client-secret-0123456789abcdef"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class ProviderUser:
    sub: str = "user-1"
    email: str | None = "ada@example.com"
    email_verified: Any = True
    name: str | None = "Ada Lovelace"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Switches:
    bad_nonce: bool = False
    wrong_audience: bool = False
    expired: bool = False
    foreign_key: bool = False  # signed by a key the JWKS does not publish
    hs256: bool = False  # signed with the client secret (algorithm confusion)
    wrong_issuer: bool = False
    email_in_userinfo_only: bool = False
    tenant_issuer: str | None = None  # Microsoft multi-tenant: discovery issuer holds {tenantid}
    deny: bool = False  # the user refuses consent


@dataclass
class Apple:
    """Apple mode: the client secret must be an ES256 JWT from this team's key."""

    team_id: str = "TEAM123456"
    key_id: str = "KEY1234567"
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def private_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


class OIDCProvider:
    def __init__(self) -> None:
        self.key = _rsa()
        self.kid = "test-key-1"
        self.foreign = _rsa()
        self.user = ProviderUser()
        self.switches = Switches()
        self.apple: Apple | None = None
        self.github_emails: list[dict[str, Any]] = [
            {"email": "ada@example.com", "primary": True, "verified": True, "visibility": "private"}
        ]
        self.github_user: dict[str, Any] = {"id": 4242, "login": "ada", "name": "Ada Lovelace"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, ProviderUser] = {}
        self.token_requests: list[dict[str, str]] = []
        self.url = ""
        self.issuer_prefix = ""  # path of the last discovery document fetched (Microsoft's tenant)
        self._server: tornado.httpserver.HTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> OIDCProvider:
        app = tornado.web.Application([
            (r"(.*)/\.well-known/openid-configuration", DiscoveryHandler, {"p": self}),
            (r"/authorize", AuthorizeHandler, {"p": self}),
            (r"/token", TokenHandler, {"p": self}),
            (r"/jwks", JwksHandler, {"p": self}),
            (r"/userinfo", UserinfoHandler, {"p": self}),
            (r"/login/oauth/authorize", AuthorizeHandler, {"p": self, "github": True}),
            (r"/login/oauth/access_token", GithubTokenHandler, {"p": self}),
            (r"/api/user", GithubUserHandler, {"p": self}),
            (r"/api/user/emails", GithubEmailsHandler, {"p": self}),
        ])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()

    # -- tokens ----------------------------------------------------------------------
    def issuer_for(self, prefix: str) -> str:
        return self.url + prefix

    def id_token(self, code: dict[str, Any]) -> str:
        user: ProviderUser = code["user"]
        s = self.switches
        now = int(time.time())
        issuer = code["issuer"]
        claims: dict[str, Any] = {
            "iss": "https://evil.example.com" if s.wrong_issuer else issuer,
            "aud": "someone-else" if s.wrong_audience else code["client_id"],
            "sub": user.sub,
            "iat": now - 7200 if s.expired else now,
            "exp": now - 3600 if s.expired else now + 600,
            "nonce": "not-the-nonce" if s.bad_nonce else code["nonce"],
            **user.extra,
        }
        if s.tenant_issuer:  # wrong_issuer: iss names another tenant than tid
            tenant = "another-tenant" if s.wrong_issuer else s.tenant_issuer
            claims["iss"] = issuer.replace("{tenantid}", tenant)
            claims["tid"] = s.tenant_issuer
        if user.email is not None and not s.email_in_userinfo_only:
            claims["email"] = user.email
            if user.email_verified is not None:  # Microsoft sends no email_verified at all
                claims["email_verified"] = user.email_verified
        if user.name:
            claims["name"] = user.name
        if s.hs256:
            return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": self.kid})
        key = self.foreign if s.foreign_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def check_client(self, client_id: str, secret: str | None) -> str | None:
        """None when the client authenticated, else the reason."""
        if client_id != CLIENT_ID:
            return "unknown client"
        if self.apple is None:
            return None if secret == CLIENT_SECRET else "wrong client secret"
        try:
            header = jwt.get_unverified_header(secret or "")
            claims = jwt.decode(secret or "", self.apple.private_key.public_key(), algorithms=["ES256"],
                                audience=self.url, issuer=self.apple.team_id,
                                options={"require": ["iat", "exp", "sub"]})
        except jwt.PyJWTError as exc:
            return f"client secret JWT rejected: {exc}"
        if header.get("kid") != self.apple.key_id or claims["sub"] != client_id:
            return "client secret JWT has the wrong kid or sub"
        return None


class Base(tornado.web.RequestHandler):
    def initialize(self, p: OIDCProvider, github: bool = False) -> None:
        self.p = p
        self.github = github

    def json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))


class DiscoveryHandler(Base):
    def get(self, prefix: str) -> None:
        self.p.issuer_prefix = prefix
        issuer = self.p.issuer_for(prefix)
        if self.p.switches.tenant_issuer:
            issuer = self.p.url + "/{tenantid}/v2.0"
        auth_methods = ["client_secret_basic", "client_secret_post"]
        if self.p.apple:
            auth_methods = ["client_secret_post"]
        self.json({
            "issuer": issuer,
            "authorization_endpoint": f"{self.p.url}/authorize",
            "token_endpoint": f"{self.p.url}/token",
            "jwks_uri": f"{self.p.url}/jwks",
            "userinfo_endpoint": f"{self.p.url}/userinfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "code_challenge_methods_supported": ["S256"],
        })


class AuthorizeHandler(Base):
    def get(self) -> None:
        args = {k: self.get_argument(k) for k in self.request.arguments}
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != CLIENT_ID or not redirect_uri:
            self.json({"error": "invalid_client"}, 400)
            return
        if args.get("response_type") != "code" or args.get("code_challenge_method") != "S256" \
                or not args.get("code_challenge") or not args.get("state"):
            self.json({"error": "invalid_request", "args": args}, 400)
            return
        if not self.github and not args.get("nonce"):
            self.json({"error": "invalid_request", "detail": "nonce required"}, 400)
            return
        if self.p.switches.deny:
            self.redirect(redirect_uri + "?" + urlencode({"error": "access_denied", "state": args["state"]}))
            return
        code = secrets.token_urlsafe(16)
        issuer = self.p.issuer_for(self.p.issuer_prefix)
        self.p.codes[code] = {
            "client_id": args["client_id"],
            "redirect_uri": redirect_uri,
            "challenge": args["code_challenge"],
            "nonce": args.get("nonce"),
            "user": self.p.user,
            "issuer": self.p.url + "/{tenantid}/v2.0" if self.p.switches.tenant_issuer else issuer,
            "used": False,
        }
        fields = {"code": code, "state": args["state"]}
        if args.get("response_mode") == "form_post":
            fields["user"] = json.dumps({"name": {"firstName": "Ada", "lastName": "Apple"},
                                         "email": "not-trusted@example.com"})
            inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in fields.items())
            self.set_header("Content-Type", "text/html")
            self.finish(f'<form method="post" action="{html.escape(redirect_uri)}">{inputs}</form>')
            return
        self.redirect(redirect_uri + "?" + urlencode(fields))


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class TokenHandler(Base):
    def redeem(self) -> tuple[dict[str, Any] | None, str]:
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        self.p.token_requests.append(form)
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        basic = self.request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        code = self.p.codes.get(form.get("code", ""))
        if form.get("grant_type") != "authorization_code" or code is None or code["used"]:
            return None, "invalid_grant"
        code["used"] = True
        problem = self.p.check_client(client_id, secret)
        if problem or client_id != code["client_id"]:
            return None, "invalid_client"
        if form.get("redirect_uri") != code["redirect_uri"]:
            return None, "invalid_grant"
        if _s256(form.get("code_verifier", "")) != code["challenge"]:
            return None, "invalid_grant"
        return code, ""

    def post(self) -> None:
        code, error = self.redeem()
        if code is None:
            self.json({"error": error}, 400)
            return
        access = secrets.token_urlsafe(16)
        self.p.access_tokens[access] = code["user"]
        self.json({"access_token": access, "token_type": "Bearer", "expires_in": 600,
                   "id_token": self.p.id_token(code)})


class JwksHandler(Base):
    def get(self) -> None:
        self.json(self.p.jwks())


class UserinfoHandler(Base):
    def get(self) -> None:
        token = self.request.headers.get("Authorization", "").removeprefix("Bearer ")
        user = self.p.access_tokens.get(token)
        if user is None:
            self.json({"error": "invalid_token"}, 401)
            return
        self.json({"sub": user.sub, "email": user.email, "email_verified": user.email_verified,
                   "name": user.name})


class GithubTokenHandler(TokenHandler):
    def post(self) -> None:
        code, error = self.redeem()
        if code is None:  # GitHub answers 200 with an error field
            self.json({"error": "bad_verification_code" if error == "invalid_grant" else error})
            return
        access = "gho_" + secrets.token_urlsafe(16)
        self.p.access_tokens[access] = code["user"]
        self.json({"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"})


class GithubApi(Base):
    def authorised(self) -> bool:
        token = self.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.p.access_tokens:
            self.json({"message": "Bad credentials"}, 401)
            return False
        return True


class GithubUserHandler(GithubApi):
    def get(self) -> None:
        if self.authorised():
            self.json(self.p.github_user)


class GithubEmailsHandler(GithubApi):
    def get(self) -> None:
        if self.authorised():
            self.json(self.p.github_emails)


@dataclass
class Callback:
    """The app's answer to the provider's callback (a redirect, not followed)."""

    status: int
    location: str
    params: dict[str, str]  # what the provider sent to the callback

    @property
    def auth_error(self) -> str | None:
        from urllib.parse import parse_qs, urlsplit

        values = parse_qs(urlsplit(self.location).query).get("auth_error")
        return values[0] if values else None


async def sign_in(
    session: aiohttp.ClientSession,
    app_url: str,
    provider_id: str,
    *,
    query: str = "",
    tamper: Callable[[dict[str, str]], None] | None = None,
) -> Callback:
    """Run a browser's sign-in: start at the app, authorize at the provider, come back to
    the app's callback (GET, or a form POST for response_mode=form_post)."""
    async with session.get(f"{app_url}/api/auth/oauth/{provider_id}/start{query}",
                           allow_redirects=False) as start:
        assert start.status == 302, await start.text()
        authorize_url = start.headers["Location"]
    async with session.get(authorize_url, allow_redirects=False) as authorize:
        body = await authorize.text()
        if authorize.status == 302:
            target = authorize.headers["Location"]
            base, _, raw = target.partition("?")
            params = dict(parse_qsl(raw))
            method = "GET"
        else:
            assert authorize.status == 200, body
            base = html.unescape(re.search(r'action="([^"]+)"', body).group(1))  # type: ignore[union-attr]
            params = {html.unescape(k): html.unescape(v)
                      for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', body)}
            method = "POST"
    if tamper is not None:
        tamper(params)
    if method == "GET":
        request = session.get(base + "?" + urlencode(params), allow_redirects=False)
    else:  # the browser posts the provider's page to the app: a cross-site form POST
        origin = authorize_url.split("/authorize")[0]
        request = session.post(base, data=params, allow_redirects=False, headers={"Origin": origin})
    async with request as callback:
        await callback.read()
        return Callback(callback.status, callback.headers.get("Location", ""), params)
