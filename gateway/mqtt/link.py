"""The MQTT adapter (aiomqtt): publishes the journal, takes commands in (SPEC §3).

Reconnection is a plain outer loop with capped, jittered backoff. On every connection it
publishes ``gateway/status`` = ``online`` (the Last Will says ``offline``), republishes every
retained document, then drains the journal from its durable cursor: events go out in journal
order with QoS 1, pipelined, and the cursor moves only after the broker's PUBACK. While the
broker is away nothing is lost: events wait in the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as mqtt

from gateway.config.schema import SiteConfig, read_secret
from gateway.core.backoff import Backoff, BackoffCounter
from gateway.core.ports import Clock, MqttCommandCallback
from gateway.journal.store import Journal, Subscription

log = logging.getLogger(__name__)


CONSUMER = "mqtt"

#: QoS 1 publishes handed to paho at once, and paho's in-flight window
BATCH = 200


class _Batch:
    """QoS 1 publishes of one batch still waiting for their PUBACK."""

    __slots__ = ("done", "left")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.left: set[int] = set()
        self.done: asyncio.Future[None] = loop.create_future()

    def confirmed(self, mid: int) -> None:
        self.left.discard(mid)
        if not self.left and not self.done.done():
            self.done.set_result(None)


class _Client(aiomqtt.Client):
    """aiomqtt's client, plus a batch publish and an O(1) in-flight check.

    aiomqtt 2.x spends, per publish, a task (under ``gather``), an ``Event``, a timeout timer
    and two scans of every pending call; with the pipeline the gateway keeps that was the
    largest CPU cost per event on the loop (docs/benchmarks.md). :meth:`publish_many` hands
    a whole batch to paho in order and waits once for all its PUBACKs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batches: dict[int, _Batch] = {}

    async def publish_many(self, messages: list[tuple[str, str | bytes, bool]], *,
                           timeout: float) -> None:
        """Publish ``(topic, payload, retain)`` at QoS 1, in order; return when the broker
        has confirmed every one (raise ``aiomqtt.MqttError`` if it did not in ``timeout``)."""
        batch = _Batch(asyncio.get_running_loop())
        try:
            for topic, payload, retain in messages:
                info = self._client.publish(topic, payload, 1, retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
                if not info.is_published():
                    batch.left.add(info.mid)
                    self._batches[info.mid] = batch
            if batch.left:
                # asyncio.timeout, not wait_for: on 3.11 wait_for returns the result when
                # the PUBACKs and a cancellation arrive together, swallowing the cancel; the
                # session's other pumps then wait for this one for ever (a link that never
                # reconnects while the gateway says online)
                try:
                    async with asyncio.timeout(timeout):
                        await asyncio.shield(batch.done)
                except TimeoutError:
                    raise aiomqtt.MqttError("Operation timed out") from None
        finally:
            for mid in batch.left:
                self._batches.pop(mid, None)

    async def _wait_for(self, fut: Awaitable[Any], timeout: float | None) -> Any:
        """The wait of aiomqtt (connect, subscribe, a single publish, disconnect), with
        ``asyncio.timeout`` instead of ``asyncio.wait_for``: on Python 3.11 the latter
        swallows a cancellation that arrives with the result (see :meth:`publish_many`)."""
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(None if limit == math.inf else limit):
                return await fut
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None

    def _on_publish(self, client: Any, userdata: Any, mid: int, *args: Any) -> None:
        batch = self._batches.pop(mid, None)
        if batch is not None:
            batch.confirmed(mid)
        else:
            super()._on_publish(client, userdata, mid, *args)

    @contextlib.contextmanager
    def _pending_call(self, mid: int, value: Any, pending_dict: dict[int, Any]) -> Any:
        if (mid in self._pending_subscribes or mid in self._pending_unsubscribes
                or mid in self._pending_publishes or mid in self._batches):
            raise RuntimeError(f'There already exists a pending call for message ID "{mid}"')
        pending_dict[mid] = value
        try:
            yield
        finally:
            with contextlib.suppress(KeyError):
                del pending_dict[mid]


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to connect; built from ``[mqtt]`` by :func:`settings_from_config`."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    ca_file: str | None
    client_cert: str | None
    client_key: str | None
    keepalive_s: int
    client_id: str
    base: str  # "<prefix>/<site>"
    tls_insecure: bool = False


def settings_from_config(config: SiteConfig) -> BrokerSettings:
    """Broker settings from ``[mqtt]`` (secret files read, paths resolved)."""
    m = config.mqtt
    url = urlsplit(m.url)
    tls = url.scheme == "mqtts"
    return BrokerSettings(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8883 if tls else 1883),
        tls=tls,
        username=m.username,
        password=read_secret(config, m.password_file) if m.password_file else None,
        ca_file=str(config.resolve(m.ca_file)) if m.ca_file else None,
        client_cert=str(config.resolve(m.client_cert)) if m.client_cert else None,
        client_key=str(config.resolve(m.client_key)) if m.client_key else None,
        keepalive_s=m.keepalive_s,
        client_id=m.client_id or f"alarm-gateway-{config.site.id}",
        base=f"{m.prefix}/{config.site.id}",
        tls_insecure=m.tls_insecure,
    )


