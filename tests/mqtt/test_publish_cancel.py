"""A cancelled batch publish is cancelled, even when its PUBACKs arrive in the same turn of
the loop. On Python 3.11 ``asyncio.wait_for`` returns the result in that race and swallows
the cancellation; inside the MQTT session's task group that left one pump running while
the others waited for it for ever: a link that never reconnected while the gateway said
``online``. This drives the race on purpose with paho's own publish replaced (no broker
needed for the race itself; the link's behaviour against a real mosquitto is in
test_link.py)."""

from __future__ import annotations

import asyncio
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


def test_a_cancel_that_races_the_pubacks_is_not_swallowed() -> None:
    async def scenario() -> str:
        client = _Client(hostname="127.0.0.1", port=1)  # never connected: paho is stubbed
        mids = iter(range(1, 100))

        def publish(topic: str, payload: Any, qos: int, retain: bool) -> _Info:
            return _Info(next(mids))

        client._client.publish = publish  # type: ignore[method-assign]
        task = asyncio.create_task(client.publish_many([("t", "x", False)], timeout=10))
        await asyncio.sleep(0)  # the batch is waiting for its PUBACK

        def puback_and_cancel() -> None:  # both in one turn of the loop
            client._on_publish(None, None, 1)
            task.cancel()

        asyncio.get_running_loop().call_soon(puback_and_cancel)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "returned"

    assert asyncio.run(scenario()) == "cancelled"


def test_aiomqtts_own_waits_do_not_swallow_a_cancel_either() -> None:
    """Connect, subscribe and single publishes wait through aiomqtt's ``_wait_for``, which
    the gateway's client replaces for the same reason."""
    async def scenario() -> str:
        client = _Client(hostname="127.0.0.1", port=1)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()
        task = asyncio.create_task(client._wait_for(answer, timeout=10))
        await asyncio.sleep(0)

        def answer_and_cancel() -> None:
            answer.set_result("suback")
            task.cancel()

        loop.call_soon(answer_and_cancel)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "returned"

    assert asyncio.run(scenario()) == "cancelled"


def test_a_wait_that_runs_out_is_an_mqtt_error() -> None:
    async def scenario() -> None:
        client = _Client(hostname="127.0.0.1", port=1)
        await client._wait_for(asyncio.get_running_loop().create_future(), timeout=0.01)

    with pytest.raises(aiomqtt.MqttError, match="timed out"):
        asyncio.run(scenario())
