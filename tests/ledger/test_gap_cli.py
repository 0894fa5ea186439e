"""``gridctl settle gap``: periods whose readings are lost for good are declared, so verify accepts them."""

from pathlib import Path

from typer.testing import CliRunner

from gridctl.cli import app

SITE = str(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")


def gridctl(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_a_declared_gap_makes_a_ledger_with_a_hole_verify(tmp_path):
    readings, ledger = tmp_path / "aug.csv", tmp_path / "ledger.sqlite"
    assert gridctl("settle", "sample-readings", "-c", SITE, "--month", "2026-08", "--out", readings)[0] == 0
    for start, end in (("2026-08-01T00:00", "2026-08-01T03:00"), ("2026-08-01T05:00", "2026-08-01T06:00")):
        code, _, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings,
                               "--from", start, "--to", end)
        assert code == 0, err
    code, _, err = gridctl("settle", "verify", "--ledger", ledger)
    assert code == 1 and "period 2026-07-31T18:00:00+00:00 is missing" in err, err  # 03:00 JST
    # a gap may not hide a settled period, and must sit on period boundaries
    code, _, err = gridctl("settle", "gap", "-c", SITE, "--ledger", ledger, "--from", "2026-08-01T02:30",
                           "--to", "2026-08-01T05:00", "--reason", "meter lost")
    assert code == 2 and "is settled" in err and len(err.strip().splitlines()) == 1
    code, _, err = gridctl("settle", "gap", "-c", SITE, "--ledger", ledger, "--from", "2026-08-01T03:10",
                           "--to", "2026-08-01T05:00", "--reason", "meter lost")
    assert code == 2 and "not the start of a 30-minute period" in err
    code, out, err = gridctl("settle", "gap", "-c", SITE, "--ledger", ledger, "--from", "2026-08-01T03:00",
                             "--to", "2026-08-01T05:00", "--reason", "meter lost in the storm")
    assert code == 0 and "gap of 4 periods" in out, err
    code, out, err = gridctl("settle", "verify", "--ledger", ledger)
    assert code == 0, err
    assert "(4 declared as gaps)" in out
