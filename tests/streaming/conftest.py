"""The streaming tests' fixtures (`upstream`, `start_stream_app`, `stream_app`, `user`) are the
plugin's (tests/support/plugin.py); `StartApp` stays importable from here."""

from tests.support.plugin import StartApp

__all__ = ["StartApp"]
