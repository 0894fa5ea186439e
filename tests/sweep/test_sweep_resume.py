"""An interrupted sweep resumes: stored cases are skipped (and said so), the table is the same."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.sweep.helpers import run_cli, write_sweep

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The sweep file and the folder of its complete serial run."""
    folder = tmp_path_factory.mktemp("sweep")
    sweep = write_sweep(folder)
    out = folder / "reference"
    result = run_cli(str(sweep), "--out", str(out), "--scheduler", "serial")
    assert result.exit_code == 0, result.output
    return sweep, out


def test_precreated_cases_are_skipped_and_the_table_is_the_same(tmp_path, reference):
    sweep, reference = reference
    stored = sorted((reference / "cases").glob("*.json"))
    out = tmp_path / "resumed"
    (out / "cases").mkdir(parents=True)
    for path in stored[:2]:
        shutil.copy(path, out / "cases" / path.name)
    # a damaged case file (not valid JSON) is run again, never trusted
    (out / "cases" / stored[2].name).write_text('{"case_hash": "', encoding="utf-8")
    result = run_cli(str(sweep), "--out", str(out), "--scheduler", "process:2")
    assert result.exit_code == 0, result.output
    assert "4 cases: 2 already done (skipped), 2 run, 0 failed" in result.output
    assert json.loads((out / "cases" / stored[2].name).read_text())["case_hash"] == stored[2].stem
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"),
                                  pd.read_csv(reference / "results.csv"), check_exact=True)


def test_a_stored_case_is_read_not_recomputed(tmp_path, reference):
    sweep, complete = reference
    out = tmp_path / "copy"
    shutil.copytree(complete / "cases", out / "cases")
    path = sorted((out / "cases").glob("*.json"))[0]
    doc = json.loads(path.read_text())
    doc["policies"][0]["metrics"]["total_cost_jpy"] = 123456.5
    path.write_text(json.dumps(doc))
    result = run_cli(str(sweep), "--out", str(out), "--scheduler", "serial")
    assert result.exit_code == 0, result.output
    assert "4 cases: 4 already done (skipped), 0 run, 0 failed" in result.output
    table = pd.read_csv(out / "results.csv")
    assert table.loc[table["case_hash"] == path.stem, "total_cost_jpy"].item() == 123456.5


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, reference):
    sweep, reference = reference
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from gridctl.cli import main; main()", "sweep", str(sweep),
         "--out", str(out), "--scheduler", "serial"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not list((out / "cases").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL  # killed before it finished
    done = len(list((out / "cases").glob("*.json")))
    assert 1 <= done < 4
    result = run_cli(str(sweep), "--out", str(out), "--scheduler", "serial")
    assert result.exit_code == 0, result.output
    assert f"4 cases: {done} already done (skipped), {4 - done} run, 0 failed" in result.output
    assert not list((out / "cases").glob(".*"))  # no temporary file left behind in the end
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"),
                                  pd.read_csv(reference / "results.csv"), check_exact=True)
