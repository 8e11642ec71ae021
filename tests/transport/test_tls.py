"""TLS and mutual TLS listeners: versions, ciphers, client certificates (expired, wrong CA,
revoked, missing), the certificate identity, and reload without dropping connections."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from typing import Any

import pytest
import trustme

from roost.auth.base import AuthChain
from roost.config import ListenerConfig
from roost.mqtt.codec import decode, encode, read_frame
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connack, Connect, Packet, Pingreq, Pingresp, Properties
from tests.conftest import BrokerHandle, start_broker
from tests.integration.helpers import V5, V311
from tests.transport.certs import Certificates, Device
from tests.transport.conftest import TransportClient, client_context, listeners_for, tls_socket
from tests.transport.recorder import Recorder

MAX = 268_435_460


@pytest.fixture(scope="module")
def tbroker(certs: Certificates, recorder: Recorder) -> Any:
    handle = start_broker(
        AuthChain(authenticators=[recorder]), durability="memory", listeners=listeners_for(certs)
    )
    yield handle
    handle.stop()


def recv_packet(sock: ssl.SSLSocket, version: ProtocolVersion) -> Packet | None:
    """One packet, or None when the server closed the connection."""
    buf = b""
    while True:
        frame = read_frame(buf, MAX)
        if frame is not None:
            first, body, _ = frame
            return decode(first, body, version)
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buf += chunk


def mqtt_connect(
    port: int,
    context: ssl.SSLContext,
    client_id: str,
    version: ProtocolVersion = ProtocolVersion.V5,
) -> tuple[ssl.SSLSocket, Packet | None]:
    sock = tls_socket(port, context)
    connect = Connect(
        protocol_name="MQTT",
        protocol_version=version,
        client_id=client_id,
        clean_start=True,
        keep_alive=30,
        properties=Properties(),
    )
    sock.sendall(encode(connect, version))
    return sock, recv_packet(sock, version)


def refused(port: int, context: ssl.SSLContext, client_id: str = "x") -> str:
    """The TLS handshake or the first read fails: how (for the assertion message)."""
    try:
        sock, packet = mqtt_connect(port, context, client_id)
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        return type(exc).__name__
    sock.close()
    assert packet is None, f"the server answered {packet!r}"
    return "closed"


def port(handle: BrokerHandle, name: str) -> int:
    return int(handle.server.ports[name])


# -- one-way TLS -------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V311, V5])
def test_paho_over_tls(tbroker: BrokerHandle, certs: Certificates, version: int) -> None:
    sub = TransportClient(tbroker, "tls", certs, f"tls-sub-{version}", version=version)
    pub = TransportClient(tbroker, "tls", certs, f"tls-pub-{version}", version=version)
    try:
        sub.connect()
        pub.connect()
        assert sub.subscribe("tls/t", 1) == [1]
        assert pub.publish("tls/t", b"secret", 1) == 0
        message = sub.expect_message()
        assert (message.topic, message.payload, message.qos) == ("tls/t", b"secret", 1)
    finally:
        sub.close()
        pub.close()


def test_server_certificate_from_an_unknown_ca_is_refused_by_the_client(
    tbroker: BrokerHandle, certs: Certificates
) -> None:
    context = ssl.create_default_context(cafile=str(certs.other_ca_pem))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_socket(port(tbroker, "tls"), context)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("old", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_below_1_2_is_refused(
    tbroker: BrokerHandle, certs: Certificates, old: ssl.TLSVersion
) -> None:
    context = client_context(certs)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = old
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_socket(port(tbroker, "tls"), context)


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_accepted(
    tbroker: BrokerHandle, certs: Certificates, maximum: ssl.TLSVersion
) -> None:
    context = client_context(certs)
    context.minimum_version = maximum
    context.maximum_version = maximum
    sock, packet = mqtt_connect(port(tbroker, "tls"), context, f"tls-{maximum.name}")
    assert isinstance(packet, Connack) and packet.reason_code == 0
    assert sock.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[maximum.name]
    sock.close()


def test_minimum_version_1_3_and_configured_ciphers(certs: Certificates) -> None:
    tls = {"tls_certfile": str(certs.server_pem), "tls_keyfile": str(certs.server_pem)}
    handle = start_broker(
        durability="memory",
        listeners=(
            ListenerConfig(
                name="tls13",
                transport="tls",
                host="127.0.0.1",
                port=0,
                tls_min_version="1.3",
                **tls,
            ),
            ListenerConfig(
                name="gcm",
                transport="tls",
                host="127.0.0.1",
                port=0,
                tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384",
                **tls,
            ),
        ),
    )
    try:
        only12 = client_context(certs)
        only12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert refused(port(handle, "tls13"), only12)
        # TLS 1.2 with another cipher than the configured one: no shared cipher.
        chacha = client_context(certs)
        chacha.maximum_version = ssl.TLSVersion.TLSv1_2
        chacha.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
        assert refused(port(handle, "gcm"), chacha)
        gcm = client_context(certs)
        gcm.maximum_version = ssl.TLSVersion.TLSv1_2
        gcm.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
        sock, packet = mqtt_connect(port(handle, "gcm"), gcm, "gcm")
        assert isinstance(packet, Connack) and packet.reason_code == 0
        assert sock.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
        sock.close()
    finally:
        handle.stop()


# -- mutual TLS ----------------------------------------------------------------------------


def test_missing_client_certificate_where_required(
    tbroker: BrokerHandle, certs: Certificates
) -> None:
    assert refused(port(tbroker, "mtls"), client_context(certs))


@pytest.mark.parametrize("which", ["expired", "foreign", "revoked"])
def test_bad_client_certificates_are_refused(
    tbroker: BrokerHandle, certs: Certificates, which: str
) -> None:
    device: Device = getattr(certs, which)
    assert refused(port(tbroker, "mtls"), client_context(certs, device), which)


def test_identity_from_common_name(
    tbroker: BrokerHandle, certs: Certificates, recorder: Recorder
) -> None:
    sock, packet = mqtt_connect(port(tbroker, "mtls"), client_context(certs, certs.device), "cn-1")
    assert isinstance(packet, Connack) and packet.reason_code == 0
    sock.close()
    info = next(c for c in recorder.seen if c.client_id == "cn-1")
    assert info.certificate_identity == "dev1"
    assert info.listener == "mtls"


def test_identity_from_subject_alternative_name(
    tbroker: BrokerHandle, certs: Certificates, recorder: Recorder
) -> None:
    context = client_context(certs, certs.device)
    sock, packet = mqtt_connect(port(tbroker, "mtls-san"), context, "san-1")
    assert isinstance(packet, Connack) and packet.reason_code == 0
    sock.close()
    info = next(c for c in recorder.seen if c.client_id == "san-1")
    assert info.certificate_identity == "dev1.example"


def test_allow_mode_with_and_without_certificate(
    tbroker: BrokerHandle, certs: Certificates, recorder: Recorder
) -> None:
    for client_id, device in (("allow-none", None), ("allow-dev", certs.device)):
        sock, packet = mqtt_connect(
            port(tbroker, "mtls-allow"), client_context(certs, device), client_id
        )
        assert isinstance(packet, Connack) and packet.reason_code == 0
        sock.close()
    identities = {c.client_id: c.certificate_identity for c in recorder.seen}
    assert identities["allow-none"] is None
    assert identities["allow-dev"] == "dev1"
    # A bad certificate is still refused when certificates are only allowed.
    assert refused(port(tbroker, "mtls-allow"), client_context(certs, certs.foreign))


def test_plain_tls_ignores_client_certificates(
    tbroker: BrokerHandle, certs: Certificates, recorder: Recorder
) -> None:
    sock, packet = mqtt_connect(port(tbroker, "tls"), client_context(certs, certs.foreign), "ign")
    assert isinstance(packet, Connack) and packet.reason_code == 0
    sock.close()
    assert next(c for c in recorder.seen if c.client_id == "ign").certificate_identity is None


@pytest.mark.parametrize("version", [ProtocolVersion.V5, ProtocolVersion.V311])
def test_identity_must_match_client_id(
    tbroker: BrokerHandle, certs: Certificates, version: ProtocolVersion
) -> None:
    """Another certificate's client id: CONNACK 0x85 (v5) / 0x02 Identifier rejected (3.1.1;
    the decoder reads it back as the v5 code), then close."""
    code = ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    context = client_context(certs, certs.device)
    mtls = port(tbroker, "mtls-match")
    sock, packet = mqtt_connect(mtls, context, "dev1", version)
    assert isinstance(packet, Connack) and packet.reason_code == 0
    sock.close()
    sock, packet = mqtt_connect(mtls, client_context(certs, certs.other_device), "dev1", version)
    assert isinstance(packet, Connack) and packet.reason_code == code
    assert recv_packet(sock, version) is None
    sock.close()


def test_empty_client_id_gets_the_certificate_identity(
    tbroker: BrokerHandle, certs: Certificates
) -> None:
    sock, packet = mqtt_connect(
        port(tbroker, "mtls-match"), client_context(certs, certs.device), ""
    )
    assert isinstance(packet, Connack) and packet.reason_code == 0
    assert packet.properties.assigned_client_identifier == "dev1"
    sock.close()


@pytest.mark.parametrize("version", [V311, V5])
@pytest.mark.parametrize("listener", ["mtls", "wss-mtls"])
def test_paho_over_mutual_tls(
    tbroker: BrokerHandle, certs: Certificates, version: int, listener: str
) -> None:
    client = TransportClient(tbroker, listener, certs, f"{listener}-{version}", version=version)
    try:
        client.connect()
        assert client.subscribe("m/t", 2) == [2]
        assert client.publish("m/t", b"x", 2) == 0
        assert client.expect_message().payload == b"x"
    finally:
        client.close()


# -- reload ----------------------------------------------------------------------------------


def ping(sock: ssl.SSLSocket) -> bool:
    sock.sendall(encode(Pingreq(), ProtocolVersion.V5))
    return isinstance(recv_packet(sock, ProtocolVersion.V5), Pingresp)


def test_reload_new_server_certificate_keeps_connections(tmp_path: Any) -> None:
    certs = Certificates(tmp_path / "a")
    served = tmp_path / "served.pem"
    shutil.copy(certs.server_pem, served)
    handle = start_broker(
        durability="memory",
        listeners=(
            ListenerConfig(
                name="tls",
                transport="tls",
                host="127.0.0.1",
                port=0,
                tls_certfile=str(served),
                tls_keyfile=str(served),
            ),
        ),
    )
    try:
        tls = port(handle, "tls")
        old, packet = mqtt_connect(tls, client_context(certs), "before")
        assert isinstance(packet, Connack) and packet.reason_code == 0
        new_ca = trustme.CA()
        new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.pem"))
        leaf = new_ca.issue_cert("localhost", "127.0.0.1")
        served.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
        handle.call(handle.server.reload)
        assert ping(old), "the connection made before the reload was dropped"
        assert refused(tls, client_context(certs))
        sock, packet = mqtt_connect(tls, client_context(certs, ca=tmp_path / "new-ca.pem"), "new")
        assert isinstance(packet, Connack) and packet.reason_code == 0
        sock.close()
        # A broken file keeps the current certificate.
        served.write_text("not a certificate")
        handle.call(handle.server.reload)
        sock, packet = mqtt_connect(tls, client_context(certs, ca=tmp_path / "new-ca.pem"), "n2")
        assert isinstance(packet, Connack)
        sock.close()
        old.close()
    finally:
        handle.stop()


def test_reload_crl_revokes_new_connections_only(tmp_path: Any) -> None:
    certs = Certificates(tmp_path / "c")
    handle = start_broker(durability="memory", listeners=listeners_for(certs)[1:2])
    try:
        mtls = port(handle, "mtls")
        before, packet = mqtt_connect(mtls, client_context(certs, certs.device), "dev-before")
        assert isinstance(packet, Connack) and packet.reason_code == 0
        certs.write_crl([certs.revoked, certs.device])
        handle.call(handle.server.reload)
        assert ping(before)
        assert refused(mtls, client_context(certs, certs.device))
        before.close()
    finally:
        handle.stop()


def test_sighup_reloads_in_roost_serve(tmp_path: Any) -> None:
    """A real `roost serve` process: SIGHUP makes new connections get the new certificate."""
    import os
    import re
    import signal
    import sys

    certs = Certificates(tmp_path / "s")
    served = tmp_path / "served.pem"
    shutil.copy(certs.server_pem, served)
    config = tmp_path / "roost.toml"
    config.write_text(
        f"""
