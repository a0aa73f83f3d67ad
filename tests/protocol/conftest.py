"""Shared fixtures for the SGP protocol tests."""

from __future__ import annotations

import pytest

from netemu.protocol.vectors import load_vectors


@pytest.fixture(scope="session")
def vectors() -> list[dict]:
    return load_vectors()


def vector_ids(kind: str) -> list[dict]:
    return [v for v in load_vectors() if v["kind"] == kind]
