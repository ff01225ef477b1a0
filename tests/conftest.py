"""Fixtures shared across the test packages: one headless Chromium per test session.

The browser is Debian's ``chromium`` (``make test`` installs it); a missing
browser fails the tests that need it rather than skipping them. Playwright's
synchronous API runs an event loop for as long as it is open, so every test
that drives the browser shares this one session-wide instance.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def chromium_path() -> str:
    """The system Chromium, or a failed test naming the package to install."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is missing: install the Debian package chromium (make browser)")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium, launched once per session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()
