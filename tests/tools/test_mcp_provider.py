"""MCP servers' tools against a real MCP server (the `mcp` SDK's server, streamable HTTP)
in a subprocess on loopback: listing, calls, errors, a server that is down, hangs, dies
mid-call or restarts, and the SSRF guard on MCP URLs."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gust.adapters.tools.mcp import McpServerConfig, McpToolProvider
from gust.adapters.web.guard import AddressPolicy, AllowList
from gust.services.tools import ToolBox, ToolLimits
from tests.hostile.ssrf_table import INTERNAL, LOOPBACK, Spelling
from tests.research.conftest import StaticResolver
from tests.support.env import free_port
from tests.support.mcp_server import McpServerProcess
from tests.support.site_server import SiteServer
from tests.support.wait import until

# How tests reach the loopback server: as an operator would, with SSRF_ALLOWED_HOSTS.
LOCAL = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("127.0.0.1"))
GUARDED = AddressPolicy(allowed_ports=None)  # the guard's defaults: nothing private
SERVER_TOOLS = ["add", "echo", "fail", "hang", "big", "whoami"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[McpServerProcess]:
    process = await McpServerProcess(free_port(), markers=tmp_path).start()
    yield process
    process.kill()


def provider(
    url: str,
    *,
    policy: AddressPolicy = LOCAL,
    mode: str = "auto",
    connect_timeout: float = 15.0,  # generous: the machine may be busy; hangs are bounded per test
    **config: object,
) -> McpToolProvider:
    return McpToolProvider(
        McpServerConfig(name="testsrv", url=url, **config),  # type: ignore[arg-type]
        policy=policy,
        connect_timeout=connect_timeout,
        mode=mode,
    )


async def test_lists_and_calls_tools_on_one_reused_session(server: McpServerProcess) -> None:
    mcp = provider(server.url)
    try:
        tools = await mcp.list_tools()
        assert [t.name for t in tools] == [f"mcp:testsrv/{n}" for n in SERVER_TOOLS]
        add = tools[0]
        assert add.description == "Add two integers"
        assert add.parameters["properties"]["a"]["type"] == "integer" and add.parameters["required"] == [
            "a",
            "b",
        ]
        assert add.approval == "auto"
        box = ToolBox([mcp], ToolLimits(timeout=5))
        result = await box.call("mcp:testsrv/add", '{"a": 2, "b": 40}')
        assert result.ok and result.content == "42"
        echo = await box.call("mcp:testsrv/echo", {"text": "héllo ✓ 你好"})
        assert echo.ok and echo.content == "héllo ✓ 你好"
        assert mcp.status == "connected" and mcp.sessions_opened == 1  # one session for all of it
    finally:
        await mcp.close()


async def test_a_failing_tool_is_an_error_result(server: McpServerProcess) -> None:
    mcp = provider(server.url)
    try:
        failed = await mcp.call("mcp:testsrv/fail", {"reason": "disk full"}, 5)
        assert not failed.ok and "fail" in failed.content
        missing = await mcp.call("mcp:testsrv/no_such_tool", {}, 5)
        assert not missing.ok and missing.content
        bad_args = await mcp.call("mcp:testsrv/add", {"a": "two"}, 5)
        assert not bad_args.ok
        other = await mcp.call("mcp:otherserver/add", {"a": 1, "b": 2}, 5)
        assert not other.ok and other.content.startswith("unknown tool")
        # The session survived all of it.
        assert (await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 5)).content == "3"
    finally:
        await mcp.close()


async def test_enabled_tools_approval_and_secret_headers(server: McpServerProcess) -> None:
    mcp = provider(
        server.url,
        enabled_tools=frozenset({"add", "whoami"}),
        approval="ask",
        headers={"Authorization": "Bearer s3cret-token"},
    )
    try:
        tools = await mcp.list_tools()
        assert [(t.name, t.approval) for t in tools] == [
            ("mcp:testsrv/add", "ask"),
            ("mcp:testsrv/whoami", "ask"),
        ]
        disabled = await mcp.call("mcp:testsrv/echo", {"text": "x"}, 5)
        assert not disabled.ok and "not enabled" in disabled.content
        who = await mcp.call("mcp:testsrv/whoami", {}, 5)
        assert who.ok and who.content == "Bearer s3cret-token"  # the configured header was sent
    finally:
        await mcp.close()


async def test_results_are_cut_by_the_toolbox(server: McpServerProcess) -> None:
    mcp = provider(server.url)
    box = ToolBox([mcp], ToolLimits(timeout=5, result_max_chars=1000))
    try:
        result = await box.call("mcp:testsrv/big", {"chars": 50_000})
        assert result.ok and result.cut and len(result.content) <= 1000
    finally:
        await mcp.close()


async def test_a_server_that_is_down_fails_clearly() -> None:
    mcp = provider(f"http://127.0.0.1:{free_port()}/mcp")
    try:
        assert await mcp.list_tools() == []
        assert mcp.status == "unreachable" and mcp.connect_attempts == 1
        # The next answers' listings do not try again at once (backoff); a refresh does.
        assert await mcp.list_tools() == [] and mcp.connect_attempts == 1
        assert await mcp.refresh() == [] and mcp.connect_attempts == 2
        result = await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 5)
        assert not result.ok
        assert result.content == "MCP server 'testsrv' is unreachable (connection refused)"
    finally:
        await mcp.close()


async def test_a_hanging_server_times_out_and_recovers(server: McpServerProcess) -> None:
    mcp = provider(server.url)
    try:
        assert (await mcp.call("mcp:testsrv/add", {"a": 1, "b": 1}, 5)).ok
        hung_tool = await mcp.call("mcp:testsrv/hang", {}, 0.5)
        assert not hung_tool.ok and hung_tool.content == "MCP server 'testsrv' did not answer within 0.5 s"
        server.pause()  # the port still accepts connections; nothing answers
        stalled = await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 1)
        assert not stalled.ok and stalled.content == "MCP server 'testsrv' did not answer within 1 s"
        server.resume()
        assert (await mcp.call("mcp:testsrv/add", {"a": 2, "b": 2}, 5)).content == "4"
    finally:
        await mcp.close()


async def test_a_server_that_hangs_before_the_first_session_times_out(server: McpServerProcess) -> None:
    server.pause()
    mcp = provider(server.url, connect_timeout=1.0)
    try:
        assert await mcp.list_tools() == []
        assert (
            mcp.status == "unreachable"
            and mcp.status_detail == "MCP server 'testsrv' did not answer within 1 s"
        )
        result = await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 2)
        assert not result.ok and "did not answer within" in result.content
    finally:
        server.resume()
        await mcp.close()


async def test_a_server_killed_mid_call_fails_the_call_at_once(
    server: McpServerProcess, tmp_path: Path
) -> None:
    mcp = provider(server.url)
    try:
        assert (await mcp.call("mcp:testsrv/add", {"a": 1, "b": 1}, 5)).ok
        call = asyncio.ensure_future(mcp.call("mcp:testsrv/hang", {}, 60))
        assert await until(lambda: (tmp_path / "hang-started").exists(), timeout=20)
        server.kill()
        result = await asyncio.wait_for(call, 30)
        assert not result.ok
        assert "did not answer within 60 s" not in result.content  # it ended with the connection
    finally:
        await mcp.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_restarted_server_is_reconnected(server: McpServerProcess, mode: str) -> None:
    # "legacy" keeps a server-side session id, which the restarted server no longer knows.
    mcp = provider(server.url, mode=mode)
    try:
        assert (await mcp.call("mcp:testsrv/add", {"a": 1, "b": 1}, 5)).content == "2"
        await server.restart()
        result = await mcp.call("mcp:testsrv/add", {"a": 2, "b": 3}, 10)
        assert result.ok and result.content == "5", result.content
        assert [t.name for t in await mcp.list_tools()][:1] == ["mcp:testsrv/add"]
        assert mcp.status == "connected"
    finally:
        await mcp.close()


# -- the SSRF guard ------------------------------------------------------------------------
@pytest.fixture
async def site() -> AsyncIterator[SiteServer]:
    """A plain local HTTP server that records every request: proof that nothing arrived."""
    server = await SiteServer().start()
    yield server
    await server.stop()


@pytest.mark.parametrize("spelling", [s for s in LOOPBACK if s.live], ids=lambda s: s.id)
async def test_mcp_urls_spelling_this_machine_are_refused(site: SiteServer, spelling: Spelling) -> None:
    mcp = provider(spelling.url(site.port, "/mcp"), policy=GUARDED)
    try:
        assert await mcp.list_tools() == []
        assert mcp.status == "blocked" and mcp.status_detail == spelling.reason
        result = await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 5)
        assert not result.ok
        assert result.content == f"MCP server 'testsrv' refused by the SSRF guard: {spelling.reason}"
    finally:
        await mcp.close()
    assert site.hits == []


@pytest.mark.parametrize("spelling", INTERNAL, ids=lambda s: s.id)
async def test_mcp_urls_of_private_and_metadata_addresses_are_refused(spelling: Spelling) -> None:
    # Refused before any connection (these addresses are never connected to).
    mcp = provider(spelling.url(80, "/mcp"), policy=GUARDED)
    try:
        result = await mcp.call("mcp:testsrv/add", {}, 5)
        assert result.content == f"MCP server 'testsrv' refused by the SSRF guard: {spelling.reason}"
        assert mcp.sessions_opened == 0
    finally:
        await mcp.close()


async def test_dns_rebinding_is_refused_at_connect_time(site: SiteServer) -> None:
    # The name is public when the URL is checked, loopback when the connection is made.
    resolver = StaticResolver(
        {"mcp.rebind.example": ["93.184.216.34"]}, then={"mcp.rebind.example": ["127.0.0.1"]}
    )
    mcp = McpToolProvider(
        McpServerConfig(name="testsrv", url=f"http://mcp.rebind.example:{site.port}/mcp"),
        policy=GUARDED,
        resolver=resolver,
        connect_timeout=15.0,
    )
    try:
        result = await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 5)
    finally:
        await mcp.close()
    assert result.content == "MCP server 'testsrv' refused by the SSRF guard: private address"
    assert resolver.calls.count("mcp.rebind.example") >= 2  # checked, then resolved again to connect
    assert site.hits == []


async def test_an_allow_listed_internal_name_reaches_its_server(server: McpServerProcess) -> None:
    resolver = StaticResolver({"mcp.internal": ["127.0.0.1"]})
    mcp = McpToolProvider(
        McpServerConfig(name="testsrv", url=f"http://mcp.internal:{server.port}/mcp"),
        policy=AddressPolicy(allowed_ports=None, allowed=AllowList.parse("mcp.internal")),
        resolver=resolver,
        connect_timeout=15.0,
    )
    try:
        result = await mcp.call("mcp:testsrv/add", {"a": 20, "b": 1}, 5)
    finally:
        await mcp.close()
    assert result.ok and result.content == "21"


async def test_an_allow_list_entry_opens_only_itself(server: McpServerProcess) -> None:
    # 127.0.0.2 is listed; the server on 127.0.0.1 stays refused.
    only_other = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("127.0.0.2"))
    mcp = provider(server.url, policy=only_other)
    try:
        result = await mcp.call("mcp:testsrv/add", {"a": 1, "b": 2}, 5)
    finally:
        await mcp.close()
    assert result.content == "MCP server 'testsrv' refused by the SSRF guard: private address"
    assert ipaddress.ip_address("127.0.0.1") not in only_other.allowed_addresses
