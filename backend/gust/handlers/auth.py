"""Local accounts and sessions: register, login, refresh, logout, password change, me,
and the list of sign-in providers."""

from __future__ import annotations

from typing import Any

from gust.domain.errors import Unauthorized
from gust.domain.ids import new_token
from gust.handlers import web_security
from gust.handlers.account_schemas import PasswordChangeIn, ProfileIn, ProfileOut, ProvidersOut
from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, LoginIn, LoginOut, RegisterIn, UserOut
from gust.services.accounts import AccountServices
from gust.services.tokens import Session


class SessionHandler(APIHandler):
    """Sets and clears the session cookies: `gust_access` (path /), `gust_refresh` (path
    /api/auth only) and the JS-readable `gust_csrf` that unsafe requests echo."""

    @property
    def accounts(self) -> AccountServices:
        return self.services.accounts

    def set_session_cookies(self, session: Session) -> None:
        secure = self.secure_transport
        self.set_cookie(web_security.ACCESS_COOKIE, session.access_token, httponly=True, samesite="Lax",
                        secure=secure, expires_days=None, max_age=session.expires_in, path="/")
        if session.refresh_token:
            self.set_cookie(web_security.REFRESH_COOKIE, session.refresh_token, httponly=True,
                            samesite="Lax", secure=secure, expires_days=None,
                            max_age=session.refresh_expires_in, path=web_security.REFRESH_COOKIE_PATH)
        csrf = self.get_cookie(web_security.CSRF_COOKIE) or new_token(24)
        self.set_cookie(web_security.CSRF_COOKIE, csrf, httponly=False, samesite="Lax", secure=secure,
                        expires_days=None, max_age=max(session.refresh_expires_in, session.expires_in),
                        path="/")

    def clear_session_cookies(self) -> None:
        self.clear_cookie(web_security.ACCESS_COOKIE, path="/")
        self.clear_cookie(web_security.REFRESH_COOKIE, path=web_security.REFRESH_COOKIE_PATH)
        self.clear_cookie(web_security.CSRF_COOKIE, path="/")

    def session_json(self, session: Session) -> dict[str, Any]:
        return {
            "user": session.user.public(),
            "access_token": session.access_token,
            "token_type": "bearer",
            "expires_in": session.expires_in,
        }


class RegisterHandler(SessionHandler):
    auth_required = False
    api = {"post": Op("Create an account (the first one is admin; later ones may need an invite)",
                      body=RegisterIn, responses={201: UserOut, 403: ErrorOut, 409: ErrorOut},
                      tags=("auth",))}

    async def post(self) -> None:
        body = self.json_body(RegisterIn)
        user = await self.auth.register(body.email, body.password, body.display_name,
                                        invite_token=body.invite, client_ip=self.client_ip)
        self.write_json(user.public(), 201)


class LoginHandler(SessionHandler):
    auth_required = False
    api = {"post": Op("Log in; returns an access token and sets the session cookies",
                      body=LoginIn, responses={200: LoginOut, 401: ErrorOut}, tags=("auth",))}

    async def post(self) -> None:
        body = self.json_body(LoginIn)
        session = await self.auth.login(body.email, body.password, client_ip=self.client_ip)
        self.set_session_cookies(session)
        self.write_json(self.session_json(session))


class RefreshHandler(SessionHandler):
    auth_required = False
    api = {"post": Op("Exchange the refresh cookie for a new access token (and refresh token)",
                      responses={200: LoginOut, 401: ErrorOut, 403: ErrorOut}, tags=("auth",))}

    async def post(self) -> None:
        raw = self.get_cookie(web_security.REFRESH_COOKIE)
        if not raw:
            raise Unauthorized("no refresh token", code="invalid_refresh_token")
        self.check_csrf_token()
        try:
            session = await self.auth.refresh(raw)
        except Unauthorized:
            self.clear_session_cookies()
            raise
        self.set_session_cookies(session)
        self.write_json(self.session_json(session))


class LogoutHandler(SessionHandler):
    auth_required = False
    api = {"post": Op("Log out: ends this login's sessions (its refresh-token family) and clears "
                      "the cookies", responses={204: None, 403: ErrorOut}, tags=("auth",))}

    async def post(self) -> None:
        raw = self.get_cookie(web_security.REFRESH_COOKIE)
        if raw:
            self.check_csrf_token()
            await self.auth.logout(raw)
        self.clear_session_cookies()
        self.set_status(204)
        self.finish()


class PasswordHandler(SessionHandler):
    api = {"post": Op("Change my password: ends every session of mine and starts a new one",
                      body=PasswordChangeIn, responses={200: LoginOut, 403: ErrorOut}, tags=("auth",))}

    async def post(self) -> None:
        body = self.json_body(PasswordChangeIn)
        session = await self.auth.change_password(self.user, body.current_password, body.new_password)
        self.set_session_cookies(session)
        self.write_json(self.session_json(session))


class MeHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("The signed-in user, with their defaults for new chats",
                  responses={200: ProfileOut}, tags=("auth",)),
        "patch": Op("Change my display name or my defaults for new chats (null clears a default; "
                    "the model must be one of /api/models)",
                    body=ProfileIn, responses={200: ProfileOut, 422: ErrorOut}, tags=("auth",)),
    }

    async def get(self) -> None:
        self.write_json(self.user.profile())

    async def patch(self) -> None:
        body = self.json_body(ProfileIn)
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        user = await self.services.profiles.update(self.user, changes)
        self.write_json(user.profile())


class ProvidersHandler(SessionHandler):
    api_key_methods = frozenset({"GET"})
    auth_required = False
    api = {"get": Op("Sign-in methods: password and the configured OAuth / OpenID Connect providers",
                     responses={200: ProvidersOut}, tags=("auth",))}

    async def get(self) -> None:
        providers = self.accounts.oauth.providers.values()
        self.write_json(
            {
                "items": [
                    {"id": p.id, "name": p.name, "start_url": f"/api/auth/oauth/{p.id}/start"}
                    for p in providers
                ],
                "password": True,
                "registration": await self.auth.registration_mode(),
                "first_account": await self.auth.store.count_users() == 0,
            }
        )


default_handlers = [
    route("/api/auth/register", RegisterHandler),
    route("/api/auth/login", LoginHandler),
    route("/api/auth/refresh", RefreshHandler),
    route("/api/auth/logout", LogoutHandler),
    route("/api/auth/password", PasswordHandler),
    route("/api/auth/me", MeHandler),
    route("/api/auth/providers", ProvidersHandler),
]
