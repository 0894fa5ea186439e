"""Lint of every dashboard JSON in deploy/grafana/dashboards (no Grafana server runs here)."""

from __future__ import annotations

import json
import re

import pytest

from tests.grafana.dashboards import (
    DASHBOARDS, DS_INPUT, annotation_queries, group_by, load, overlapping, panel_queries, panels,
    select_aliases,
)

IDS = [p.name for p in DASHBOARDS]
UNIT_PANELS = {"timeseries", "stat", "gauge", "bargauge", "barchart"}
BUILTIN_UIDS = {"-- Grafana --"}


def test_there_are_the_four_dashboards():
    assert IDS == ["gridctl-block-overview.json", "gridctl-device-health.json",
                   "gridctl-member.json", "gridctl-settlement.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_dashboard_is_classic_json_with_the_datasource_input(path):
    doc = json.loads(path.read_text())  # valid JSON
    assert doc["schemaVersion"] == 39
    assert doc["timezone"] == "Asia/Tokyo"
    assert doc["id"] is None and re.fullmatch(r"gridctl-[a-z-]+", doc["uid"])
    assert [(i["name"], i["type"], i["pluginId"]) for i in doc["__inputs"]] == \
        [("DS_INFLUXDB", "datasource", "influxdb")]
    # provisioning does not fill __inputs: a datasource variable of the same name resolves it there
    variable = next(v for v in doc["templating"]["list"] if v["name"] == "DS_INFLUXDB")
    assert variable["type"] == "datasource" and variable["query"] == "influxdb"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_panel_ids_are_unique_and_panels_do_not_overlap(path):
    doc = load(path)
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids {ids}"
    boxes = [(p["id"], p["gridPos"]) for p in doc["panels"]]
    for _, g in boxes:
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, g
    assert overlapping(boxes) == [], f"{path.name}: overlapping panels"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_target_and_variable_names_the_datasource_input(path):
    doc = load(path)
    for panel in panels(doc):
        assert panel["datasource"] == {"type": "influxdb", "uid": DS_INPUT}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for t in panel["targets"]:
            assert t["datasource"] == {"type": "influxdb", "uid": DS_INPUT}, (panel["title"], t["refId"])
            assert t["rawQuery"] is True and t["query"].startswith("SELECT ")
    for v in doc["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == {"type": "influxdb", "uid": DS_INPUT}, v["name"]
    for a in doc["annotations"]["list"]:
        if not a.get("builtIn"):
            assert a["datasource"] == {"type": "influxdb", "uid": DS_INPUT}, a["name"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_no_hard_coded_datasource_uid(path):
    def uids(node):
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                yield node["datasource"].get("uid")
            elif isinstance(node.get("datasource"), str):
                yield node["datasource"]
            for value in node.values():
                yield from uids(value)
        elif isinstance(node, list):
            for value in node:
                yield from uids(value)

    found = set(uids(load(path)))
    assert found <= {DS_INPUT} | BUILTIN_UIDS, f"{path.name}: hard-coded datasource {found}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_units_are_set(path):
    for panel in panels(load(path)):
        if panel["type"] in UNIT_PANELS:
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{path.name}: {panel['title']} has no unit"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_selected_column_is_named_with_its_unit(path):
    doc = load(path)
    for q in [*panel_queries(path, doc), *annotation_queries(path, doc)]:
        aliases = select_aliases(q.influxql)
        assert all(aliases), f"{q.where}: every SELECT expression needs AS \"name\": {q.influxql}"
        assert len(set(aliases)) == len(aliases), q.where


def test_the_lint_helpers_catch_what_they_look_for():
    box = {"x": 0, "y": 0, "w": 12, "h": 8}
    assert overlapping([(1, box), (2, {**box, "x": 11})]) == [(1, 2)]
    assert overlapping([(1, box), (2, {**box, "x": 12}), (3, {**box, "y": 8})]) == []
    sub = ('SELECT sum("pv") AS "pv_kw", max("x") FROM (SELECT mean("pv_kw") AS "pv" FROM "t" '
           'WHERE "site" =~ /^a, b$/ GROUP BY time(5m), "device") WHERE $timeFilter '
           "GROUP BY time($__interval), \"member\" fill(none) tz('Asia/Tokyo')")
    assert select_aliases(sub) == ["pv_kw", ""]
    assert group_by(sub) == ("$__interval", ["member"])
    assert group_by('SELECT last("x") AS "x" FROM "t"') == (None, [])