[[listeners]]
name = "tls"
transport = "tls"
host = "127.0.0.1"
port = 0
tls_certfile = "{served}"
tls_keyfile = "{served}"
[store]
durability = "memory"
"""
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.join(root, "src")},
    )
    try:
        assert proc.stderr is not None
        tls_port = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not tls_port:
            match = re.search(
                r"listener tls: mqtt over tls on 127\.0\.0\.1:(\d+)", proc.stderr.readline()
            )
            if match:
                tls_port = int(match.group(1))
        assert tls_port, "roost serve did not log its TLS listener"
        old, packet = mqtt_connect(tls_port, client_context(certs), "before")
        assert isinstance(packet, Connack)
        new_ca = trustme.CA()
        new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.pem"))
        served.write_bytes(new_ca.issue_cert("localhost").private_key_and_cert_chain_pem.bytes())
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "TLS certificates reloaded" in proc.stderr.readline():
                break
        sock, packet = mqtt_connect(
            tls_port, client_context(certs, ca=tmp_path / "new-ca.pem"), "n"
        )
        assert isinstance(packet, Connack) and packet.reason_code == 0
        sock.close()
        assert ping(old)
        old.close()
    finally:
        proc.terminate()
        proc.wait(10)


# -- mosquitto clients ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients missing")
def test_mosquitto_pub_and_sub_with_cafile_and_client_certificate(
    tbroker: BrokerHandle, certs: Certificates
) -> None:
    common = ["-h", "127.0.0.1", "--cafile", str(certs.ca_pem), "-V", "mqttv311"]
    mtls = [
        "-p",
        str(port(tbroker, "mtls")),
        "--cert",
        str(certs.device.pem),
        "--key",
        str(certs.device.pem),
    ]
    sub = subprocess.Popen(
        ["mosquitto_sub", *common, *mtls, "-t", "cli/tls", "-C", "2", "-W", "10", "-i", "cli-sub"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if tbroker.call(lambda: ("default", "cli-sub") in tbroker.server.ctx.connections):
                break
            time.sleep(0.05)
        time.sleep(0.2)
        for args in (["-p", str(port(tbroker, "tls"))], mtls):
            done = subprocess.run(
                ["mosquitto_pub", *common, *args, "-t", "cli/tls", "-m", "over tls", "-q", "1"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            assert done.returncode == 0, done.stderr
        out, err = sub.communicate(timeout=15)
        assert sub.returncode == 0, err
        assert out.splitlines() == ["over tls", "over tls"]
    finally:
        if sub.poll() is None:
            sub.kill()
