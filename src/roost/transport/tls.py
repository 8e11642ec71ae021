"""TLS for a listener: the server SSLContext (versions, ciphers, client certificates, CRL),
its reload, and the client certificate's subject as an identity."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from roost.config import ListenerConfig
from roost.errors import ConfigError

log = logging.getLogger(__name__)

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_VERIFY = {
    "ignore": ssl.CERT_NONE,
    "allow": ssl.CERT_OPTIONAL,
    "require": ssl.CERT_REQUIRED,
}


def build_context(config: ListenerConfig) -> ssl.SSLContext:
    """A server context from the listener's settings; raises ConfigError naming the file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[config.tls_min_version]
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    name = f"listener {config.name}"
    if config.tls_ciphers:
        try:
            context.set_ciphers(config.tls_ciphers)
        except ssl.SSLError as exc:
            raise ConfigError(f"{name}: tls_ciphers {config.tls_ciphers!r}: {exc}") from exc
    try:
        context.load_cert_chain(config.tls_certfile, config.tls_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{name}: cannot load tls_certfile / tls_keyfile "
            f"({config.tls_certfile}, {config.tls_keyfile}): {exc}"
        ) from exc
    context.verify_mode = _VERIFY[config.client_certificates]
    if config.tls_cafile:
        try:
            context.load_verify_locations(cafile=config.tls_cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{name}: cannot load tls_cafile {config.tls_cafile}: {exc}") from exc
    if config.tls_crlfile:
        try:
            context.load_verify_locations(cafile=config.tls_crlfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{name}: cannot load tls_crlfile {config.tls_crlfile}: {exc}"
            ) from exc
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


class ContextHolder:
    """The listener's current context: new connections take it, open ones keep theirs."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self.context = build_context(config)

    def reload(self) -> bool:
        """Re-read certificate, key, CA and CRL; on error keep the old context."""
        try:
            self.context = build_context(self.config)
        except ConfigError as exc:
            log.error("TLS reload failed, keeping the current certificates: %s", exc)
            return False
        log.info("listener %s: TLS certificates reloaded", self.config.name)
        return True


def _first(entries: Any, key: str) -> str | None:
    for rdn in entries or ():
        for name, value in rdn:
            if name == key and isinstance(value, str):
                return value
    return None


def certificate_identity(peercert: Any, identity_from: str) -> str | None:
    """The identity a verified client certificate gives: its subject's Common Name, or its
    first Subject Alternative Name (DNS, URI, email or IP address)."""
    if not isinstance(peercert, dict) or not peercert:
        return None
    if identity_from == "cn":
        return _first(peercert.get("subject"), "commonName")
    for kind, value in peercert.get("subjectAltName", ()):
        if kind in ("DNS", "URI", "email", "IP Address") and isinstance(value, str):
            return value
    return None
