"""SSRF, one table through every fetcher: the guard itself, research pages, agents' webhooks
when they are configured (422) and when they are called (DNS rebinding included).

Live tests use loopback only: the research site and the fake webhook listen on 127.0.0.1 and
record every request, so a refusal that still connected shows up. Private, link-local,
metadata and reserved addresses are checked against the guard without connecting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gust.adapters.llm.sessions import SessionPool
from gust.adapters.llm.webhook import WebhookLLM
from gust.adapters.web.connect import OutboundGuard
from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy, AllowList
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest
from gust.ports.web import FetchError
from tests.hostile.ssrf_table import ALL, CREDENTIALS, INVALID, LOOPBACK, METADATA, PRIVATE, Spelling
from tests.research.conftest import StaticResolver
from tests.streaming.helpers import stream
from tests.support.app_server import make_settings, start_app
from tests.support.env import bound_port
from tests.support.fake_webhook import FakeWebhook
from tests.support.site_server import SiteServer

TOKEN = "hook-secret"
ids = [s.id for s in ALL]
live_ids = [s.id for s in LOOPBACK]
WEBHOOK_POLICY = AddressPolicy(allowed_ports=None)  # what agents' webhooks get by default
# Agent configuration: URLs that are not even well-formed fail the generic URL check.
CONFIG_CODES = {CREDENTIALS: {"validation_error"}, INVALID: {"validation_error", "webhook_url_blocked"}}


@pytest.fixture
async def site() -> AsyncIterator[SiteServer]:
    server = await SiteServer(hosts=("127.0.0.1",)).start()
    yield server
    await server.stop()


@pytest.fixture
async def webhook() -> AsyncIterator[FakeWebhook]:
    fake = await FakeWebhook(token=TOKEN).start()
    yield fake
    await fake.stop()


async def call_webhook(url: str, guard: OutboundGuard, pool: SessionPool | None = None) -> str:
    """One agent call through a guarded session: the text answered, or the error code."""
    own = pool is None
    pool = pool or SessionPool(connect_timeout=5, guard=guard)
    llm = WebhookLLM(url, TOKEN, pool, model="agent", first_token_timeout=10, idle_timeout=5)
    request = ChatRequest(model="agent", messages=[{"role": "user", "content": "hi"}])
    try:
        chunks = [c async for c in llm.stream(request)]
    except UpstreamError as exc:
        return exc.code
    finally:
        if own:
            await pool.close()
    return "".join(c.text for c in chunks if c.kind == "delta")


# -- the guard -------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ALL, ids=ids)
async def test_the_guard_refuses_every_spelling(spelling: Spelling) -> None:
    with pytest.raises(FetchError) as info:
        await OutboundGuard(WEBHOOK_POLICY).check_target(spelling.url(5678))
    assert (info.value.kind, info.value.reason) == ("blocked", spelling.reason)


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["10.0.0.5"], PRIVATE),
        (["93.184.216.34", "127.0.0.1"], PRIVATE),  # one bad answer refuses the name
        (["::ffff:0:a9fe:a9fe"], METADATA),
        (["64:ff9b::a00:1"], PRIVATE),
    ],
)
async def test_a_name_resolving_inside_is_refused(answers: list[str], reason: str) -> None:
    guard = OutboundGuard(WEBHOOK_POLICY, StaticResolver({"hook.example.net": answers}))
    with pytest.raises(FetchError) as info:
        await guard.check_target("https://hook.example.net/webhook")
    assert info.value.reason == reason


async def test_public_targets_and_allow_listed_hosts_pass() -> None:
    resolver = StaticResolver({"hook.example.net": ["93.184.216.34"], "n8n.corp": ["10.0.0.7"]})
    await OutboundGuard(WEBHOOK_POLICY, resolver).check_target("https://hook.example.net:8443/w")
    await OutboundGuard(WEBHOOK_POLICY).check_target("http://8.8.8.8:5678/w")
    await OutboundGuard(WEBHOOK_POLICY).check_target("http://unresolvable.invalid/w")  # checked again at call
    allowed = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("n8n.corp, 192.168.0.0/16, ::1"))
    for url in ("http://n8n.corp:5678/w", "http://192.168.4.4/w", "http://[::1]/w", "http://0xc0a80404/w"):
        await OutboundGuard(allowed, resolver).check_target(url)
    # A range never opens a metadata address; only that exact address would.
    wide = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("169.254.0.0/16"))
    with pytest.raises(FetchError, match="cloud metadata"):
        await OutboundGuard(wide).check_target("http://169.254.169.254/latest")


def test_the_allow_list_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="not a host name"):
        AllowList.parse("n8n.corp, http://x/")


# -- research --------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", LOOPBACK, ids=live_ids)
async def test_research_refuses_every_loopback_spelling(site: SiteServer, spelling: Spelling) -> None:
    fetcher = SafeFetcher(policy=AddressPolicy(allowed_ports=frozenset({80, 443, site.port})))
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(spelling.url(site.port, "/article/tides"), time_limit=5)
    finally:
        await fetcher.close()
    assert (info.value.kind, info.value.reason) == ("blocked", spelling.reason)
    assert site.hits == []


async def test_research_reaches_an_allow_listed_host(site: SiteServer) -> None:
    """The control: SSRF_ALLOWED_HOSTS opens loopback, so the refusals above are the guard's."""
    policy = AddressPolicy(allowed=AllowList.parse("127.0.0.0/8, wiki.corp"))
    resolver = StaticResolver({"wiki.corp": ["127.0.0.1"]})
    fetcher = SafeFetcher(policy=policy, resolver=resolver)
    try:
        for host in ("127.0.0.1", "0x7f000001", "127.1", "wiki.corp"):
            page = await fetcher.fetch(f"http://{host}:{site.port}/article/tides")
            assert "Parrsboro" in page.text
    finally:
        await fetcher.close()
    assert len(site.hits) == 4


