"""MODELS_FILE: parsing, start-up refusal with a precise message, and model choice over the API."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from gust.config import ConfigError
from gust.services.model_registry import ModelRegistry, ModelsFileError, load_models_file
from tests.models.conftest import PROVIDER_ENV
from tests.streaming.helpers import stream
from tests.support.app_server import ServerProcess, make_settings, start_app
from tests.support.env import free_port
from tests.support.fake_upstream import FakeUpstream
from tests.support.plugin import StartApp


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ModelsFileError) as info:
        load_models_file(path)
    return str(info.value)


# -- parsing ------------------------------------------------------------------------------------
def test_yaml_mapping_and_json_list_are_both_accepted(tmp_path: Path) -> None:
    yaml_file = write(
        tmp_path,
        "models.yaml",
        """
models:
  - id: kimi
    upstream_model: kimi-k2-0905-preview
    base_url: https://api.moonshot.ai/v1
    api_key_env: MOONSHOT_API_KEY
    display_name: Kimi
    features: [streaming, long-context]
    context_window: 262144
    max_output_tokens: 16384
    default_temperature: 0.6
    price_input_per_million: 0.6
    price_output_per_million: 2.5
  - id: ollama-llama
    base_url: http://localhost:11434/v1
""",
    )
    entries = load_models_file(yaml_file)
    assert [e.id for e in entries] == ["kimi", "ollama-llama"]
    assert entries[0].upstream_model == "kimi-k2-0905-preview" and entries[0].max_output_tokens == 16384
    assert entries[1].context_window == 8192 and entries[1].max_output_tokens == 4096  # defaults
    json_file = write(tmp_path, "models.json", json.dumps([{"id": "a", "base_url": "http://h/v1"}]))
    assert [e.id for e in load_models_file(json_file)] == ["a"]


def test_small_context_window_gets_a_fitting_answer_budget(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "- {id: tiny, base_url: 'http://h/v1', context_window: 1024}\n")
    assert load_models_file(path)[0].max_output_tokens == 512


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- {id: a, base_url: 'http://h/v1', context_window: lots}", "entry 0 ('a'): field 'context_window'"),
        ("- {id: a, provider: openai}", "entry 0 ('a'): field 'base_url': base_url is required"),
        ("- {id: a, base_url: 'ftp://h'}", "entry 0 ('a'): field 'base_url': base_url must start with http"),
        ("- {id: a, base_url: 'http://h/v1', colour: red}", "entry 0 ('a'): field 'colour': Extra inputs"),
        ("- {id: a, base_url: 'http://h/v1', provider: anthropic}", "entry 0 ('a'): field 'provider'"),
        ("- {id: 'a b', base_url: 'http://h/v1'}", "entry 0 ('a b'): field 'id'"),
        ("- {base_url: 'http://h/v1'}", "entry 0: field 'id': Field required"),
        (
            "- {id: a, base_url: 'http://h/v1', context_window: 4096, max_output_tokens: 4096}",
            "entry 0 ('a'): field 'max_output_tokens': must be less than context_window",
        ),
        (
            "- {id: a, base_url: 'http://h/v1', max_output_tokens: 100, default_max_tokens: 200}",
            "entry 0 ('a'): field 'default_max_tokens'",
        ),
        (
            "- {id: a, base_url: 'http://h/v1'}\n- {id: a, base_url: 'http://h/v1'}",
            "entry 1 ('a'): field 'id': duplicate model id 'a'",
        ),
        ("models: {id: a}", "expected a list of models"),
        ("models: [\n  - {id: a", "not valid YAML"),
    ],
)
def test_errors_name_the_file_the_entry_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "models.yaml", text)
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read models file" in error_of(tmp_path / "absent.yaml")


def test_models_whose_key_is_unset_are_not_usable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        "- {id: keyed, base_url: 'http://h/v1', api_key_env: SOME_KEY}\n- {id: open, base_url: 'http://h/v1'}",
    )

    def factory(spec: object) -> object:
        raise AssertionError("no adapter is built until a model is used")

    registry = ModelRegistry(load_models_file(path), factory, env={})  # type: ignore[arg-type]
    assert list(registry.specs) == ["open"] and registry.default_id == "open"
    registry = ModelRegistry(load_models_file(path), factory, env={"SOME_KEY": "k"})  # type: ignore[arg-type]
    assert list(registry.specs) == ["keyed", "open"] and registry.specs["keyed"].api_key == "k"


# -- start-up ---------------------------------------------------------------------------------
async def test_server_refuses_to_start_with_a_broken_models_file(tmp_path: Path) -> None:
    models = write(
        tmp_path,
        "models.yaml",
        "models:\n"
        "  - id: fine\n    base_url: http://127.0.0.1:9/v1\n"
        "  - id: broken\n    base_url: http://127.0.0.1:9/v1\n    context_window: lots\n",
    )
    env = {name: "" for name in PROVIDER_ENV}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "MODELS_FILE": str(models),
            "LOCAL_MODEL": "false",
            "AUTH_SECRET_KEY": "models-file-test-secret-0123456789-abcdefghij",
        }
    )
    proc = ServerProcess.gust(env, free_port())
    try:
        code = await proc.wait_exit(timeout=60)
        output = proc.log()
    finally:
        proc.kill()
    assert code != 0, output
    assert f"{models}: entry 1 ('broken'): field 'context_window'" in output
    assert "Traceback" not in output


async def test_default_model_must_be_usable(tmp_path: Path, upstream: FakeUpstream) -> None:
    settings = make_settings(
        tmp_path / "data", models_file=upstream.models_file(tmp_path), default_model="gpt-9"
    )
    with pytest.raises(ConfigError, match="DEFAULT_MODEL 'gpt-9' is not a usable model \\(fake-model\\)"):
        await start_app(settings)


# -- choosing a model over the API -------------------------------------------------------------
async def test_unknown_model_is_422_naming_the_valid_ones(
    start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    (tmp_path / "two").mkdir()
    app = await start_stream_app(models_file=upstream.models_file(tmp_path / "two", ["fast", "smart"]))
    user = await app.sign_up(http, "m@example.com")
    models = await user.get("/api/models")
    assert [m["id"] for m in models.json["items"]] == ["fast", "smart"] and models.json["default"] == "fast"
    resp = await user.post("/chat/stream", {"message": "hi", "model": "gpt-9"})
    assert resp.status == 422, resp.text
    assert resp.json["error"]["field"] == "model"
    assert resp.json["error"]["message"] == "unknown or unusable model 'gpt-9'; valid models: fast, smart"
    events = await stream(user, {"message": "hi", "model": "smart"})
    assert events[0].data["model"] == "smart" and upstream.requests[-1]["model"] == "smart"
    chat_id, message_id = events[0].data["chat_id"], events[0].data["message_id"]
    for path, body in (
        (f"/api/chats/{chat_id}/messages", {"message": "again", "model": "nope"}),
        (f"/api/chats/{chat_id}/messages/{message_id}/regenerate", {"model": "nope"}),
        ("/chat/message", {"message": "hi", "model": "nope"}),
    ):
        resp = await user.post(path, body)
        assert resp.status == 422 and "valid models: fast, smart" in resp.json["error"]["message"], path
    resp = await user.post("/chat/stream", {"message": "hi", "model": "fast", "max_tokens": 4097})
    assert resp.status == 422 and resp.json["error"]["field"] == "max_tokens"
    assert "at most 4096" in resp.json["error"]["message"]
