from __future__ import annotations

import pytest

STORES = ("sqlite", "clickhouse")


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The store a real server runs on, for tests about the API rather than one store:
    None for SQLite in the test's data directory, else a fresh ClickHouse database."""
    if request.param == "clickhouse":
        url: str = request.getfixturevalue("clickhouse_url")
        return url
    return None
