"""Shared pytest configuration: fixture plugins for real servers on loopback."""

import os

import pytest

pytest_plugins = [
    "tests.fixtures.emulators",
    "tests.fixtures.influxdb",
]


@pytest.fixture(autouse=True, scope="session")
def _private_runtime_dir(tmp_path_factory):
    """Site locks of daemons started by tests (also in subprocesses) go to a private folder,
    never to /run/gridctl where a real daemon or another test run would hold them."""
    os.environ["GRIDCTL_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("gridctl-run"))
    yield