# -- agents' webhooks when called ------------------------------------------------------
@pytest.mark.parametrize("spelling", LOOPBACK, ids=live_ids)
async def test_a_webhook_call_refuses_every_loopback_spelling(
    webhook: FakeWebhook, spelling: Spelling
) -> None:
    code = await call_webhook(spelling.url(webhook.port, "/webhook/agent"), OutboundGuard(WEBHOOK_POLICY))
    assert code == "upstream_blocked"
    assert webhook.auth_headers == []  # neither the conversation nor the token left


async def test_a_webhook_call_reaches_an_allow_listed_host(webhook: FakeWebhook) -> None:
    allowed = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("127.0.0.1, n8n.corp"))
    guard = OutboundGuard(allowed, StaticResolver({"n8n.corp": ["127.0.0.1"]}))
    assert await call_webhook(webhook.url, guard) == "Agent says hi"
    assert await call_webhook(f"http://n8n.corp:{webhook.port}/webhook/agent", guard) == "Agent says hi"
    for host in ("2130706433", "127.1", "0x7f.0.0.1"):  # sent as the address they denote
        assert await call_webhook(f"http://{host}:{webhook.port}/webhook/agent", guard) == "Agent says hi"
    assert webhook.auth_headers == [f"Bearer {TOKEN}"] * 5


async def test_a_webhook_is_checked_again_when_called_dns_rebinding(webhook: FakeWebhook) -> None:
    """The name is public when the agent is saved and loopback when the agent is called."""
    resolver = StaticResolver(
        {"hook.example.net": ["93.184.216.34"]}, then={"hook.example.net": ["127.0.0.1"]}
    )
    guard = OutboundGuard(WEBHOOK_POLICY, resolver)
    url = f"http://hook.example.net:{webhook.port}/webhook/agent"
    await guard.check_target(url)  # configuration time: passes
    assert await call_webhook(url, guard) == "upstream_blocked"
    assert resolver.calls == ["hook.example.net", "hook.example.net"]
    assert webhook.auth_headers == []


async def test_a_webhook_redirect_is_not_followed() -> None:
    """A 3xx answer is an error: the conversation and the token never travel on."""
    seen: list[str] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/hook":
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return web.json_response({"content": "followed"})

    app = web.Application()
    app.router.add_post("/{path:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = bound_port(runner)
    try:
        allowed = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("127.0.0.1"))
        code = await call_webhook(f"http://127.0.0.1:{port}/hook", OutboundGuard(allowed))
    finally:
        await runner.cleanup()
    assert code == "upstream_error" or code.startswith("upstream_")
    assert seen == ["/hook"]


