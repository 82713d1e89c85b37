"""Shapes of message deletion, feedback, continuation and the prompt library."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gust.handlers.schemas import DEPRECATED_ALIAS, Strict


class FeedbackIn(Strict):
    rating: Literal[1, -1, 0] = Field(description="1 thumbs up, -1 thumbs down, 0 clears the rating")
    comment: str | None = Field(None, max_length=2000)


class ContinuedOut(BaseModel):
    message_id: str
    generation_id: str = Field(description=DEPRECATED_ALIAS, deprecated=True)


class ModelFeedbackOut(BaseModel):
    model: str
    up: int
    down: int


class FeedbackCountsOut(BaseModel):
    items: list[ModelFeedbackOut]


class PromptCreateIn(Strict):
    name: str = Field(max_length=200)
    command: str = Field(max_length=64, description="run with /command; a slug, unique per owner")
    body: str = Field(max_length=20_000, description="may hold {{variables}}")
    team: bool = Field(False, strict=True, description="a team prompt (team admins only)")


class PromptPatchIn(Strict):
    name: str | None = Field(None, max_length=200)
    command: str | None = Field(None, max_length=64)
    body: str | None = Field(None, max_length=20_000)


class PromptOut(BaseModel):
    id: str
    name: str
    command: str
    body: str
    team_id: str | None
    version: int
    variables: list[str]
    created_at: str
    updated_at: str


class PromptListOut(BaseModel):
    items: list[PromptOut]
