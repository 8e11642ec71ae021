"""Certificates generated for the tests (trustme + cryptography): a CA, the server's
certificate, device certificates (good, expired, from another CA, revoked) and a CRL."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclass
class Device:
    """A client certificate and its key, in one PEM file."""

    name: str
    pem: Path
    leaf: trustme.LeafCert


class Certificates:
    """Everything written under one directory; PEM paths as attributes."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="Roost test CA")
        self.other_ca = trustme.CA(organization_name="Another CA")
        self.ca_pem = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.other_ca_pem = self._write("other-ca.pem", self.other_ca.cert_pem.bytes())
        self.server = self.ca.issue_cert("localhost", "127.0.0.1", common_name="localhost")
        self.server_pem = self._write(
            "server.pem", self.server.private_key_and_cert_chain_pem.bytes()
        )
        now = datetime.datetime.now(datetime.UTC)
        self.device = self.issue("dev1", "dev1.example")
        self.other_device = self.issue("dev2", "dev2.example")
        self.expired = self.issue(
            "expired",
            "expired.example",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
        self.foreign = self.issue("foreign", "foreign.example", ca=self.other_ca)
        self.revoked = self.issue("revoked", "revoked.example")
        self.crl_pem = self.dir / "crl.pem"
        self.write_crl([self.revoked])

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path

    def issue(
        self,
        common_name: str,
        san: str,
        *,
        ca: trustme.CA | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> Device:
        leaf = (ca or self.ca).issue_cert(
            san, common_name=common_name, not_before=not_before, not_after=not_after
        )
        pem = self._write(f"{common_name}.pem", leaf.private_key_and_cert_chain_pem.bytes())
        return Device(common_name, pem, leaf)

    def write_crl(self, revoked: list[Device]) -> None:
        """(Re)write the CA's CRL listing `revoked`."""
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        ca_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - datetime.timedelta(minutes=5))
            .next_update(now + datetime.timedelta(days=1))
        )
        for device in revoked:
            cert = x509.load_pem_x509_certificate(device.leaf.cert_chain_pems[0].bytes())
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now - datetime.timedelta(minutes=1))
                .build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        self.crl_pem.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
