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
from gridctl.cityos.model import MemberExchange, PeriodAggregate
from gridctl.cityos.pseudonym import Pseudonymizer
from gridctl.cityos.render import key_values, normalized, simplify
from gridctl.cityos.validate import problems, registry

SCHEMAS = Path(__file__).resolve().parents[2] / "gridctl" / "cityos" / "schemas"
FEED = FeedSite("misono", "Misono", "Asia/Tokyo", 35.8845, 139.7237, 2, "urn:ngsi-ld:saitama:", False)
START = dt.datetime(2026, 8, 1, 0, 30, tzinfo=dt.timezone.utc)  # 09:30 JST
MEMBERS = (MemberExchange("home-1", "home", D("1.25"), D("0")),
           MemberExchange("mall", "mall", D("40.5"), D("0.75")))
PERIOD = PeriodAggregate(START, START + dt.timedelta(minutes=30), D("41.75"), D("0.75"), MEMBERS)
KEY = "k" * 32


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
