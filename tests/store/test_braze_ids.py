"""User ids are drawn ahead in bulk; each is still random, unique and new after a fork."""

from __future__ import annotations

import os
import re

import pytest

from eventtally.store import base
from eventtally.store.base import new_braze_id


def test_ids_are_24_hex_characters_and_unique_across_draws() -> None:
    ids = [new_braze_id() for _ in range(5_000)]  # several draws of 1,024
    assert all(re.fullmatch("[0-9a-f]{24}", each) for each in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_process_draws_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    new_braze_id()
    left = set(base._DRAW.ids)
    monkeypatch.setattr(os, "getpid", lambda: -1)  # what a forked child sees
    assert new_braze_id() not in left
    assert left.isdisjoint(base._DRAW.ids)
