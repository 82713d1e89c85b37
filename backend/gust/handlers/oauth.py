"""Sign-in with OAuth / OpenID Connect providers: start (redirect to the provider) and the
callback (GET, or POST for Apple's form_post), which signs in and redirects to the UI."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from gust.domain.errors import UpstreamError
from gust.handlers.account_schemas import OAuthStartQuery
from gust.handlers.auth import SessionHandler
from gust.handlers.routing import Op, route
from gust.services.oauth.oidc import SignInError

STATE_COOKIE = "gust_oauth"
STATE_COOKIE_PATH = "/api/auth/oauth"
TAGS = ("auth",)
log = logging.getLogger("gust.auth")


class OAuthHandler(SessionHandler):
    auth_required = False

    def redirect_uri(self, provider_id: str) -> str:
        base = (self.gust_settings.public_url or f"{self.scheme}://{self.request.host}").rstrip("/")
        return f"{base}/api/auth/oauth/{provider_id}/callback"


class OAuthStartHandler(OAuthHandler):
    api = {"get": Op("Start signing in with a provider: redirects to it (?next=/path to come back "
                     "to, ?invite=token to join a team)", query=OAuthStartQuery,
                     responses={302: None}, tags=TAGS)}

    async def get(self, provider: str) -> None:
        query = self.query_model(OAuthStartQuery)
        start = await self.accounts.oauth.begin(provider, self.redirect_uri(provider), invite=query.invite,
                                                next_path=query.next)
        secure = self.secure_transport
        form_post = self.accounts.oauth.provider(provider).response_mode == "form_post"
        # Apple posts the callback from its own site: a Lax cookie would not come along.
        samesite = "None" if form_post and secure else "Lax"
        self.set_cookie(STATE_COOKIE, start.state_cookie, httponly=True, secure=secure, samesite=samesite,
                        expires_days=None, max_age=600, path=STATE_COOKIE_PATH)
        self.redirect(start.authorize_url, status=302)


class OAuthCallbackHandler(OAuthHandler):
    # The state cookie, bound to the browser that started the flow, is this request's CSRF
    # defence; Apple's form_post comes from Apple's origin by design.
    csrf_exempt = True
    api = {
        "get": Op("Provider callback: signs in, sets the session cookies and redirects to the UI "
                  "(to /?auth_error=<code> when refused)", responses={302: None}, tags=TAGS),
        "post": Op("Provider callback with response_mode=form_post (Apple)", responses={303: None},
                   tags=TAGS),
    }

    async def get(self, provider: str) -> None:
        params = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        await self.finish_sign_in(provider, params, 302)

    async def post(self, provider: str) -> None:
        try:
            params = dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
        except (UnicodeDecodeError, ValueError):
            params = {"error": "invalid_request"}
        await self.finish_sign_in(provider, params, 303)

    async def finish_sign_in(self, provider: str, params: dict[str, str], status: int) -> None:
        oauth = self.accounts.oauth
        oauth.provider(provider)  # 404 for providers that are not configured
        state_cookie = self.get_cookie(STATE_COOKIE)
        self.clear_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
        try:
            done = await oauth.complete(provider, params, state_cookie, self.redirect_uri(provider))
        except SignInError as exc:
            self.log_refusal(provider, exc.code, exc.reason)
            self.redirect("/?" + urlencode({"auth_error": exc.code}), status=status)
            return
        except UpstreamError as exc:
            self.log_refusal(provider, exc.code, exc.message)
            self.redirect("/?" + urlencode({"auth_error": "provider_unavailable"}), status=status)
            return
        self.set_session_cookies(done.session)
        self.redirect(done.next_path, status=status)

    def log_refusal(self, provider: str, code: str, reason: str) -> None:
        log.warning("sign-in with %s refused: %s (%s)", provider, code, reason)

default_handlers = [
    route("/api/auth/oauth/{provider}/start", OAuthStartHandler),
    route("/api/auth/oauth/{provider}/callback", OAuthCallbackHandler),
]
