"""The ledger holds every member's billing data: its files are the owner's alone, whatever the
umask of the process that creates it (outside systemd a shell's umask is usually 022)."""

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gridctl.ledger import Ledger

CHILD = """
import os, sys
os.umask(int(sys.argv[2], 8))
from gridctl.ledger import Ledger
with Ledger(sys.argv[1], "misono") as ledger:
    ledger.state_put("probe", 1)          # a write: the -wal and -shm files exist now
    for suffix in ("", "-wal", "-shm"):
        print(oct(os.stat(sys.argv[1] + suffix).st_mode & 0o777))
"""


@pytest.mark.parametrize("umask", ["022", "002", "000"])
def test_a_new_ledger_and_its_wal_are_owner_only(tmp_path: Path, umask: str):
    path = tmp_path / "var" / "ledger.sqlite"
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), umask],
                            capture_output=True, text=True, timeout=60, check=True)
    modes = result.stdout.split()
    assert modes == ["0o600", "0o600", "0o600"], (umask, modes, result.stderr)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_ledger_keeps_its_mode(tmp_path: Path):
    """A clerk's copy opened for reports is not chmod-ed (it may not be theirs to change)."""
    path = tmp_path / "copy.sqlite"
    Ledger(path, "misono").close()  # a ledger made elsewhere (an empty file is no ledger)
    path.chmod(0o640)
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), "022"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split()[0] == "0o640"


def test_a_new_ledger_appears_whole_and_leaves_no_scratch_file(tmp_path: Path):
    """The schema is made in a scratch file linked into place: the folder holds the ledger only."""
    path = tmp_path / "ledger.sqlite"
    Ledger(path, "misono").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite"]
    with Ledger(path, read_only=True) as ledger:  # a complete ledger: the read-only checks pass
        assert ledger.site_id == "misono"
