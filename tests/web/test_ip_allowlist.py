"""A key's IP allowlist, and when `X-Forwarded-For` is believed."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventtally.errors import EventtallyError
from eventtally.settings import Settings
from eventtally.store.memory import MemoryStore
from eventtally.web.app import create_app
from tests.support import running_api


def get_list(api: object, key: str, forwarded: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return api.client.get("/events/list", headers=headers).status_code  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("peer", "networks", "status"),
    [
        ("10.1.2.3", ("10.0.0.0/8",), 200),
        ("10.1.2.3", ("192.168.0.0/16", "10.1.2.3/32"), 200),
        ("11.1.2.3", ("10.0.0.0/8",), 403),
        ("::1", ("::1/128",), 200),
        ("::2", ("::1/128",), 403),
        ("11.1.2.3", (), 200),
    ],
)
def test_allowlist_on_the_peer(
    tmp_path: Path, peer: str, networks: tuple[str, ...], status: int
) -> None:
    with running_api(tmp_path, peer=peer) as api:
        key = api.new_key("events.list", networks=networks)
        assert get_list(api, key) == status
        if status == 403:
            response = api.client.get("/events/list", headers={"Authorization": f"Bearer {key}"})
            assert response.json() == {"message": f"this API key may not be used from {peer}"}


def test_forwarded_for_is_ignored_from_untrusted_peers(tmp_path: Path) -> None:
    with running_api(tmp_path, peer="203.0.113.9") as api:
        key = api.new_key("events.list", networks=("10.0.0.0/8",))
        # A client cannot claim an allowed address by sending the header itself.
        assert get_list(api, key, forwarded="10.1.1.1") == 403


def test_forwarded_for_is_believed_from_trusted_proxies(tmp_path: Path) -> None:
    settings = Settings(trusted_proxies="127.0.0.1, 172.16.0.0/12")
    with running_api(tmp_path, peer="127.0.0.1", settings=settings) as api:
        key = api.new_key("events.list", networks=("10.0.0.0/8",))
        assert get_list(api, key, forwarded="10.1.1.1") == 200
        # The nearest untrusted hop counts; hops to its left could be forged by the client.
        assert get_list(api, key, forwarded="10.9.9.9, 203.0.113.9, 172.16.0.5") == 403
        assert get_list(api, key, forwarded="203.0.113.9, 10.1.1.1, 172.16.0.5") == 200
        assert get_list(api, key) == 403  # no header: the proxy's own address


def test_a_bad_trusted_proxies_setting_is_one_clear_error() -> None:
    with pytest.raises(EventtallyError, match="EVENTTALLY_TRUSTED_PROXIES"):
        create_app(MemoryStore(), Settings(trusted_proxies="10.0.0.0/8, nonsense"))
