"""Seed inputs for the fuzz targets, built from the shared packet vectors (tests/vectors.py).

Each target reads its input as: one selector byte (the protocol version, and for the
connection target the server's choices), then the bytes a client sends."""

from __future__ import annotations

from pathlib import Path

from tests.vectors import VECTORS

from roost.mqtt.constants import ProtocolVersion

VERSIONS = (ProtocolVersion.V31, ProtocolVersion.V311, ProtocolVersion.V5)


def version_byte(version: ProtocolVersion) -> int:
    return VERSIONS.index(version)


def connect_prefix(version: ProtocolVersion) -> bytes:
    """A valid CONNECT of `version` (from the vectors), to put a session in front of input."""
    for vector in VECTORS:
        if (
            vector.valid
            and vector.version == version
            and vector.name.startswith("connect-")
            and vector.data[0] == 0x10
        ):
            return vector.data
    raise LookupError(f"no CONNECT vector for {version!r}")


def decoder_seeds() -> list[bytes]:
    """Every vector alone, prefixed with its version byte."""
    return [bytes((version_byte(v.version),)) + v.data for v in VECTORS]


def connection_seeds() -> list[bytes]:
    """Every vector behind a CONNECT of its version (and CONNECT vectors alone), with
    selector bytes for the server accepting, and for a 1-byte-at-a-time stream."""
    seeds: list[bytes] = []
    for v in VECTORS:
        selector = version_byte(v.version)
        stream = v.data if v.data[:1] == b"\x10" else connect_prefix(v.version) + v.data
        seeds.append(bytes((selector, 0x00)) + stream)
        seeds.append(bytes((selector, 0x01)) + stream)
    return seeds


def write_corpus(directory: Path, seeds: list[bytes]) -> int:
    """Write the seeds (one file each) into a corpus directory; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(seeds):
        (directory / f"seed-{index:04d}").write_bytes(seed)
    return len(seeds)
