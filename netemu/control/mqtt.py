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

__all__ = ["OFFLINE", "connect", "decode_json", "encode_json", "parse_broker_url", "publish_json"]

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
