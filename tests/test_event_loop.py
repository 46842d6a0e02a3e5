"""Every mailpool process runs on uvloop unless MAILPOOL_UVLOOP=0."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from mailpool_server import event_loop
from mailpool_server.startup import BadSetting


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_processes_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILPOOL_UVLOOP", raising=False)
    assert isinstance(event_loop.run(_running_loop()), uvloop.Loop)


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOOL_UVLOOP", "0")
    loop = event_loop.run(_running_loop())
    assert not isinstance(loop, uvloop.Loop)
    assert isinstance(loop, asyncio.BaseEventLoop)


def test_a_mistyped_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPOOL_UVLOOP", "fast")
    with pytest.raises(BadSetting, match="MAILPOOL_UVLOOP"):
        event_loop.run(_running_loop())
