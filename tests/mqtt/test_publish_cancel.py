"""A cancelled wait of the MQTT client is cancelled, even when what it waits for arrives in
the same turn of the loop. On Python 3.11 ``asyncio.wait_for`` returns the result in that
race and swallows the cancellation; inside the MQTT session's task group that left one pump
running while the others waited for it for ever: a link that never reconnected while the
gateway said ``online``. These drive the race on purpose with paho's own publish replaced
(no broker needed for the race itself; the link against a real mosquitto is in
test_link.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
import pytest

from gateway.mqtt.link import _Client


@dataclass
class _Info:
    mid: int
    rc: int = mqtt.MQTT_ERR_SUCCESS

    def is_published(self) -> bool:
        return False


def race(wait: Callable[[_Client], Coroutine[Any, Any, Any]],
         arrive: Callable[[_Client], None]) -> str:
    """Start ``wait`` on a client, then in one turn of the loop let what it waits for
    ``arrive`` and cancel it: ``"cancelled"`` or ``"returned"``."""
    async def scenario() -> str:
        client = _Client(hostname="127.0.0.1", port=1)  # never connected
        client._client.publish = lambda *a: _Info(1)  # type: ignore[method-assign]
        task = asyncio.create_task(wait(client))
        await asyncio.sleep(0)  # the wait has begun

        def arrive_and_cancel() -> None:
            arrive(client)
            task.cancel()

        asyncio.get_running_loop().call_soon(arrive_and_cancel)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "returned"

    return asyncio.run(scenario())


def test_a_cancel_that_races_the_pubacks_is_not_swallowed() -> None:
    outcome = race(lambda c: c.publish_many([("t", "x", False)], timeout=10),
                   lambda c: c._on_publish(None, None, 1))
    assert outcome == "cancelled"


def test_aiomqtts_own_waits_do_not_swallow_a_cancel_either() -> None:
    """Connect, subscribe and single publishes wait through aiomqtt's ``_wait_for``, which
    the gateway's client replaces for the same reason."""
    answers: list[asyncio.Future[str]] = []

    def wait(client: _Client) -> Coroutine[Any, Any, Any]:
        answers.append(asyncio.get_running_loop().create_future())
        return client._wait_for(answers[0], timeout=10)

    assert race(wait, lambda c: answers[0].set_result("suback")) == "cancelled"


def test_a_wait_that_runs_out_is_an_mqtt_error() -> None:
    async def scenario() -> None:
        client = _Client(hostname="127.0.0.1", port=1)
        await client._wait_for(asyncio.get_running_loop().create_future(), timeout=0.01)

    with pytest.raises(aiomqtt.MqttError, match="timed out"):
        asyncio.run(scenario())
