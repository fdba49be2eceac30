"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["store", "hdf5", "parquet"])
def layout(request: pytest.FixtureRequest) -> str:
    return request.param
