"""Team administration (admins only): members, roles, disabling, invites, the error log."""

from __future__ import annotations

from gust.handlers.account_schemas import (
    ErrorListOut,
    ErrorListQuery,
    InviteCreatedOut,
    InviteCreateIn,
    InviteListOut,
    UserListOut,
    UserPatchIn,
)
from gust.handlers.auth import SessionHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, UserOut

ADMIN = ("admin",)
FORBIDDEN = {403: ErrorOut}


class UsersHandler(SessionHandler):
    api = {"get": Op("Members of my team", responses={200: UserListOut, **FORBIDDEN}, tags=ADMIN)}

    async def get(self) -> None:
        users = await self.accounts.teams.list_users(self.user)
        self.write_json({"items": [u.public() for u in users]})


class UserHandler(SessionHandler):
    api = {"patch": Op("Change a member's role, or disable / re-enable them (their sessions end "
                       "at once)", body=UserPatchIn, responses={200: UserOut, 409: ErrorOut, **FORBIDDEN},
                       tags=ADMIN)}

    async def patch(self, user_id: str) -> None:
        changes = self.json_body(UserPatchIn).model_dump(exclude_unset=True)
        user = await self.accounts.teams.update_user(self.user, user_id, **changes)
        self.write_json(user.public())


class InvitesHandler(SessionHandler):
    api = {
        "get": Op("Invites of my team", responses={200: InviteListOut, **FORBIDDEN}, tags=ADMIN),
        "post": Op("Create a one-time invite link into my team", body=InviteCreateIn,
                   responses={201: InviteCreatedOut, **FORBIDDEN}, tags=ADMIN),
    }

    async def get(self) -> None:
        invites = await self.accounts.teams.list_invites(self.user)
        self.write_json({"items": [i.public() for i in invites]})

    async def post(self) -> None:
        body = self.json_body(InviteCreateIn)
        invite, token = await self.accounts.teams.create_invite(self.user, role=body.role, email=body.email)
        base = (self.gust_settings.public_url or f"{self.scheme}://{self.request.host}").rstrip("/")
        self.write_json({**invite.public(), "token": token, "url": f"{base}/?invite={token}"}, 201)


class InviteHandler(SessionHandler):
    api = {"delete": Op("Withdraw an invite", responses={204: None, **FORBIDDEN}, tags=ADMIN)}

    async def delete(self, invite_id: str) -> None:
        await self.accounts.teams.delete_invite(self.user, invite_id)
        self.set_status(204)
        self.finish()


class ErrorsHandler(SessionHandler):
    api = {"get": Op("Recent server errors (request id, route, user, time; no message text)",
                     query=ErrorListQuery, responses={200: ErrorListOut, **FORBIDDEN}, tags=ADMIN)}

    async def get(self) -> None:
        query = self.query_model(ErrorListQuery)
        entries = await self.services.error_log.list(self.user, limit=query.limit)
        self.write_json({"items": [e.public() for e in entries]})


default_handlers = [
    route("/api/admin/users", UsersHandler),
    route("/api/admin/users/{user_id}", UserHandler),
    route("/api/admin/invites", InvitesHandler),
    route("/api/admin/invites/{invite_id}", InviteHandler),
    route("/api/admin/errors", ErrorsHandler),
]
