"""A full disk and a read-only data directory, on a real small filesystem (tmpfs).

Ingest answers 503 (retryable) while the store cannot write; the server stays up and
serves reads; nothing acknowledged is lost; ingest resumes when the space returns.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.smoke.server import init, serving

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)"),
]


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def body(batch: int) -> dict[str, object]:
    # Large properties fill the disk quickly; each batch lands on its own day.
    return {
        "events": [
            {
                "external_id": f"user-{batch}-{i}",
                "name": "fill",
                "time": f"2024-01-{1 + batch % 28:02d}T12:00:00Z",
                "properties": {"padding": "x" * 250, "more": ["y" * 250] * 20},
            }
            for i in range(75)
        ]
    }


def total(http: httpx.Client) -> int:
    response = http.get(
        "/events/data_series", params={"event": "fill", "length": 40, "ending_at": "2024-02-01"}
    )
    assert response.status_code == 200, response.text
    return sum(point["count"] for point in response.json()["data"])


def test_full_disk_then_space_returns(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", "6m") as fs:
        key = init(fs / "data", "UTC")["api_key"]
        with (
            serving(fs / "data", log=tmp_path / "server.log") as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as http,
        ):
            acknowledged = 0
            statuses = []
            for batch in range(400):
                response = http.post("/users/track", json=body(batch))
                statuses.append(response.status_code)
                if response.status_code == 201:
                    acknowledged += 75
                else:
                    assert response.status_code == 503, response.text
                    assert "retry" in response.json()["message"]
                    break
            assert statuses[-1] == 503, "the filesystem never filled up"
            assert acknowledged > 0
            # Still serving reads, with every acknowledged event.
            assert total(http) == acknowledged
            assert http.get("/healthz").status_code == 200
            # Space returns: ingest resumes, nothing lost or doubled.
            mount("-o", "remount,size=64m", str(fs))
            response = http.post("/users/track", json=body(399))
            assert response.status_code == 201, response.text
            assert total(http) == acknowledged + 75


def test_read_only_data_directory(tmp_path: Path) -> None:
    """A volume that is read-only when the server starts (Linux refuses to remount one
    read-only while the store holds its files open for writing, so this is how a store
    meets a read-only volume): reads served, ingest 503, then writable again."""
    with small_filesystem(tmp_path / "fs", "64m") as fs:
        key = init(fs / "data", "UTC")["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        with (
            serving(fs / "data", log=tmp_path / "server.log") as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as http,
        ):
            assert http.post("/users/track", json=body(1)).status_code == 201
        mount("-o", "remount,ro", str(fs))
        try:
            with (
                serving(fs / "data", log=tmp_path / "server.log") as server,
                httpx.Client(base_url=server.url, headers=headers, timeout=30) as http,
            ):
                response = http.post("/users/track", json=body(2))
                assert response.status_code == 503, response.text
                assert "read-only" in response.json()["message"]
                assert total(http) == 75
                assert http.get("/healthz").status_code == 200
        finally:
            mount("-o", "remount,rw", str(fs))
        with (
            serving(fs / "data", log=tmp_path / "server.log") as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as http,
        ):
            assert http.post("/users/track", json=body(3)).status_code == 201
            assert total(http) == 150
