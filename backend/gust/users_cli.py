"""`python -m gust users ...`: accounts from the command line, on the configured store.

    users create EMAIL [--admin] [--name NAME]   password: stdin's first line, or generated
    users reset-password EMAIL                   (a generated one is printed once)
    users list
    users disable EMAIL / users enable EMAIL

Works on SQLite and MongoDB alike through the store port and the account services.
Exit codes: 0 done, 1 refused (unknown account, address taken, bad password, last admin),
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from gust.config import Settings
from gust.domain.errors import Conflict, GustError, NotFound
from gust.domain.models import User
from gust.ports.accounts_store import AccountsStore
from gust.services.auth import DEFAULT_TEAM_ID, AuthService, normalise_email
from gust.services.ratelimit import RateLimitService

GENERATED_BYTES = 15  # 20 URL-safe characters


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="create, list, disable users and reset passwords")
    actions = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create an account (the password is read from stdin, or generated and printed once)"
    )
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--admin", action="store_true", help="make the account an admin")
    create.add_argument("--name", help="display name (default: the part of EMAIL before @)")
    reset = actions.add_parser(
        "reset-password",
        help="set a new password (from stdin, or generated and printed once); ends the user's sessions",
    )
    reset.add_argument("email", metavar="EMAIL")
    actions.add_parser("list", help="list the accounts (email, role, state, created)")
    disable = actions.add_parser("disable", help="disable an account; its sessions and API keys stop at once")
    disable.add_argument("email", metavar="EMAIL")
    enable = actions.add_parser("enable", help="enable a disabled account again")
    enable.add_argument("email", metavar="EMAIL")


def read_password(stdin: TextIO) -> tuple[str, bool]:
    """(password, generated): the first line of a piped stdin, else a new random one."""
    if not stdin.isatty():
        line = stdin.readline().rstrip("\r\n")
        if line:
            return line, False
    return secrets.token_urlsafe(GENERATED_BYTES), True


async def run(settings: Settings, args: argparse.Namespace, stdin: TextIO = sys.stdin) -> int:
    from gust.adapters.ratelimit.memory import MemoryRateLimiter
    from gust.wiring import make_store

    store = make_store(settings)
    await store.start()
    accounts: AccountsStore = store
    auth = AuthService(
        accounts,
        secret_key=settings.secret_key(),
        access_ttl=settings.access_token_ttl,
        bcrypt_rounds=settings.bcrypt_rounds,
        refresh_ttl=settings.refresh_token_ttl,
        rate_limits=RateLimitService(MemoryRateLimiter(), {}),  # an operator's command: no limits
    )
    try:
        return await COMMANDS[args.users_command](auth, accounts, args, stdin)
    except GustError as exc:
        print(f"gust users: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()


async def _user(store: AccountsStore, email: str) -> User:
    user = await store.get_user_by_email(normalise_email(email))
    if user is None:
        raise NotFound(f"no account with the address {email}")
    return user


async def _create(auth: AuthService, store: AccountsStore, args: argparse.Namespace, stdin: TextIO) -> int:
    password, generated = read_password(stdin)
    user = await auth.provision(args.email, password, admin=args.admin, display_name=args.name)
    print(f"created {user.role} {user.email}")
    if generated:
        print(f"password: {password}")
        print("(shown once: sign in and change it under Settings)")
    return 0


async def _reset(auth: AuthService, store: AccountsStore, args: argparse.Namespace, stdin: TextIO) -> int:
    user = await _user(store, args.email)
    password, generated = read_password(stdin)
    await auth.reset_password(user, password)
    print(f"password of {user.email} reset; their sessions have ended")
    if generated:
        print(f"password: {password}")
    return 0


async def _list(auth: AuthService, store: AccountsStore, args: argparse.Namespace, stdin: TextIO) -> int:
    # Every account lives in the instance's one team (invites add to the inviter's team).
    print("email\trole\tstate\tcreated")
    for user in await store.list_team_users(DEFAULT_TEAM_ID, limit=100_000):
        created = datetime.fromtimestamp(user.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        state = "disabled" if user.disabled else "active"
        print(f"{user.email}\t{user.role}\t{state}\t{created}")
    return 0


async def _set_disabled(auth: AuthService, store: AccountsStore, email: str, disabled: bool) -> int:
    user = await _user(store, email)
    if user.disabled == disabled:
        print(f"{user.email} is already {'disabled' if disabled else 'enabled'}")
        return 0
    if disabled and user.role == "admin" and await store.count_admins(user.team_id) <= 1:
        raise Conflict("a team needs at least one enabled admin: make another admin first", code="last_admin")
    updated = await store.update_user(user.id, {"disabled": disabled})
    if updated is None:
        raise NotFound(f"no account with the address {email}")
    if disabled:
        await auth.revoke_everything(updated)
    print(f"{'disabled' if disabled else 'enabled'} {user.email}")
    return 0


async def _disable(auth: AuthService, store: AccountsStore, args: argparse.Namespace, stdin: TextIO) -> int:
    return await _set_disabled(auth, store, args.email, True)


async def _enable(auth: AuthService, store: AccountsStore, args: argparse.Namespace, stdin: TextIO) -> int:
    return await _set_disabled(auth, store, args.email, False)


Command = Callable[[AuthService, AccountsStore, argparse.Namespace, TextIO], Awaitable[int]]
COMMANDS: dict[str, Command] = {
    "create": _create,
    "reset-password": _reset,
    "list": _list,
    "disable": _disable,
    "enable": _enable,
}
