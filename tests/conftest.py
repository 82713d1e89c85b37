"""The shared fixtures live in the tests/support/plugin.py pytest plugin (registered here,
once); `backend` and `.` are on the import path through pytest's `pythonpath` setting."""

pytest_plugins = ["tests.support.plugin"]
