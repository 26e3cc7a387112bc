"""Locate the conformance data that lives outside the project (it is not ours to ship)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_ENV = "VALUE_EXPORTER_SHARED"
REQUIRE_ENV = "VALUE_EXPORTER_REQUIRE_SHARED"
REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """The shared data folder: $VALUE_EXPORTER_SHARED, else ../shared beside the checkout."""
    configured = os.environ.get(SHARED_ENV)
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared"


def require_shared(relative: str, what: str, upstream: str) -> Path:
    """The path of a piece of shared data; skip (or, in CI, fail) when it is absent."""
    path = shared_root() / relative
    if path.exists():
        return path
    message = (
        f"{what} not found at {path}; it comes from {upstream}. "
        f"Set {SHARED_ENV} to the folder holding it."
    )
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
