"""How the composition root builds the tool box from the settings (issue 21).

gust/runtime.py calls `build_toolbox(settings, research=...)` once and enters the box's
close into its exit stack (MCP servers are passed once they have their admin API).
Research's fetcher, extractor and SearxNG client are shared, not duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence

from gust.adapters.tools.builtin import BuiltinTools
from gust.adapters.tools.mcp import McpServerConfig, McpToolProvider
from gust.adapters.web.guard import AddressPolicy, AddressResolver, AllowList
from gust.config import Settings
from gust.ports.tools import ToolProvider
from gust.services.research import ResearchService
from gust.services.tools import ToolBox, ToolLimits


def mcp_policy(settings: Settings) -> AddressPolicy:
    """MCP servers are user-facing URLs like agents' webhooks: any port, private hosts only
    when SSRF_ALLOWED_HOSTS lists them (RESEARCH_ALLOW_PRIVATE does not apply)."""
    return AddressPolicy(allowed_ports=None, allowed=AllowList.parse(settings.ssrf_allowed_hosts))


def mcp_provider(
    settings: Settings, config: McpServerConfig, *, resolver: AddressResolver | None = None
) -> McpToolProvider:
    return McpToolProvider(
        config, policy=mcp_policy(settings), resolver=resolver, connect_timeout=settings.mcp_connect_timeout_s
    )


def build_toolbox(
    settings: Settings,
    *,
    research: ResearchService | None = None,
    mcp_servers: Sequence[McpServerConfig] = (),
) -> ToolBox:
    """The built-in tools (fetch_url and web_search through research's ports when research
    exists) and one provider per MCP server, under the TOOL_* limits."""
    builtin = BuiltinTools(
        fetcher=research.fetcher if research else None,
        extractor=research.extractor if research else None,
        search=research.search if research and research.search.configured else None,  # no SEARXNG_URL: none
        page_chars=settings.tool_result_max_chars,
    )
    providers: list[ToolProvider] = [builtin]
    providers += [mcp_provider(settings, server) for server in mcp_servers]
    return ToolBox(providers, ToolLimits.from_settings(settings))
