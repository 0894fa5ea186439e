"""The shipped unit passes ``systemd-analyze verify`` silently and scores <= 1.5 exposure."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "gridctl.service"


def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze missing: apt-get install -y systemd"
    return tool


def installed_copy(tmp_path: Path) -> Path:
    """The unit as installed: ExecStart and ExecStopPost pointing at this environment's gridctl.

    ``verify`` checks that the binary exists; everything else is the file as shipped.
    """
    text = UNIT.read_text(encoding="utf-8")
    gridctl = Path(sys.executable).with_name("gridctl")
    assert gridctl.exists()
    text, n = re.subn(r"^(ExecStart|ExecStopPost)=(-?)/opt/gridctl/bin/gridctl ", rf"\1=\2{gridctl} ",
                      text, flags=re.M)
    assert n == 2
    out = tmp_path / "gridctl.service"
    out.write_text(text, encoding="utf-8")
    return out


def test_verify_is_silent(tmp_path):
    unit = installed_copy(tmp_path)
    result = subprocess.run([analyze(), "verify", str(unit)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_security_exposure_at_most_1_5(tmp_path):
    unit = installed_copy(tmp_path)
    result = subprocess.run([analyze(), "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) <= 1.5, result.stdout
    threshold = subprocess.run([analyze(), "security", "--offline=true", "--threshold=15",
                                str(unit)], capture_output=True, text=True, timeout=120)
    assert threshold.returncode == 0


def test_unit_declares_the_required_service_settings():
    text = UNIT.read_text(encoding="utf-8")
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=gridctl",
                 "StateDirectory=gridctl", "ConfigurationDirectory=gridctl",
                 "LoadCredential=influxdb-token:", "ProtectSystem=strict", "ProtectHome=yes",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"):
        assert line in text, line


def settings(key: str) -> list[str]:
    """Every value of ``key=`` in the shipped unit, in order."""
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(encoding="utf-8"), flags=re.M)


def test_every_secret_is_an_optional_credential():
    """A missing credential file must not fail the unit (a site without InfluxDB, or without
    authentication): each ``LoadCredential=ID:PATH`` has a blank ``SetCredential=ID:`` fallback
    (systemd.exec(5): "the latter will act as default if the former cannot be retrieved").
    No secret travels in ``Environment=`` (``systemctl show`` shows it to every user)."""
    loaded = dict(value.split(":", 1) for value in settings("LoadCredential"))
    assert {"influxdb-token", "influxdb-password"} <= set(loaded)
    fallbacks = dict(value.split(":", 1) for value in settings("SetCredential"))
    for credential_id, path in loaded.items():
        assert path.startswith("/etc/gridctl/credentials/"), path
        assert fallbacks.get(credential_id, "x").replace("\\n", "").strip() == "", credential_id
    for value in settings("Environment"):
        assert not re.search(r"PASSWORD|TOKEN|SECRET", value, flags=re.I), value


def test_files_are_private_no_multicast_and_few_descriptors():
    """UMask 0077: the ledger (billing data) is not readable by operators in group gridctl.
    Multicast (ECHONET Lite) is a per-site drop-in, not shipped. Descriptors are capped."""
    assert settings("UMask") == ["0077"]
    allowed = " ".join(settings("IPAddressAllow"))
    assert "multicast" not in allowed and "localhost" in allowed
    (nofile,) = settings("LimitNOFILE")
    assert 256 <= int(nofile) <= 4096
