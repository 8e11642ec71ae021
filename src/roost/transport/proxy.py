"""PROXY protocol v1 / v2 header (sans-IO): the real client address a load balancer passes on.

The reader never asks for more bytes than the header still needs (`wanted`), so that what
follows it (an MQTT CONNECT, an HTTP upgrade or a TLS ClientHello) stays unread for the
next layer.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
# The longest v1 line, CRLF included (the specification's worst case).
V1_MAX_LENGTH = 107
_V2_HEADER_LENGTH = 16
# Sniffing length: enough to tell "PROXY " from the v2 signature.
_SNIFF = 8

_V2_LOCAL = 0x0
_V2_PROXY = 0x1
_V2_TCP4 = 0x11
_V2_UDP4 = 0x12
_V2_TCP6 = 0x21
_V2_UDP6 = 0x22


class ProxyHeaderError(Exception):
    """The bytes are not a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """What the header says; `source` is None for LOCAL / UNKNOWN (use the socket's peer)."""

    version: int
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


def _port(text: bytes) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[:1] == b"0"):
        raise ProxyHeaderError("bad port in PROXY v1 header")
    port = int(text)
    if port > 65_535:
        raise ProxyHeaderError("port out of range in PROXY v1 header")
    return port


def _address(text: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError("bad address in PROXY v1 header") from None
    if address.version != version:
        raise ProxyHeaderError("address family does not match the PROXY v1 protocol")
    return str(address)


def parse_v1(line: bytes) -> ProxyInfo:
    """One v1 line without its CRLF: `PROXY TCP4|TCP6 src dst sport dport` or `PROXY UNKNOWN`."""
    parts = line.split(b" ")
    if len(parts) < 2 or parts[0] != b"PROXY":
        raise ProxyHeaderError("not a PROXY v1 header")
    protocol = parts[1]
    if protocol == b"UNKNOWN":
        return ProxyInfo(version=1)
    if protocol not in (b"TCP4", b"TCP6") or len(parts) != 6:
        raise ProxyHeaderError("bad PROXY v1 header")
    family = 4 if protocol == b"TCP4" else 6
    source = (_address(parts[2], family), _port(parts[4]))
    destination = (_address(parts[3], family), _port(parts[5]))
    return ProxyInfo(version=1, source=source, destination=destination)


def parse_v2(header: bytes) -> ProxyInfo:
    """A whole v2 header: the 16 fixed bytes and the address block (TLVs are ignored)."""
    version_command = header[12]
    if version_command >> 4 != 2:
        raise ProxyHeaderError("PROXY v2 header with another version")
    command = version_command & 0x0F
    if command == _V2_LOCAL:
        return ProxyInfo(version=2)
    if command != _V2_PROXY:
        raise ProxyHeaderError("unknown PROXY v2 command")
    family = header[13]
    body = header[_V2_HEADER_LENGTH:]
    if family in (_V2_TCP4, _V2_UDP4):
        if len(body) < 12:
            raise ProxyHeaderError("PROXY v2 IPv4 address block too short")
        src = str(ipaddress.IPv4Address(body[0:4]))
        dst = str(ipaddress.IPv4Address(body[4:8]))
        sport, dport = int.from_bytes(body[8:10], "big"), int.from_bytes(body[10:12], "big")
        return ProxyInfo(version=2, source=(src, sport), destination=(dst, dport))
    if family in (_V2_TCP6, _V2_UDP6):
        if len(body) < 36:
            raise ProxyHeaderError("PROXY v2 IPv6 address block too short")
        src = str(ipaddress.IPv6Address(body[0:16]))
        dst = str(ipaddress.IPv6Address(body[16:32]))
        sport, dport = int.from_bytes(body[32:34], "big"), int.from_bytes(body[34:36], "big")
        return ProxyInfo(version=2, source=(src, sport), destination=(dst, dport))
    # UNSPEC or UNIX sockets: no usable address, keep the socket's peer.
    return ProxyInfo(version=2)


class ProxyHeaderReader:
    """Collects a v1 or v2 header from bytes read `wanted()` at a time."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.result: ProxyInfo | None = None

    def wanted(self) -> int:
        """How many bytes may be read next without reading past the header."""
        buf = self._buf
        if len(buf) < _SNIFF:
            return _SNIFF - len(buf)
        if buf.startswith(V1_PREFIX):
            return 1  # a v1 line ends at CRLF: read it byte by byte
        if len(buf) < _V2_HEADER_LENGTH:
            return _V2_HEADER_LENGTH - len(buf)
        total = _V2_HEADER_LENGTH + int.from_bytes(buf[14:16], "big")
        return max(1, total - len(buf))

    def feed(self, data: bytes) -> bytes | None:
        """Add bytes; returns what follows the header once it is complete (else None)."""
        buf = self._buf
        buf += data
        if len(buf) < _SNIFF:
            return None
        if buf.startswith(V1_PREFIX):
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) >= V1_MAX_LENGTH:
                    raise ProxyHeaderError("PROXY v1 header longer than 107 bytes")
                return None
            if end + 2 > V1_MAX_LENGTH:
                raise ProxyHeaderError("PROXY v1 header longer than 107 bytes")
            self.result = parse_v1(bytes(buf[:end]))
            return bytes(buf[end + 2 :])
        if not V2_SIGNATURE.startswith(bytes(buf[: len(V2_SIGNATURE)])):
            raise ProxyHeaderError("connection does not start with a PROXY header")
        if len(buf) < _V2_HEADER_LENGTH:
            return None
        total = _V2_HEADER_LENGTH + int.from_bytes(buf[14:16], "big")
        if len(buf) < total:
            return None
        self.result = parse_v2(bytes(buf[:total]))
        return bytes(buf[total:])
