"""The streaming tests' fixtures: a fake OpenAI upstream and the app using it as its model."""

from tests.streaming.conftest import start_stream_app, stream_app, upstream, user

__all__ = ["start_stream_app", "stream_app", "upstream", "user"]
