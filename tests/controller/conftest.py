"""Fixtures of the controller tests."""

from __future__ import annotations

import pytest

from tests.controller.sitekit import MISONO, NOON_UTC
from gridctl.config import load_site


@pytest.fixture(scope="session")
def misono():
    """The Misono reference site, loaded from configs/misono.yaml."""
    return load_site(MISONO)


@pytest.fixture()
def now():
    """Monday 2026-08-03 12:07 JST."""
    return NOON_UTC
