"""Shared pytest configuration: fixture plugins for real servers on loopback."""

pytest_plugins = [
    "tests.fixtures.emulators",
    "tests.fixtures.influxdb",
]