#: reconnecting to the broker: quickly at first, every 15 s at most, jittered so that many
#: gateways (and this one's restarts) do not hit a recovering broker in step
RECONNECT = Backoff(first_s=0.2, cap_s=15.0, jitter=0.5)


class MqttLink:
    """Owns the broker connection for the gateway's lifetime."""

    def __init__(self, settings: BrokerSettings, journal: Journal, clock: Clock) -> None:
        self.settings = settings
        self._journal = journal
        self._clock = clock
        self._client: aiomqtt.Client | None = None
        self._on_command: MqttCommandCallback | None = None
        self._extra_subscriptions: dict[str, Callable[[str, bytes], Awaitable[None]]] = {}
        self.connected = asyncio.Event()
        self.published = 0
        self.connects = 0
        self.last_error: str | None = None
        self.since: float | None = None
        self._stopping = False
        #: the last event seq the broker confirmed (PUBACK) in this process
        self.published_seq = 0

    def topic(self, suffix: str) -> str:
        return f"{self.settings.base}/{suffix}"

    def on_command(self, callback: MqttCommandCallback) -> None:
        """``callback(alarm_id, payload, retained=...)`` for each ``alarm/<id>/set``."""
        self._on_command = callback

    def subscribe_extra(self, topic: str, callback: Callable[[str, bytes], Awaitable[None]]) -> None:
        """Also subscribe to a full topic filter (e.g. ``homeassistant/status``)."""
        self._extra_subscriptions[topic] = callback

    def health(self) -> dict[str, Any]:
        return {
            "connected": self.connected.is_set(),
            "broker": f"{self.settings.host}:{self.settings.port}",
            "connects": self.connects,
            "published": self.published,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        """Connect, publish, reconnect; forever, until cancelled."""
        backoff = RECONNECT.counter()
        while not self._stopping:
            try:
                await self._session(backoff)
            except* aiomqtt.MqttError as group:
                self._lost(str(group.exceptions[0]))
            except* (OSError, ssl.SSLError) as group:
                self._lost(str(group.exceptions[0]))
            await asyncio.sleep(backoff.next())

    def _lost(self, error: str) -> None:
        if self.connected.is_set() or self.last_error != error:
            log.warning("event=broker_unreachable broker=%s:%s error=%r",
                        self.settings.host, self.settings.port, error)
        self.connected.clear()
        self._client = None
        self.last_error = error

    async def _session(self, backoff: BackoffCounter) -> None:
        try:
            async with self._make_client() as client:
                if self._stopping:  # a stop that raced the connection: leave cleanly
                    return
                self._client = client
                await self._serve(client, backoff)
        finally:
            self._client = None
            self.connected.clear()

    async def _serve(self, client: _Client, backoff: BackoffCounter) -> None:
        """One connected session: ``online``, subscriptions, then the pumps until it fails."""
        await client.publish(self.topic("gateway/status"), "online", qos=1, retain=True)
        await client.subscribe(self.topic("alarm/+/set"), qos=1)
        for extra in self._extra_subscriptions:
            await client.subscribe(extra, qos=1)
        backoff.reset()
        self.connects += 1
        self.last_error = None
        self.since = self._clock.wall()
        self.connected.set()
        log.info("event=broker_connected broker=%s:%s", self.settings.host, self.settings.port)
        sub = Subscription(self._journal, CONSUMER)
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pump_events(client, sub))
                tg.create_task(self._pump_retained(client))
                tg.create_task(self._read_messages(client))
        except BaseExceptionGroup:
            _forget_group_cancel(cancelling)
            raise
        finally:
            sub.close()

    @property
    def _publish_timeout_s(self) -> float:
        return max(10.0, float(self.settings.keepalive_s))

    def _make_client(self) -> _Client:
        client = self._new_client()
        client.pending_calls_threshold = 100_000  # we pipeline on purpose; no warning per batch
        return client

    def _new_client(self) -> _Client:
        s = self.settings
        tls_params = None
        if s.tls:
            tls_params = aiomqtt.TLSParameters(
                ca_certs=s.ca_file, certfile=s.client_cert, keyfile=s.client_key,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        return _Client(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            keepalive=s.keepalive_s,
            will=aiomqtt.Will(self.topic("gateway/status"), "offline", qos=1, retain=True),
            tls_params=tls_params,
            tls_insecure=s.tls_insecure if s.tls else None,
            clean_session=True,
            max_inflight_messages=BATCH,
            timeout=max(10.0, s.keepalive_s),
        )

    async def wait_published(self, seq: int, timeout_s: float = 1.0) -> bool:
        """Wait (at most ``timeout_s`` seconds) until event ``seq`` is confirmed by the
        broker; False when it was not (not connected, or slow)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.published_seq < seq:
            if not self.connected.is_set() or loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _pump_events(self, client: _Client, sub: Subscription) -> None:
        topic = self.topic("events")
        while True:
            events = await sub.next_batch(BATCH)
            await client.publish_many([(topic, e.to_json(), False) for e in events],
                                      timeout=self._publish_timeout_s)
            self.published += len(events)
            sub.advance(events[-1].seq)
            self.published_seq = events[-1].seq

    async def _pump_retained(self, client: _Client) -> None:
        """Republish every retained document on connect, then each change as committed."""
        version = 0
        wake = asyncio.Event()
        self._journal.add_listener(wake.set)
        try:
            while True:
                wake.clear()
                rows = self._journal.retained_after(version, BATCH)
                if not rows:
                    await wake.wait()
                    continue
                await client.publish_many(
                    [(self.topic(t), p if p is not None else b"", True) for _, t, p in rows],
                    timeout=self._publish_timeout_s)
                version = rows[-1][0]
        finally:
            self._journal.remove_listener(wake.set)

    async def _read_messages(self, client: aiomqtt.Client) -> None:
        prefix = self.topic("alarm/")
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
            if topic.startswith(prefix) and topic.endswith("/set"):
                alarm_id = topic[len(prefix):-len("/set")]
                await self._command(alarm_id, payload, retained=bool(message.retain))
            else:
                for pattern, callback in self._extra_subscriptions.items():
                    if aiomqtt.Topic(topic).matches(pattern):
                        await self._dispatch(callback, topic, payload)

    async def _command(self, alarm_id: str, payload: bytes, *, retained: bool) -> None:
        if self._on_command is None:
            return
        try:
            await self._on_command(alarm_id, payload, retained=retained)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=command_handler_failed key=%s", alarm_id)

    async def _dispatch(self, callback: Callable[[str, bytes], Awaitable[None]] | None,
                        key: str, payload: bytes) -> None:
        if callback is None:
            return
        try:
            await callback(key, payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=command_handler_failed key=%s", key)

    async def publish_now(self, suffix: str, payload: str | bytes, *,
                          retain: bool = False) -> bool:
        """Best-effort direct publish (health); False when not connected."""
        return await self.publish_full(self.topic(suffix), payload, retain=retain)

    async def publish_full(self, topic: str, payload: str | bytes, *,
                           retain: bool = False) -> bool:
        """:meth:`publish_now` to a whole topic, outside ``<prefix>/<site>/`` (Home Assistant
        discovery); False when not connected."""
        client = self._client  # set once CONNACK arrived, before ``connected`` is announced
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=1, retain=retain, timeout=5)
            return True
        except aiomqtt.MqttError:
            return False

    async def close(self) -> None:
        """Clean stop: say ``offline`` (retained) while still connected. A clean disconnect
        discards the Last Will, so this publish is the only ``offline`` a stop leaves; it
        is tried even when the session is still being set up, and over a connection of its
        own when the link's task has died (the broker itself was reachable)."""
        self._stopping = True
        with contextlib.suppress(TimeoutError, aiomqtt.MqttError):
            async with asyncio.timeout(2):  # not wait_for: it can swallow a cancellation on 3.11
                if await self.publish_now("gateway/status", "offline", retain=True):
                    return
        if self.last_error is None and await self._offline_alone():
            return
        log.warning("event=offline_not_published reason=not_connected")

    async def _offline_alone(self, timeout_s: float = 1.5) -> bool:
        """``offline`` over a fresh connection (same client id: it also ends a session a
        dead task left behind); False when the broker did not take it in ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s), self._make_client() as client:
                await client.publish(self.topic("gateway/status"), "offline", qos=1, retain=True)
            return True
        except (TimeoutError, aiomqtt.MqttError, OSError):
            return False


def _forget_group_cancel(before: int) -> None:
    """Undo the cancellation a TaskGroup requested of this task and never withdrew: on
    Python 3.11 a child failing while the group waits in ``__aexit__`` leaves the parent
    ``cancelling()`` for good, and every later ``asyncio.timeout`` in the task misfires."""
    task = asyncio.current_task()
    while task is not None and task.cancelling() > before:
        task.uncancel()
