"""MQTT helpers shared by the controller, the fabric and the nodes (aiomqtt).

``connect(url, client_id=..., will_topic=...)`` returns an :class:`aiomqtt.Client` (an async
context manager) with a retained last will of ``{"state": "offline"}``; payloads are JSON.

>>> parse_broker_url("mqtt://127.0.0.1:1883")
('127.0.0.1', 1883)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from ..errors import NetemuError

__all__ = [
    "BlockingClient",
    "OFFLINE",
    "connect",
    "decode_json",
    "encode_json",
    "parse_broker_url",
    "publish_json",
]

#: Payload of every last will: the process disappeared without saying goodbye.
OFFLINE = {"state": "offline"}


def parse_broker_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``mqtt://HOST[:PORT]`` (default port 1883)."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise NetemuError(f"broker URL must look like mqtt://HOST:PORT, got {url!r}")
    try:
        port = parts.port or 1883
    except ValueError as exc:
        raise NetemuError(f"broker URL {url!r}: {exc}") from exc
    return parts.hostname, port


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def decode_json(payload: Any) -> Any:
    """The JSON value of a message payload (bytes, bytearray or str); ``None`` if not JSON."""
    if isinstance(payload, bytes | bytearray):
        payload = payload.decode("utf-8", "replace")
    try:
        return json.loads(payload)
    except (TypeError, ValueError):
        return None


def connect(url: str, *, client_id: str, will_topic: str | None = None, keepalive_s: int = 5):
    """An ``aiomqtt.Client`` for ``url``; with ``will_topic``, a retained offline last will.

    The keep-alive is short (5 s) so that the broker notices a killed process within about
    7.5 s (1.5 keep-alive periods, MQTT 3.1.1 section 3.1.2.10).
    """
    import aiomqtt

    host, port = parse_broker_url(url)
    will = None
    if will_topic is not None:
        will = aiomqtt.Will(will_topic, encode_json(OFFLINE), qos=1, retain=True)
    return aiomqtt.Client(
        host, port, identifier=client_id, will=will, keepalive=keepalive_s, clean_session=True
    )


async def publish_json(client, topic: str, obj: Any, *, retain: bool = False, qos: int = 1):
    await client.publish(topic, encode_json(obj), qos=qos, retain=retain)


class BlockingClient:
    """A synchronous MQTT client for scripts, benchmarks and tests (paho's network thread).

    It keeps every message received (``messages``: ``(topic, json_or_None)`` in arrival order)
    and the latest per topic (``last``). ``wait_latest`` waits until the latest message on a
    topic matches; ``wait_any`` until any message received so far does. Payloads are JSON.
    """

    def __init__(self, url: str, *, client_id: str, keepalive_s: int = 30):
        import threading

        import paho.mqtt.client as paho

        host, port = parse_broker_url(url)
        self.messages: list[tuple[str, Any]] = []
        self.last: dict[str, Any] = {}
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=keepalive_s)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        data = decode_json(msg.payload)
        with self._cond:
            self.messages.append((msg.topic, data))
            self.last[msg.topic] = data
            self._cond.notify_all()

    def subscribe(self, topic: str, *, qos: int = 1) -> None:
        self.client.subscribe(topic, qos=qos)

    def publish(self, topic: str, obj: Any, *, retain: bool = False, qos: int = 1) -> None:
        """Publish ``obj`` as JSON (``bytes`` as they are) and wait until it is sent."""
        payload = obj if isinstance(obj, bytes | bytearray) else encode_json(obj)
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5.0)

    def _wait(self, found, what: str, timeout_s: float):
        import time

        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                value = found()
                if value is not None:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what} within {timeout_s} s")
                self._cond.wait(left)

    def wait_latest(self, topic: str, pred=lambda d: True, timeout_s: float = 15.0) -> Any:
        """The latest message on ``topic``, once it is JSON that ``pred`` accepts."""

        def found():
            value = self.last.get(topic)
            return value if value is not None and pred(value) else None

        return self._wait(found, f"no matching latest message on {topic}", timeout_s)

    def wait_any(self, topic: str, pred=lambda d: True, timeout_s: float = 10.0) -> dict:
        """The first JSON object received on ``topic`` (so far or later) that ``pred`` accepts."""

        def found():
            for got, data in self.messages:
                if got == topic and isinstance(data, dict) and pred(data):
                    return data
            return None

        return self._wait(found, f"no matching message on {topic}", timeout_s)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
