"""The tool box as the composition root will build it: from the settings, with research's
ports and MCP servers behind SSRF_ALLOWED_HOSTS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pydantic
import pytest

from gust.adapters.tools.mcp import McpServerConfig, McpToolProvider
from gust.adapters.web.extract import HtmlExtractor
from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.searx import SearxClient
from gust.services.research import ResearchService
from gust.tools_wiring import build_toolbox
from tests.support.app_server import make_settings
from tests.support.env import free_port
from tests.support.mcp_server import McpServerProcess
from tests.support.site_server import SiteServer


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[McpServerProcess]:
    process = await McpServerProcess(free_port()).start()
    yield process
    process.kill()


def test_tool_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = make_settings(tmp_path)
    assert (defaults.tool_max_calls, defaults.tool_timeout_s, defaults.tool_result_max_chars) == (
        8,
        30.0,
        20_000,
    )
    monkeypatch.setenv("TOOL_MAX_CALLS", "3")
    monkeypatch.setenv("TOOL_TIMEOUT_S", "7.5")
    monkeypatch.setenv("TOOL_RESULT_MAX_CHARS", "5000")
    monkeypatch.setenv("TOOL_APPROVAL_TIMEOUT_S", "60")
    monkeypatch.setenv("MCP_CONNECT_TIMEOUT_S", "4")
    limits = build_toolbox(make_settings(tmp_path)).limits
    assert (limits.max_calls, limits.timeout, limits.result_max_chars, limits.approval_timeout) == (
        3,
        7.5,
        5000,
        60,
    )
    for name, bad in [("TOOL_MAX_CALLS", "0"), ("TOOL_TIMEOUT_S", "-1"), ("TOOL_RESULT_MAX_CHARS", "10")]:
        monkeypatch.setenv(name, bad)
        with pytest.raises(pydantic.ValidationError):
            make_settings(tmp_path)
        monkeypatch.delenv(name)


async def test_builtins_share_research_and_mcp_servers_pass_the_allow_list(
    tmp_path: Path, site: SiteServer, server: McpServerProcess
) -> None:
    settings = make_settings(tmp_path, ssrf_allowed_hosts="127.0.0.1", tool_result_max_chars=500)
    research = ResearchService(
        SafeFetcher(page_timeout=5), HtmlExtractor(), SearxClient(site.url(""), user_agent="test")
    )
    box = build_toolbox(settings, research=research, mcp_servers=[McpServerConfig("calc", server.url)])
    try:
        names = [t.name for t in await box.list_tools()]
        assert names[:3] == ["current_time", "fetch_url", "web_search"]
        assert "mcp:calc/add" in names
        assert (await box.call("mcp:calc/add", '{"a": 1, "b": 2}')).content == "3"
        big = await box.call("mcp:calc/big", {"chars": 5000})
        assert big.ok and big.cut and len(big.content) <= 500
    finally:
        await box.close()
        await research.search.close()


async def test_without_the_allow_list_a_loopback_mcp_server_is_refused(
    tmp_path: Path, server: McpServerProcess
) -> None:
    box = build_toolbox(make_settings(tmp_path), mcp_servers=[McpServerConfig("calc", server.url)])
    try:
        assert [t.name for t in await box.list_tools()] == ["current_time"]
        refused = await box.call("mcp:calc/add", {"a": 1, "b": 2})
        assert not refused.ok
        assert refused.content == "MCP server 'calc' refused by the SSRF guard: private address"
        assert (await box.call("mcp:other/add", {})).content == "unknown tool 'mcp:other/add'"
    finally:
        await box.close()


async def test_an_unknown_name_never_reaches_any_server(tmp_path: Path) -> None:
    down = McpServerConfig("calc", f"http://127.0.0.1:{free_port()}/mcp")
    box = build_toolbox(make_settings(tmp_path, ssrf_allowed_hosts="127.0.0.1"), mcp_servers=[down])
    try:
        for _ in range(3):  # a model repeating a name it made up
            result = await box.call("delete_everything", {})
            assert not result.ok and result.content == "unknown tool 'delete_everything'"
        provider = box.providers[1]
        assert isinstance(provider, McpToolProvider)
        assert provider.status == "idle" and provider.sessions_opened == 0  # no connection tried
    finally:
        await box.close()
