"""Local accounts: register, login, logout, me."""

from __future__ import annotations

from gust.handlers.base import ACCESS_COOKIE, APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, LoginIn, LoginOut, RegisterIn, UserOut


class RegisterHandler(APIHandler):
    auth_required = False
    api = {"post": Op("Create an account (the first one is admin)", body=RegisterIn,
                      responses={201: UserOut, 409: ErrorOut}, tags=("auth",))}

    async def post(self) -> None:
        body = self.json_body(RegisterIn)
        user = await self.auth.register(body.email, body.password, body.display_name)
        self.write_json(user.public(), 201)


class LoginHandler(APIHandler):
    auth_required = False
    api = {"post": Op("Log in; returns an access token and sets the session cookie",
                      body=LoginIn, responses={200: LoginOut, 401: ErrorOut}, tags=("auth",))}

    async def post(self) -> None:
        body = self.json_body(LoginIn)
        session = await self.auth.login(body.email, body.password)
        self.set_cookie(
            ACCESS_COOKIE,
            session.access_token,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
            expires_days=None,
            max_age=session.expires_in,
            path="/",
        )
        self.write_json(
            {
                "user": session.user.public(),
                "access_token": session.access_token,
                "token_type": "bearer",
                "expires_in": session.expires_in,
            }
        )


class LogoutHandler(APIHandler):
    auth_required = False
    api = {"post": Op("Log out: clears the session cookie", responses={204: None}, tags=("auth",))}

    async def post(self) -> None:
        self.clear_cookie(ACCESS_COOKIE, path="/")
        self.set_status(204)
        self.finish()


class MeHandler(APIHandler):
    api = {"get": Op("The signed-in user", responses={200: UserOut}, tags=("auth",))}

    async def get(self) -> None:
        self.write_json(self.user.public())


default_handlers = [
    route("/api/auth/register", RegisterHandler),
    route("/api/auth/login", LoginHandler),
    route("/api/auth/logout", LogoutHandler),
    route("/api/auth/me", MeHandler),
]
