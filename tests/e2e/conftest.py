"""Fixtures of the browser tests: one headless Chromium per test, on built web assets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.e2e.harness import check_built_assets, chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    problem = check_built_assets()
    if problem:
        pytest.fail(problem)
    async with chromium() as launched:
        yield launched
