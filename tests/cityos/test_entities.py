"""The city feed's builder, renderers and offline validator against the vendored Smart Data Models."""

import dataclasses
import datetime as dt
import hashlib
import json
import re
import socket
from decimal import Decimal as D
from pathlib import Path

import pytest
import referencing.exceptions
from jsonschema import Draft202012Validator

from gridctl.cityos.build import FeedSite, build_entities
from gridctl.cityos.model import MemberExchange, PeriodAggregate, aggregate_period
from gridctl.cityos.pseudonym import Pseudonymizer
from gridctl.cityos.render import key_values, normalized, simplify
from gridctl.cityos.validate import problems, registry
from gridctl.config import load_site
from gridctl.settlement.readings_csv import period_readings
from gridctl.settlement.settle import settle_period

SCHEMAS = Path(__file__).resolve().parents[2] / "gridctl" / "cityos" / "schemas"
FEED = FeedSite("misono", "Misono", "Asia/Tokyo", 35.8845, 139.7237, 2, "urn:ngsi-ld:saitama:", False)
START = dt.datetime(2026, 8, 1, 0, 30, tzinfo=dt.timezone.utc)  # 09:30 JST
MEMBERS = (MemberExchange("home-1", "home", D("1.25"), D("0")),
           MemberExchange("mall", "mall", D("40.5"), D("0.75")))
PERIOD = PeriodAggregate(START, START + dt.timedelta(minutes=30), D("41.75"), D("0.75"), MEMBERS)
KEY = "k" * 32
SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")


def _opted_in():
    return build_entities(dataclasses.replace(FEED, per_member=True), [PERIOD], Pseudonymizer(KEY, "misono"))


def test_block_measurement_hand_checked():
    community, block = build_entities(FEED, [PERIOD])
    assert community.id == "urn:ngsi-ld:saitama:EnergyCommunity:misono"
    kv = key_values(block)
    assert kv["id"] == "urn:ngsi-ld:saitama:ACMeasurement:misono:block:2026-08-01T09:30+09:00"
    assert (kv["totalActiveEnergyImport"], kv["totalActiveEnergyExport"]) == (41.75, 0.75)
    assert (kv["dateObservedFrom"], kv["dateObservedTo"], kv["dateObserved"]) == (
        "2026-08-01T00:30:00Z", "2026-08-01T01:00:00Z", "2026-08-01T01:00:00Z")
    assert kv["location"] == {"type": "Point", "coordinates": [139.7237, 35.8845]}
    norm = normalized(block)["totalActiveEnergyImport"]
    assert norm == {"type": "Property", "value": 41.75, "observedAt": "2026-08-01T01:00:00.000Z",
                    "unitCode": "KWH"}


def test_both_forms_come_from_one_entity_and_validate():
    entities = _opted_in()
    assert [e.type for e in entities] == ["EnergyCommunity", "ACMeasurement", "ACMeasurement", "ACMeasurement"]
    for entity in entities:
        kv, norm = key_values(entity), normalized(entity)
        assert simplify(norm) == kv
        assert problems(kv, "keyvalues") == [] and problems(norm, "normalized") == []


def test_validator_names_what_is_wrong():
    kv = key_values(build_entities(FEED, [PERIOD])[1])
    del kv["phaseType"]
    kv["dateObserved"] = "yesterday"
    kv["totalActiveEnergyImport"] = "41.75"
    found = {(p.path, p.message) for p in problems(kv, "keyvalues")}
    assert found == {("", "'phaseType' is a required property"),
                     ("dateObserved", "'yesterday' is not a 'date-time'"),
                     ("totalActiveEnergyImport", "'41.75' is not of type 'number'")}
    norm = normalized(build_entities(FEED, [PERIOD])[1])
    norm["name"] = "bare string"
    assert [str(p) for p in problems(norm, "normalized")] == [
        f"{norm['id']}: (entity): attribute 'name' is not a normalized NGSI-LD attribute (needs type and value)"]
    community = key_values(build_entities(FEED, [PERIOD])[0])
    community["location"] = {"type": "Point", "coordinates": [139.7]}
    assert [p.path for p in problems(community, "keyvalues")] == ["location"]  # from common-schema.json