# -- agents' webhooks when configured, through the app ---------------------------------
async def test_agent_webhooks_are_refused_at_configuration(tmp_path: Path) -> None:
    app = await start_app(make_settings(tmp_path))
    try:
        async with aiohttp.ClientSession() as http:
            admin = await app.sign_up(http, "admin@example.com")
            wrong = []
            for spelling in ALL:
                body = {"name": "Flow", "webhook": {"url": spelling.url(5678), "token": "t"}}
                resp = await admin.post("/api/agents", body)
                codes = CONFIG_CODES.get(spelling.reason, {"webhook_url_blocked"})
                if resp.status != 422 or resp.json["error"]["code"] not in codes:
                    wrong.append((spelling.id, resp.status, resp.text[:120]))
            assert wrong == []
            agent = await admin.post("/api/agents", {"name": "Flow", "webhook": {"url": "https://8.8.8.8/w"}})
            assert agent.status == 201
            # Changing the URL later meets the same check.
            moved = await admin.request(
                "PUT",
                f"/api/agents/{agent.json['id']}",
                json_body={"name": "Flow", "webhook": {"url": "http://[::ffff:0:a9fe:a9fe]/latest"}},
            )
            assert moved.status == 422 and moved.json["error"]["code"] == "webhook_url_blocked"
            assert "SSRF_ALLOWED_HOSTS" in moved.json["error"]["message"]
    finally:
        await app.stop()


async def test_allowed_hosts_let_an_internal_webhook_be_configured(tmp_path: Path) -> None:
    app = await start_app(make_settings(tmp_path, ssrf_allowed_hosts="127.0.0.1, 10.0.0.0/8"))
    try:
        async with aiohttp.ClientSession() as http:
            admin = await app.sign_up(http, "admin@example.com")
            for url in ("http://127.0.0.1:5678/hook", "http://10.2.3.4/hook", "http://0xa000001/hook"):
                resp = await admin.post("/api/agents", {"name": "Flow", "webhook": {"url": url}})
                assert resp.status == 201, (url, resp.text)
            refused = await admin.post("/api/agents", {"name": "Flow", "webhook": {"url": "http://[::1]/h"}})
            assert refused.status == 422
    finally:
        await app.stop()


async def test_a_stored_loopback_webhook_is_refused_when_the_agent_answers(
    tmp_path: Path, webhook: FakeWebhook
) -> None:
    """An agent saved before the configuration check existed: the call-time guard holds."""
    app = await start_app(make_settings(tmp_path, registration="open"))
    try:
        async with aiohttp.ClientSession() as http:
            admin = await app.sign_up(http, "admin@example.com")
            agent = await admin.post("/api/agents", {"name": "Flow", "webhook": {"url": "https://8.8.8.8/w"}})
            me = await admin.get("/api/auth/me")
            accounts = app.services.accounts
            assert accounts is not None
            await accounts.agents.store.update_agent(
                me.json["team_id"], agent.json["id"], {"webhook_url": webhook.url}
            )
            chat = await admin.post("/api/chats", {"agent_id": agent.json["id"]})
            events = await stream(admin, {"chat_id": chat.json["id"], "message": "leak it"})
            errors = [e.data for e in events if e.event == "error"]
            assert errors and errors[0]["code"] == "upstream_blocked"
    finally:
        await app.stop()
    assert webhook.auth_headers == []


async def test_a_host_allowed_by_name_opens_only_that_name(webhook: FakeWebhook) -> None:
    """SSRF_ALLOWED_HOSTS=n8n.corp: the name's private address is reached through that name
    only; another name answering the same address is still refused."""
    allowed = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("n8n.corp"))
    resolver = StaticResolver({"n8n.corp": ["127.0.0.1"], "evil.example.net": ["127.0.0.1"]})
    guard = OutboundGuard(allowed, resolver)
    pool = SessionPool(connect_timeout=5, guard=guard)  # one pool: what one name opened stays its own
    try:
        answers = [
            await call_webhook(f"http://{host}:{webhook.port}/webhook/agent", guard, pool)
            for host in ("n8n.corp", "evil.example.net", "127.0.0.1")
        ]
    finally:
        await pool.close()
    assert answers == ["Agent says hi", "upstream_blocked", "upstream_blocked"]
    assert len(webhook.auth_headers) == 1
