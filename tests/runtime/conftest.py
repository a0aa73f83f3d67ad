"""Fixtures for runtime tests: real MQTT brokers on loopback, stopped by their PID."""

from __future__ import annotations

import os
import shutil

import pytest

from netemu.control.broker import BrokerProcess


@pytest.fixture
def amqtt_broker(tmp_path):
    """The embedded broker (amqtt) as a child process on a free loopback port."""
    with BrokerProcess("amqtt", log_path=tmp_path / "amqtt.log") as broker:
        yield broker


@pytest.fixture
def mosquitto_broker(tmp_path):
    """Debian's mosquitto on a free loopback port (skipped where it is not installed)."""
    if shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"):
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    with BrokerProcess("mosquitto", log_path=tmp_path / "mosquitto.log") as broker:
        yield broker
