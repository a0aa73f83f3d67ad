"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import REPO


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
