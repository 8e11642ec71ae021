"""Configuration: TOML, environment overrides, validation with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.config import Config, load
from roost.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roost.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load(None, environ={})
    assert config == Config()
    assert config.listeners[0].port == 1883
    assert config.store.durability == "sync"
    assert config.store.data_dir == "./data"


def test_toml_sections_and_listeners(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[listeners]]
name = "a"
port = 1884
[[listeners]]
name = "b"
host = "127.0.0.1"
port = 0

[mqtt]
max_keep_alive = 60
refused_topic_filters = ["test/nosubscribe"]
connect_timeout = 3
""",
    )
    config = load(path, environ={})
    assert [(lst.name, lst.port) for lst in config.listeners] == [("a", 1884), ("b", 0)]
    assert config.mqtt.max_keep_alive == 60
    assert config.mqtt.refused_topic_filters == ("test/nosubscribe",)
    assert config.mqtt.connect_timeout == 3.0


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nmax_keep_alive = 60\n")
    env = {
        "ROOST_MQTT__MAX_KEEP_ALIVE": "30",
        "ROOST_MQTT__RETAIN_AVAILABLE": "false",
        "ROOST_MQTT__REFUSED_TOPIC_FILTERS": "a/#, b",
        "ROOST_LOG__LEVEL": "DEBUG",
        "UNRELATED": "x",
    }
    config = load(path, environ=env)
    assert config.mqtt.max_keep_alive == 30
    assert config.mqtt.retain_available is False
    assert config.mqtt.refused_topic_filters == ("a/#", "b")
    assert config.log.level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mqtt]\nmax_keep_alive = 70000\n", "max_keep_alive"),
        ("[mqtt]\nnot_a_setting = 1\n", "not_a_setting"),
        ("[nope]\n", "nope"),
        ("[mqtt]\nreceive_maximum = 0\n", "receive_maximum"),
        ("[mqtt]\nmax_packet_size = 'big'\n", "max_packet_size"),
        ("[mqtt]\nqueue_overflow = 'explode'\n", "queue_overflow"),
        ("[[listeners]]\nport = 70000\n", "port"),
        ("[[listeners]]\nname='x'\n[[listeners]]\nname='x'\n", "unique"),
        ("this is not toml", "roost.toml"),
    ],
)
def test_invalid_settings_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, text), environ={})


def test_bad_environment_value_refused() -> None:
    with pytest.raises(ConfigError, match="ROOST_MQTT__MAX_INFLIGHT"):
        load(None, environ={"ROOST_MQTT__MAX_INFLIGHT": "many"})
    with pytest.raises(ConfigError, match="unknown setting"):
        load(None, environ={"ROOST_MQTT__NOPE": "1"})


def test_quotas_and_tenant_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[quotas]
max_connections = 100
publish_rate = 50

[[tenant_quotas]]
tenant = "acme"
max_connections = 5
max_retained_bytes = 1048576
""",
    )
    config = load(path, environ={"ROOST_QUOTAS__MAX_SESSIONS": "200"})
    assert config.quotas.max_connections == 100 and config.quotas.publish_rate == 50.0
    acme = config.quotas_of("acme")
    # The override sets its keys; the others come from [quotas] (after the environment).
    assert (acme.max_connections, acme.max_retained_bytes) == (5, 1_048_576)
    assert (acme.publish_rate, acme.max_sessions) == (50.0, 200)
    assert config.quotas_of("other") == config.quotas
    assert Config().quotas_of("any").limited is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[quotas]\nmax_connections = -1", "quotas.max_connections must be >= 0"),
        ("[quotas]\nmax_sockets = 1", "unknown setting 'max_sockets'"),
        ("[[tenant_quotas]]\nmax_sessions = 1", "needs tenant"),
        ('[[tenant_quotas]]\ntenant = "a"\nfoo = 1', "unknown setting 'foo'"),
        ('[[tenant_quotas]]\ntenant = "a"\npublish_rate = -2', "publish_rate must be >= 0"),
        ('[[tenant_quotas]]\ntenant = "a/b"', "tenant must be non-empty"),
        ('[[tenant_quotas]]\ntenant = "a"\n[[tenant_quotas]]\ntenant = "a"', "a tenant twice"),
    ],
)
def test_invalid_quotas_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, text), environ={})
