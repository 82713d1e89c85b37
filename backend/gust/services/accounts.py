"""The account services of a process, grouped for the handlers (built in gust/runtime.py)."""

from __future__ import annotations

from dataclasses import dataclass

from gust.services.agents import AgentService
from gust.services.api_keys import ApiKeyService
from gust.services.oauth.service import OAuthService
from gust.services.teams import TeamService


@dataclass(slots=True)
class AccountServices:
    teams: TeamService
    api_keys: ApiKeyService
    agents: AgentService
    oauth: OAuthService
