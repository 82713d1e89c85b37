"""The route table of the API (the frontend's routes are added by GustApplication)."""

from __future__ import annotations

from tornado.routing import Rule

from gust.handlers import admin, agents, api_keys, auth, chats, health, meta, oauth, stream
from gust.handlers import exports as export_handlers
from gust.handlers import files as file_handlers
from gust.handlers import messages as message_handlers
from gust.handlers import openai_api as openai_handlers
from gust.handlers import prompts as prompt_handlers
from gust.handlers import search as search_handlers
from gust.handlers import shares as share_handlers
from gust.handlers import suggestions as suggestion_handlers
from gust.handlers import usage as usage_handlers
from gust.handlers import user_events as user_events_handlers


def api_handlers() -> list[Rule]:
    return [
        *health.default_handlers,
        *meta.default_handlers,
        *auth.default_handlers,
        *api_keys.default_handlers,
        *oauth.default_handlers,
        *admin.default_handlers,
        *agents.default_handlers,
        *chats.default_handlers,
        *message_handlers.default_handlers,
        *prompt_handlers.default_handlers,
        *export_handlers.default_handlers,
        *file_handlers.default_handlers,
        *stream.default_handlers,
        *search_handlers.default_handlers,
        *usage_handlers.default_handlers,
        *openai_handlers.default_handlers,
        *share_handlers.default_handlers,
        *suggestion_handlers.default_handlers,
        *user_events_handlers.default_handlers,
    ]