def test_validation_is_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("validation tried the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for entity in _opted_in():
        assert problems(normalized(entity), "normalized") == []
    unknown = {"$schema": "https://json-schema.org/draft/2020-12/schema",
               "$ref": "https://smart-data-models.github.io/data-models/other-schema.json"}
    with pytest.raises(referencing.exceptions.Unresolvable):
        Draft202012Validator(unknown, registry=registry()).validate({})


def test_vendored_schemas_are_the_recorded_files():
    notice = (SCHEMAS / "NOTICE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|.*\| ([0-9a-f]{40}) \| ([0-9a-f]{64}) \|$", notice, re.M)
    assert {name for name, _, _ in rows} == {p.name for p in SCHEMAS.glob("*.json")}
    for name, _, digest in rows:
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == digest, name


def test_nothing_per_member_without_the_opt_in():
    entities = build_entities(FEED, [PERIOD, dataclasses.replace(PERIOD, start_utc=START + dt.timedelta(minutes=30))])
    assert len(entities) == 3 and all(":block:" in e.id for e in entities[1:])
    text = json.dumps([normalized(e) for e in entities])
    assert "home-1" not in text and '"mall"' not in text and ":member-" not in text
    assert "40.5" not in text and "1.25" not in text  # no member's figure either
    with pytest.raises(ValueError, match="pseudonym key"):
        build_entities(dataclasses.replace(FEED, per_member=True), [PERIOD])


def test_pseudonyms_are_stable_keyed_and_hide_the_member():
    ids = [e.id for e in _opted_in()[2:]]
    assert ids == [e.id for e in _opted_in()[2:]]  # stable
    text = json.dumps([normalized(e) for e in _opted_in()])
    assert "home-1" not in text and '"mall"' not in text
    one, other = Pseudonymizer(KEY, "misono"), Pseudonymizer("z" * 32, "misono")
    assert one("home-1") != other("home-1") and one("home-1") != one("home-2")
    assert re.fullmatch(r"[0-9a-f]{32}", one("home-1"))
    with pytest.raises(ValueError, match="at least 32"):
        Pseudonymizer("short", "misono")


PV_PERIOD = dataclasses.replace(
    PERIOD, pv_kwh=D("3.5"),
    members=(dataclasses.replace(MEMBERS[0], pv_kwh=D("1.0")), dataclasses.replace(MEMBERS[1], pv_kwh=D("2.5"))))


def test_pv_production_hand_checked_and_valid():
    community, block_ac, block_pv = build_entities(FEED, [PV_PERIOD])
    kv = key_values(block_pv)
    assert kv["type"] == "GreenEnergyMeasurement"
    assert kv["id"] == "urn:ngsi-ld:saitama:GreenEnergyMeasurement:misono:block:2026-08-01T09:30+09:00"
    assert kv["solarPowerGenerated"] == 7.0  # 3.5 kWh in half an hour
    assert normalized(block_pv)["solarPowerGenerated"] == {
        "type": "Property", "value": 7.0, "observedAt": "2026-08-01T01:00:00.000Z", "unitCode": "KWT"}
    assert "dateObserved" not in kv  # not an attribute of the model: the period is in the id
    assert problems(kv, "keyvalues") == [] and problems(normalized(block_pv), "normalized") == []
    kv["solarPowerGenerated"] = -1.0
    assert [(p.path, p.message) for p in problems(kv, "keyvalues")] == [
        ("solarPowerGenerated", "-1.0 is less than the minimum of 0")]


def test_member_pv_only_with_the_opt_in_and_summing_to_the_block():
    plain = build_entities(FEED, [PV_PERIOD])
    assert [e.type for e in plain] == ["EnergyCommunity", "ACMeasurement", "GreenEnergyMeasurement"]
    entities = build_entities(dataclasses.replace(FEED, per_member=True), [PV_PERIOD], Pseudonymizer(KEY, "misono"))
    pv = [key_values(e) for e in entities if e.type == "GreenEnergyMeasurement"]
    block, members = pv[0], pv[1:]
    assert ":block:" in block["id"] and len(members) == 2 and all(":member-" in m["id"] for m in members)
    assert block["solarPowerGenerated"] == sum(m["solarPowerGenerated"] for m in members) == 7.0
    assert all(problems(normalized(e), "normalized") == [] for e in entities)
    assert "home-1" not in json.dumps([normalized(e) for e in entities])


def _readings(pv_end):
    """A period's readings: grid for both members, and a PV counter (None: not read) per member."""
    counters = {("home-1", "grid"): (D("1.25"), D(0)), ("mall", "grid"): (D("40.5"), D("0.75"))}
    start = {k: (D(100), D(0)) for k in counters}
    end = {k: (D(100) + i, D(0) + e) for k, (i, e) in counters.items()}
    for member, value in pv_end.items():
        start[(member, "pv")] = (D(500), D(0))
        if value is not None:
            end[(member, "pv")] = (D(500) + value, D(0))
    return period_readings(START, start, end)


def test_aggregate_takes_pv_from_the_readings_and_never_a_partial_block_sum():
    settlement = settle_period(SITE, _readings({"home-1": D("1.0"), "mall": D("2.5")}))
    without_pv = settle_period(SITE, _readings({}))
    assert (settlement.members, settlement.flags) == (without_pv.members, without_pv.flags)  # PV is not settled
    assert settlement.readings_sha256 != without_pv.readings_sha256  # but it is in the hashed readings
    members = {"home-1": "home", "mall": "mall"}
    full = aggregate_period(settlement, members, _readings({"home-1": D("1.0"), "mall": D("2.5")}))
    assert full.pv_kwh == D("3.5") and [m.pv_kwh for m in full.members if m.member_id in members] == [D("1.0"), D("2.5")]
    partial = aggregate_period(settlement, members, _readings({"home-1": D("1.0"), "mall": None}))
    pv_of = {m.member_id: m.pv_kwh for m in partial.members}
    assert partial.pv_kwh is None and pv_of["home-1"] == D("1.0") and pv_of["mall"] is None
    old = aggregate_period(settlement, members, _readings({}))  # a ledger from before PV was recorded
    assert old.pv_kwh is None and all(m.pv_kwh is None for m in old.members)
    assert [e.type for e in build_entities(FEED, [old])] == ["EnergyCommunity", "ACMeasurement"]
