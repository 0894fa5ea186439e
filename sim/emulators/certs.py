"""Self-signed OPC UA application certificates for emulated routers and the gridctl client.

Generated with ``asyncua.crypto.cert_gen`` (built on ``cryptography``) into one folder:

- ``router-server-cert.der`` / ``router-server-key.pem``: the emulated routers' certificate
- ``gridctl-client-cert.der`` / ``gridctl-client-key.pem``: gridctl's client certificate
- ``trusted/``: client certificates the routers trust (the client's is put there)

Existing files are kept, so a daemon configured with these paths keeps working across restarts.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

SERVER_URI = "urn:gridctl:emulated-router"
CLIENT_URI = "urn:gridctl:client"


@dataclass(frozen=True)
class CertPair:
    """Paths of one application certificate (DER) and its private key (PEM), and its URI."""

    certificate_path: Path
    private_key_path: Path
    application_uri: str


@dataclass(frozen=True)
class Pki:
    """Certificates of an emulated site."""

    folder: Path
    server: CertPair
    client: CertPair
    trusted_dir: Path


def make_certificate(folder: Path, stem: str, uri: str, *, server: bool, days: int = 3650) -> CertPair:
    """Write ``<stem>-cert.der`` and ``<stem>-key.pem`` into ``folder`` unless both exist."""
    return make_certificate_at(folder / f"{stem}-cert.der", folder / f"{stem}-key.pem", uri, server=server, days=days)


def make_certificate_at(cert_path: Path, key_path: Path, uri: str, *, server: bool, days: int = 3650) -> CertPair:
    """Write a self-signed certificate (DER) and key (PEM) at these paths unless both exist."""
    stem = cert_path.stem.removesuffix("-cert")
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    if not (cert_path.is_file() and key_path.is_file()):
        key = cert_gen.generate_private_key()
        names = [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost"),
                 x509.DNSName(socket.gethostname())]
        usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = cert_gen.generate_self_signed_app_certificate(key, stem, {"organizationName": "gridctl"}, names, usage, days=days)
        key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    return CertPair(cert_path, key_path, uri)


def trust(trusted_dir: Path, certificate_path: Path) -> None:
    """Put a client certificate into a trust folder (idempotent)."""
    trusted_dir.mkdir(parents=True, exist_ok=True)
    copy = trusted_dir / certificate_path.name
    if not copy.is_file() or copy.read_bytes() != certificate_path.read_bytes():
        copy.write_bytes(certificate_path.read_bytes())


def ensure_pki(folder: str | Path) -> Pki:
    """Create (or reuse) the server and client certificates and the trust folder."""
    base = Path(folder)
    server = make_certificate(base, "router-server", SERVER_URI, server=True)
    client = make_certificate(base, "gridctl-client", CLIENT_URI, server=False)
    trusted = base / "trusted"
    trust(trusted, client.certificate_path)
    return Pki(base, server, client, trusted)


@dataclass(frozen=True)
class TlsPki:
    """PEM files for Modbus/TCP Security: a CA, a device (server) and a client certificate."""

    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    client_cert_path: Path
    client_key_path: Path


def _pem_key(key) -> bytes:  # noqa: ANN001 - an RSA private key
    return cert_gen.dump_private_key_as_pem(key)


def _signed(subject: str, key, issuer: x509.Name, issuer_key, *, ca: bool, client: bool) -> x509.Certificate:  # noqa: ANN001
    import datetime as dt  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415

    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls_pki(folder: str | Path) -> TlsPki:
    """A private CA with one device and one client certificate (PEM), for Modbus/TCP Security tests."""
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    ca_key = cert_gen.generate_private_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gridctl test CA")])
    ca = _signed("gridctl test CA", ca_key, ca_name, ca_key, ca=True, client=False)
    paths = TlsPki(base / "ca.pem", base / "device-cert.pem", base / "device-key.pem",
                   base / "client-cert.pem", base / "client-key.pem")
    paths.ca_path.write_bytes(ca.public_bytes(Encoding.PEM))
    for cert_path, key_path, client in ((paths.server_cert_path, paths.server_key_path, False),
                                        (paths.client_cert_path, paths.client_key_path, True)):
        key = cert_gen.generate_private_key()
        cert = _signed("client" if client else "device", key, ca_name, ca_key, ca=False, client=client)
        cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
    return paths
