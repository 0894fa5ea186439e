"""A sweep on a real Dask scheduler and worker (subprocesses on loopback) over mutual TLS, as the
README documents it: same table as a serial run; a client without certificates is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.sweep.helpers import SWEEP_YAML, run_cli, write_sweep

ROOT = Path(__file__).resolve().parents[2]
SMALL = SWEEP_YAML.replace("  days: 1", "  days: 0.25").replace("  mechanism: [sdr, mmr]\n", "")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pki(folder: Path, names: tuple[str, ...]) -> dict[str, tuple[Path, Path]]:
    """A private CA (``ca.pem``) and per name a certificate for both TLS roles and its key."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("sweep CA")).issuer_name(_name("sweep CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {}
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name("sweep CA"))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        out[name] = (cert_path, key_path)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tls_args(folder: Path, cert: tuple[Path, Path]) -> list[str]:
    return ["--tls-ca-file", str(folder / "ca.pem"), "--tls-cert", str(cert[0]), "--tls-key", str(cert[1])]


@pytest.fixture
def tls_cluster(tmp_path):
    """``dask scheduler`` and one ``dask worker`` (one thread) on loopback, mutual TLS only."""
    from distributed import Client
    from distributed.security import Security

    pki = tmp_path / "pki"
    pki.mkdir()
    certs = _pki(pki, ("scheduler", "worker", "client"))
    address = f"tls://127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen(dask + ["scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port",
                                      address.rsplit(":", 1)[1], "--no-dashboard",
                                      *_tls_args(pki, certs["scheduler"])],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    procs.append(subprocess.Popen(dask + ["worker", address, "--nworkers", "1", "--nthreads", "1",
                                          "--no-dashboard", "--host", "127.0.0.1",
                                          *_tls_args(pki, certs["worker"])],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        security = Security(tls_ca_file=str(pki / "ca.pem"), tls_client_cert=str(certs["client"][0]),
                            tls_client_key=str(certs["client"][1]), require_encryption=True)
        with Client(address, security=security, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address, pki, certs["client"]
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_sweep_over_mutual_tls_matches_serial(tmp_path, tls_cluster):
    address, pki, client_cert = tls_cluster
    sweep = write_sweep(tmp_path / "s", SMALL)
    serial = run_cli(str(sweep), "--out", str(tmp_path / "serial"), "--scheduler", "serial")
    assert serial.exit_code == 0, serial.output
    remote = run_cli(str(sweep), "--out", str(tmp_path / "tls"), "--scheduler", address,
                     *_tls_args(pki, client_cert))
    assert remote.exit_code == 0, remote.output
    assert "2 cases: 0 already done (skipped), 2 run, 0 failed" in remote.output
    assert f"on {address}" in remote.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tls" / "results.csv"),
                                  pd.read_csv(tmp_path / "serial" / "results.csv"), check_exact=True)
    # without a client certificate the scheduler cannot be used: one line, exit 1
    refused = run_cli(str(sweep), "--out", str(tmp_path / "plain"), "--scheduler", address)
    assert refused.exit_code == 1, refused.output
    assert refused.output.startswith(f"error: scheduler {address}: ")
    assert refused.output.count("\n") == 1 and "Traceback" not in refused.output
    assert not list((tmp_path / "plain").glob("cases/*.json"))
