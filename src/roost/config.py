"""Typed configuration from TOML, environment overrides and flags; every limit has a safe default."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from roost.auth.acl import AclRule
from roost.dialects import DIALECT_NAMES
from roost.errors import ConfigError, RoostError
from roost.streams.model import StreamSpec

ENV_PREFIX = "ROOST_"


LISTENER_TRANSPORTS = ("tcp", "tls", "ws", "wss")
CLIENT_CERTIFICATE_MODES = ("ignore", "allow", "require")
TLS_VERSIONS = ("1.2", "1.3")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerConfig:
    """One network listener: its transport, address, TLS, WebSocket, PROXY and armour."""

    name: str = "default"
    transport: str = "tcp"
    host: str = "0.0.0.0"
    port: int = 1883
    # False: a listener that cannot bind is logged and skipped (the default WS listener).
    required: bool = True
    max_connections: int = 100_000
    # Armour: 0 means no limit.
    max_connections_per_address: int = 0
    connection_rate: float = 0.0
    connection_burst: int = 0
    send_timeout: float = 60.0
    packet_timeout: float = 60.0
    # TLS (transports tls and wss).
    tls_certfile: str = ""
    tls_keyfile: str = ""
    tls_cafile: str = ""
    tls_crlfile: str = ""
    tls_ciphers: str = ""
    tls_min_version: str = "1.2"
    client_certificates: str = "ignore"
    identity_from: str = "cn"
    require_identity_match_client_id: bool = False
    # WebSocket (transports ws and wss).
    ws_path: str = "/mqtt"
    # PROXY protocol v1 / v2 header expected before anything else.
    proxy_protocol: bool = False
    # The device-platform dialect of this listener (docs/dialects.md) and the tenant its
    # clients belong to when the dialect does not name one.
    dialect: str = "generic"
    tenant: str = "default"

    @property
    def is_tls(self) -> bool:
        return self.transport in ("tls", "wss")

    @property
    def is_websocket(self) -> bool:
        return self.transport in ("ws", "wss")


DEFAULT_LISTENERS = (
    ListenerConfig(),
    ListenerConfig(name="ws", transport="ws", port=8080, required=False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MQTTConfig:
    """Protocol limits and capabilities; each is checked before anything is allocated."""

    max_packet_size: int = 1_048_576
    max_topic_length: int = 65_535
    max_topic_levels: int = 128
    max_client_id_length: int = 256
    max_keep_alive: int = 65_535
    connect_timeout: float = 10.0
    receive_maximum: int = 64
    max_inflight: int = 64
    max_queued_messages: int = 1_000
    max_queued_bytes: int = 16 * 1_048_576
    queue_overflow: str = "drop_oldest"
    max_queued_in_memory: int = 500
    max_awaiting_rel: int = 64
    max_subscriptions_per_session: int = 1_000
    max_user_properties: int = 64
    max_session_expiry_interval: int = 604_800
    topic_alias_maximum: int = 10
    maximum_qos: int = 2
    retain_available: bool = True
    wildcard_subscription_available: bool = True
    subscription_identifier_available: bool = True
    shared_subscription_available: bool = True
    shared_subscription_strategy: str = "round_robin"
    max_retained_messages: int = 1_000_000
    allow_empty_client_id: bool = True
    refused_topic_filters: tuple[str, ...] = ()
    response_topic_prefix: str = "response/"
    sys_interval: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    """Where state lives."""

    durability: str = "sync"
    data_dir: str = "./data"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryConfig:
    """The device registry (`<data_dir>/registry.db`): credentials checked by the dialects."""

    enabled: bool = False
    # Generic dialect: a client with neither username nor known certificate is let in.
    allow_anonymous: bool = False
    # scrypt cost parameter N for new secrets (a power of two).
    scrypt_n: int = 16_384
    # How often changes made by another process (the CLI) are picked up, in seconds.
    refresh_interval: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    """The HTTP API (and its OpenAPI document at /api/openapi.json)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8081
    # The operator key (all tenants). Empty: read or create `<data_dir>/admin.key`.
    admin_key: str = ""
    # Largest request body accepted, in bytes.
    max_request_bytes: int = 1_048_576
    # Longest a publish or an RPC call may wait, in seconds.
    max_wait: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AclRuleConfig:
    """One `[[acl]]` rule: allow|deny, publish|subscribe|all, a topic filter pattern."""

    permission: str = "allow"
    action: str = "all"
    topic: str = "#"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamDeclaration:
    """One `[[streams]]` entry: a stream of the messaging service (docs/streams.md),
    declared (created, or its settings replaced) at every start."""

    tenant: str = "default"
    name: str = ""
    topics: tuple[str, ...] = ()
    max_age: float = 0.0
    max_bytes: int = 0
    max_messages: int = 0
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaConfig:
    """Per-tenant quotas (`[quotas]`, each tenant's own usage; 0 = no limit), on top of the
    broker-wide limits of `[mqtt]` and the listeners."""

    max_connections: int = 0
    max_sessions: int = 0
    max_subscriptions: int = 0
    max_subscriptions_per_session: int = 0
    # Inbound PUBLISH packets per second of the whole tenant (token bucket).
    publish_rate: float = 0.0
    # PUBLISH packets accepted at once above the rate; 0 = the rate rounded up.
    publish_burst: int = 0
    max_retained_messages: int = 0
    max_retained_bytes: int = 0

    @property
    def limited(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantQuotaConfig:
    """One `[[tenant_quotas]]` entry: the `[quotas]` keys it sets for one tenant."""

    tenant: str
    overrides: tuple[tuple[str, int | float], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """The process: `workers` > 1 runs that many worker processes on the same listener
    ports (SO_REUSEPORT), routing to each other over a local bus (docs/workers.md)."""

    workers: int = 1
    # How long a CONNECT waits for the other workers' answers to its claim of the client
    # id; a session handed over later is merged into the client's new one.
    claim_timeout: float = 2.0
    # Seconds a worker waits before it answers a claim (hands a session over): a hook for
    # testing the late hand-over; 0 otherwise.
    hand_over_delay: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    level: str = "INFO"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    listeners: tuple[ListenerConfig, ...] = DEFAULT_LISTENERS
    mqtt: MQTTConfig = field(default_factory=MQTTConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    log: LogConfig = field(default_factory=LogConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    acl: tuple[AclRuleConfig, ...] = ()
    streams: tuple[StreamDeclaration, ...] = ()
    quotas: QuotaConfig = field(default_factory=QuotaConfig)
    tenant_quotas: tuple[TenantQuotaConfig, ...] = ()

    def quotas_of(self, tenant: str) -> QuotaConfig:
        """The quotas of one tenant: `[quotas]` with its `[[tenant_quotas]]` applied."""
        for entry in self.tenant_quotas:
            if entry.tenant == tenant:
                overrides: dict[str, Any] = dict(entry.overrides)
                return replace(self.quotas, **overrides)
        return self.quotas

    def quota_tenants(self) -> tuple[str, ...]:
        """The tenants with `[[tenant_quotas]]`, and "" for everyone else (`[quotas]`)."""
        return ("", *(entry.tenant for entry in self.tenant_quotas))


_SECTIONS: dict[str, type[Any]] = {
    "mqtt": MQTTConfig,
    "store": StoreConfig,
    "log": LogConfig,
    "server": ServerConfig,
    "registry": RegistryConfig,
    "quotas": QuotaConfig,
    "api": ApiConfig,
}


def _coerce(cls: type[Any], name: str, value: Any, where: str) -> Any:
    """Check one value against the type of the field's default and convert env strings."""
    default = getattr(cls(), name)
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    raise ConfigError(f"{where}: invalid value {value!r} for {name}")


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        kwargs[key] = _coerce(cls, key, value, where)
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML."""
    known = {"listeners", "acl", "streams", "tenant_quotas", *_SECTIONS}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown section {key!r}")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build(cls, section, f"[{name}]")
    listeners = data.get("listeners")
    if listeners is None:
        listener_configs: tuple[ListenerConfig, ...] = DEFAULT_LISTENERS
    else:
        if not isinstance(listeners, list) or not listeners:
            raise ConfigError("[[listeners]] must be a non-empty array of tables")
        listener_configs = tuple(
            _build(ListenerConfig, item, f"[[listeners]] #{i}") for i, item in enumerate(listeners)
        )
    acl = data.get("acl", [])
    if not isinstance(acl, list):
        raise ConfigError("[[acl]] must be an array of tables")
    acl_rules = tuple(_build(AclRuleConfig, item, f"[[acl]] #{i}") for i, item in enumerate(acl))
    streams = data.get("streams", [])
    if not isinstance(streams, list):
        raise ConfigError("[[streams]] must be an array of tables")
    declared = tuple(
        _build(StreamDeclaration, item, f"[[streams]] #{i}") for i, item in enumerate(streams)
    )
    config = Config(
        listeners=listener_configs,
        acl=acl_rules,
        streams=declared,
        tenant_quotas=_tenant_quotas(data.get("tenant_quotas", [])),
        **sections,
    )
    validate(config)
    return config


def _tenant_quotas(items: Any) -> tuple[TenantQuotaConfig, ...]:
    """`[[tenant_quotas]]`: a tenant and the `[quotas]` keys it overrides."""
    if not isinstance(items, list):
        raise ConfigError("[[tenant_quotas]] must be an array of tables")
    known = {f.name for f in fields(QuotaConfig)}
    out = []
    for i, item in enumerate(items):
        where = f"[[tenant_quotas]] #{i}"
        if not isinstance(item, dict) or not isinstance(item.get("tenant"), str):
            raise ConfigError(f'{where}: needs tenant = "<tenant id>"')
        overrides = []
        for key, value in item.items():
            if key == "tenant":
                continue
            if key not in known:
                raise ConfigError(f"{where}: unknown setting {key!r}")
            overrides.append((key, _coerce(QuotaConfig, key, value, where)))
        out.append(TenantQuotaConfig(tenant=item["tenant"], overrides=tuple(overrides)))
    return tuple(out)


def apply_env(config: Config, environ: dict[str, str] | None = None) -> Config:
    """Apply ROOST_<SECTION>__<KEY> overrides, e.g. ROOST_MQTT__MAX_KEEP_ALIVE=60."""
    env = os.environ if environ is None else environ
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("__")
        cls = _SECTIONS.get(section)
        if cls is None:
            continue
        current = getattr(config, section)
        if key not in {f.name for f in fields(cls)}:
            raise ConfigError(f"{var}: unknown setting {key!r}")
        current = replace(current, **{key: _coerce(cls, key, raw, var)})
        config = replace(config, **{section: current})
    validate(config)
    return config


def load(path: str | Path | None, environ: dict[str, str] | None = None) -> Config:
    """Load the TOML file at `path` (or the defaults) and apply environment overrides."""
    if path is None:
        config = Config()
    else:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        config = from_dict(data)
    return apply_env(config, environ)


def validate(config: Config) -> None:
    """Reject values that make no sense, with the setting's name in the message."""
    m = config.mqtt
    checks: list[tuple[bool, str]] = [
        (64 <= m.max_packet_size <= 268_435_460, "mqtt.max_packet_size must be 64..268435460"),
        (1 <= m.max_topic_length <= 65_535, "mqtt.max_topic_length must be 1..65535"),
        (1 <= m.max_topic_levels <= 65_535, "mqtt.max_topic_levels must be >= 1"),
        (1 <= m.max_client_id_length <= 65_535, "mqtt.max_client_id_length must be 1..65535"),
        (0 <= m.max_keep_alive <= 65_535, "mqtt.max_keep_alive must be 0..65535"),
        (m.connect_timeout > 0, "mqtt.connect_timeout must be > 0"),
        (1 <= m.receive_maximum <= 65_535, "mqtt.receive_maximum must be 1..65535"),
        (1 <= m.max_inflight <= 65_535, "mqtt.max_inflight must be 1..65535"),
        (m.max_queued_messages >= 0, "mqtt.max_queued_messages must be >= 0"),
        (m.max_queued_bytes >= 0, "mqtt.max_queued_bytes must be >= 0"),
        (
            m.queue_overflow in ("drop_oldest", "drop_newest"),
            "mqtt.queue_overflow must be drop_oldest or drop_newest",
        ),
        (m.max_queued_in_memory >= 1, "mqtt.max_queued_in_memory must be >= 1"),
        (m.max_awaiting_rel >= 1, "mqtt.max_awaiting_rel must be >= 1"),
        (m.max_subscriptions_per_session >= 1, "mqtt.max_subscriptions_per_session must be >= 1"),
        (m.max_user_properties >= 0, "mqtt.max_user_properties must be >= 0"),
        (
            0 <= m.max_session_expiry_interval <= 0xFFFFFFFF,
            "mqtt.max_session_expiry_interval must be 0..4294967295",
        ),
        (0 <= m.topic_alias_maximum <= 65_535, "mqtt.topic_alias_maximum must be 0..65535"),
        (m.maximum_qos in (0, 1, 2), "mqtt.maximum_qos must be 0, 1 or 2"),
        (
            m.shared_subscription_strategy in ("round_robin", "random", "first"),
            "mqtt.shared_subscription_strategy must be round_robin, random or first",
        ),
        (m.sys_interval > 0, "mqtt.sys_interval must be > 0"),
        (
            config.store.durability in ("sync", "memory"),
            "store.durability must be sync or memory",
        ),
        (bool(config.listeners), "at least one listener is required"),
        (1 <= config.server.workers <= 64, "server.workers must be 1..64"),
        (config.server.claim_timeout >= 0, "server.claim_timeout must be >= 0"),
        (config.server.hand_over_delay >= 0, "server.hand_over_delay must be >= 0"),
        (
            config.registry.scrypt_n >= 2
            and not config.registry.scrypt_n & (config.registry.scrypt_n - 1),
            "registry.scrypt_n must be a power of two",
        ),
        (config.registry.refresh_interval > 0, "registry.refresh_interval must be > 0"),
        (0 <= config.api.port <= 65_535, "api.port must be 0..65535"),
        (config.api.max_request_bytes >= 1024, "api.max_request_bytes must be >= 1024"),
        (config.api.max_wait > 0, "api.max_wait must be > 0"),
    ]
    checks.extend(quota_checks("quotas", config.quotas))
    for entry in config.tenant_quotas:
        where = f"tenant_quotas {entry.tenant!r}"
        checks.append(
            (
                bool(entry.tenant) and not set(entry.tenant) & set("/+#"),
                f"{where}: tenant must be non-empty, without / + #",
            )
        )
        checks.extend(quota_checks(where, config.quotas_of(entry.tenant)))
    tenants = [entry.tenant for entry in config.tenant_quotas]
    checks.append((len(set(tenants)) == len(tenants), "[[tenant_quotas]]: a tenant twice"))
    for i, rule in enumerate(config.acl):
        try:
            AclRule.parse(rule.permission, rule.action, rule.topic)
        except ValueError as exc:
            checks.append((False, f"[[acl]] #{i}: {exc}"))
    for i, declaration in enumerate(config.streams):
        try:
            stream_spec(declaration).validated()
        except RoostError as exc:
            checks.append((False, f"[[streams]] #{i}: {exc}"))
    keys = [(d.tenant, d.name) for d in config.streams]
    checks.append((len(set(keys)) == len(keys), "[[streams]]: a stream is declared twice"))
    for listener in config.listeners:
        checks.extend(listener_checks(listener))
    names = [listener.name for listener in config.listeners]
    checks.append((len(set(names)) == len(names), "listener names must be unique"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    assert is_dataclass(config)


def stream_spec(declaration: StreamDeclaration) -> StreamSpec:
    """The stream a `[[streams]]` entry declares."""
    return StreamSpec(
        name=declaration.name,
        topic_filters=declaration.topics,
        max_age=declaration.max_age,
        max_bytes=declaration.max_bytes,
        max_messages=declaration.max_messages,
        ack_wait=declaration.ack_wait,
        max_deliver=declaration.max_deliver,
        max_ack_pending=declaration.max_ack_pending,
    )


def listener_checks(listener: ListenerConfig) -> list[tuple[bool, str]]:
    """The validity rules of one listener, each with the message naming its setting."""
    name = f"listener {listener.name}"
    tls = listener.is_tls
    checks = [
        (
            listener.transport in LISTENER_TRANSPORTS,
            f"{name}: transport must be one of {', '.join(LISTENER_TRANSPORTS)}",
        ),
        (0 <= listener.port <= 65_535, f"{name}: port must be 0..65535"),
        (listener.max_connections >= 1, f"{name}: max_connections must be >= 1"),
        (
            listener.max_connections_per_address >= 0,
            f"{name}: max_connections_per_address must be >= 0 (0 = no limit)",
        ),
        (listener.connection_rate >= 0, f"{name}: connection_rate must be >= 0 (0 = no limit)"),
        (listener.connection_burst >= 0, f"{name}: connection_burst must be >= 0"),
        (listener.send_timeout > 0, f"{name}: send_timeout must be > 0"),
        (listener.packet_timeout > 0, f"{name}: packet_timeout must be > 0"),
        (
            not tls or bool(listener.tls_certfile and listener.tls_keyfile),
            f"{name}: transport {listener.transport} needs tls_certfile and tls_keyfile",
        ),
        (
            tls or not (listener.tls_certfile or listener.tls_keyfile or listener.tls_cafile),
            f"{name}: TLS settings need transport tls or wss",
        ),
        (listener.tls_min_version in TLS_VERSIONS, f"{name}: tls_min_version must be 1.2 or 1.3"),
        (
            listener.client_certificates in CLIENT_CERTIFICATE_MODES,
            f"{name}: client_certificates must be ignore, allow or require",
        ),
        (
            listener.client_certificates == "ignore" or bool(listener.tls_cafile),
            f"{name}: client_certificates {listener.client_certificates} needs tls_cafile",
        ),
        (
            not listener.tls_crlfile or listener.client_certificates != "ignore",
            f"{name}: tls_crlfile needs client_certificates allow or require",
        ),
        (listener.identity_from in ("cn", "san"), f"{name}: identity_from must be cn or san"),
        (
            not listener.require_identity_match_client_id
            or listener.client_certificates != "ignore",
            f"{name}: require_identity_match_client_id needs client certificates",
        ),
        (listener.ws_path.startswith("/"), f"{name}: ws_path must start with /"),
        (
            listener.dialect in DIALECT_NAMES,
            f"{name}: dialect must be one of {', '.join(DIALECT_NAMES)}",
        ),
        (
            bool(listener.tenant) and not set(listener.tenant) & set("/+#"),
            f"{name}: tenant must be non-empty, without / + #",
        ),
    ]
    return checks


def quota_checks(where: str, quotas: QuotaConfig) -> list[tuple[bool, str]]:
    """Every quota is >= 0 (0 = no limit)."""
    return [
        (getattr(quotas, f.name) >= 0, f"{where}.{f.name} must be >= 0 (0 = no limit)")
        for f in fields(quotas)
    ]
