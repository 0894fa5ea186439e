"""``gridctl cityos export|push`` on a real ledger (settled through the CLI) and a broker stand-in.

No NGSI-LD context broker (Orion-LD, Scorpio) can run here. :class:`BrokerStandIn` is a STAND-IN
for one: a small ``http.server`` on loopback that records every request and answers the
upsert with the statuses a broker uses (201 created, 503 busy, 401 unauthorized). It checks
nothing itself; the tests assert the requests' paths, headers and bodies (validated against the
vendored Smart Data Models schemas).
"""

import http.server
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridctl.cityos.validate import problems
from gridctl.cli import app

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "configs" / "misono.yaml"
MEMBER_IDS = ("home-1", "home-2", "home-3", "home-4", "home-5", "store", "mall")
PERIODS = 48
TOKEN = "s3cret-token"


def gridctl(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout, result.stderr


class BrokerStandIn:
    """A STAND-IN for an NGSI-LD broker's upsert endpoint (records requests, scripted answers)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)  # answered in order, then 201
        self.requests = []  # (path, headers, body)
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stand_in.requests.append((self.path, self.headers, json.loads(body)))  # case-insensitive
                status = stand_in.statuses.pop(0) if stand_in.statuses else 201
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def day_ledger(tmp_path_factory):
    """A day (48 periods) of sample readings settled into a fresh ledger through the CLI."""
    folder = tmp_path_factory.mktemp("cityos")
    readings, ledger = folder / "aug.csv", folder / "ledger.sqlite"
    assert gridctl("settle", "sample-readings", "-c", SITE, "--month", "2026-08", "--out", readings)[0] == 0
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings,
                             "--from", "2026-08-01T00:00", "--to", "2026-08-02T00:00")
    assert code == 0 and f"settled {PERIODS} periods" in out, err
    return ledger


@pytest.fixture
def ledger(day_ledger, tmp_path):
    """A private copy of the day's ledger (each test starts with an empty city outbox)."""
    copy = tmp_path / "ledger.sqlite"
    shutil.copyfile(day_ledger, copy)
    return copy


@pytest.fixture
def broker():
    stand_in = BrokerStandIn()
    yield stand_in
    stand_in.close()


def site_with_cityos(tmp_path, broker_url, **keys):
    """misono.yaml with a cityos section (device profiles still found next to the original)."""
    text = SITE.read_text(encoding="utf-8").replace(
        "device_profiles_dir: devices", f"device_profiles_dir: {SITE.parent / 'devices'}")
    section = {"broker_url": broker_url, "tenant": "saitama", "batch_size": 20, **keys}
    text += "\ncityos:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in section.items())
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def city_outbox(ledger):
    with sqlite3.connect(ledger) as db:
        return (db.execute("SELECT COUNT(*) FROM cityos_outbox").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def credentials(tmp_path, **files):
    folder = tmp_path / "credentials"
    folder.mkdir(exist_ok=True)
    for name, value in files.items():
        (folder / name).write_text(value + "\n", encoding="utf-8")
    return {"CREDENTIALS_DIRECTORY": str(folder)}


@pytest.mark.parametrize("form", ["keyvalues", "normalized"])
def test_export_writes_valid_block_entities(ledger, tmp_path, form):
    out = tmp_path / f"{form}.json"
    code, stdout, err = gridctl("cityos", "export", "--ledger", ledger, "-c", SITE, "--from", "2026-08-01T09:00",
                                "--to", "2026-08-01T12:00", "--format", form, "--out", out)
    assert code == 0, err
    docs = json.loads(out.read_text(encoding="utf-8"))
    assert [d["type"] for d in docs] == ["EnergyCommunity"] + ["ACMeasurement"] * 6
    assert docs[1]["id"] == "urn:ngsi-ld:ACMeasurement:misono:block:2026-08-01T09:00+09:00"
    assert all(problems(d, form) == [] for d in docs)
    text = out.read_text(encoding="utf-8")
    assert not any(f'"{m}"' in text or f":{m}" in text for m in MEMBER_IDS)  # block aggregates only


def test_export_refuses_an_unknown_format(ledger, tmp_path):
    code, _, err = gridctl("cityos", "export", "--ledger", ledger, "-c", SITE, "--format", "csv", "--out",
                           tmp_path / "x.json")
    assert code == 2 and err == "error: --format 'csv' is not one of keyvalues, normalized\n"


def test_push_upserts_with_token_and_tenant_retries_a_503_without_duplicates(ledger, tmp_path, broker):
    broker.statuses = [503]
    site = site_with_cityos(tmp_path, broker.url)
    env = credentials(tmp_path, **{"cityos-token": TOKEN})
    influx_rows = city_outbox(ledger)[1]
    code, out, err = gridctl("cityos", "push", "--ledger", ledger, "-c", site, env=env)
    assert code == 0, err
    assert out == f"queued 49 entities, upserted 49 to ngsi-ld {broker.url} tenant=saitama\n"
    assert len(broker.requests) == 1 + 3  # the refused batch again, then 20 + 20 + 9
    assert broker.requests[0][2] == broker.requests[1][2]  # the 503'd batch was sent again
    for path, headers, body in broker.requests:
        assert path == "/ngsi-ld/v1/entityOperations/upsert"
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["NGSILD-Tenant"] == "saitama"
        assert headers["Content-Type"] == "application/ld+json"
        assert all(problems(entity, "normalized") == [] for entity in body)
    accepted = [e["id"] for _, _, body in broker.requests[1:] for e in body]
    assert len(accepted) == len(set(accepted)) == 1 + PERIODS  # each entity once
    assert not any(":member-" in i for i in accepted)
    assert city_outbox(ledger) == (0, influx_rows)  # city rows gone after 2xx; InfluxDB's untouched
    code, out, err = gridctl("cityos", "push", "--ledger", ledger, "-c", site, env=env)
    assert code == 0 and out.startswith("queued 0 entities, upserted 0") and len(broker.requests) == 4


def test_push_rejected_token_keeps_the_entities(ledger, tmp_path, broker):
    broker.statuses = [401]
    site = site_with_cityos(tmp_path, broker.url)
    code, out, err = gridctl("cityos", "push", "--ledger", ledger, "-c", site, env={"GRIDCTL_CITYOS_TOKEN": "bad"})
    assert code == 1 and err.count("\n") == 1
    assert "HTTP 401" in err and err.endswith("(49 entities kept in the city outbox)\n")
    assert len(broker.requests) == 1  # a rejection is not retried
    assert city_outbox(ledger)[0] == 49


def test_push_without_token_is_one_line(ledger, tmp_path, broker):
    site = site_with_cityos(tmp_path, broker.url)
    code, _, err = gridctl("cityos", "push", "--ledger", ledger, "-c", site, env={"GRIDCTL_CITYOS_TOKEN": ""})
    assert code == 2
    assert err == "error: no NGSI-LD broker token: set the 'cityos-token' credential or $GRIDCTL_CITYOS_TOKEN\n"
    assert broker.requests == []


def test_per_member_needs_the_opt_in_and_a_key_and_publishes_pseudonyms(ledger, tmp_path, broker):
    site = site_with_cityos(tmp_path, broker.url, per_member=True)
    env = credentials(tmp_path, **{"cityos-token": TOKEN})
    code, _, err = gridctl("cityos", "push", "--ledger", ledger, "-c", site, env=env)
    assert code == 2 and err.startswith("error: cityos.per_member needs a pseudonym key") and not broker.requests
    env = credentials(tmp_path, **{"cityos-token": TOKEN, "cityos-pseudonym-key": "p" * 40})
    code, out, err = gridctl("cityos", "push", "--ledger", ledger, "-c", site, "--from", "2026-08-01T09:00",
                             "--to", "2026-08-01T10:00", env=env)
    assert code == 0, err
    entities = [e for _, _, body in broker.requests for e in body]
    members = [e for e in entities if ":member-" in e["id"]]
    assert len(entities) == 1 + 2 + 2 * len(MEMBER_IDS) and len(members) == 2 * len(MEMBER_IDS)
    assert len({e["id"].split(":")[4] for e in members}) == len(MEMBER_IDS)  # one pseudonym each
    text = json.dumps(entities)
    assert not any(f'"{m}"' in text or f":{m}" in text for m in MEMBER_IDS)
    assert all(problems(e, "normalized") == [] for e in entities)
