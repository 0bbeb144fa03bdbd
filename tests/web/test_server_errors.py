"""A fault of the server's own is a 500 (or a store failure a 503) in the one error shape,
with nothing of the exception in the answer; the log has the details."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from eventtally.domain.model import PERMISSIONS, SeriesQuery
from eventtally.errors import StoreError
from eventtally.store.base import new_secret
from eventtally.store.memory import MemoryStore
from eventtally.web.app import create_app


class Broken(MemoryStore):
    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.failure = failure

    def count_series(self, query: SeriesQuery) -> list[int]:
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        (RuntimeError("secret internals /etc/passwd"), 500, "internal error"),
        (StoreError("the store failed: disk I/O error at page 7"), 503, "unavailable"),
    ],
)
def test_unexpected_failures_keep_the_error_shape(
    failure: Exception, status: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Broken(failure)
    workspace = store.create_workspace("w", "UTC", 0)
    key = new_secret()
    store.add_key(workspace.id, "k", key, frozenset(PERMISSIONS), 0)
    with (
        caplog.at_level(logging.ERROR, logger="eventtally.web"),
        TestClient(create_app(store), raise_server_exceptions=False) as client,
    ):
        response = client.get(
            "/events/data_series",
            params={"event": "e", "length": 1},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["message"]
    assert message in body["message"]
    assert "Traceback" not in response.text
    assert str(failure) not in response.text
    assert any(str(failure) in record.getMessage() or record.exc_info for record in caplog.records)
