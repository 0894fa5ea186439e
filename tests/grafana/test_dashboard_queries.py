"""Every dashboard query runs against the real influxd, filled with a simulated day (conftest).

Macros are substituted as Grafana's InfluxQL data source does: ``$timeFilter`` with the
simulated day in epoch milliseconds, ``$__interval`` with 30m, the ``timezone`` constant, and
each query variable with the first value its own query returns (``site``, then ``member``).
Each result must be non-empty and of the shape the panel expects: the columns ``time`` and
the query's aliases, one series per value of each GROUP BY tag, buckets on the interval (days
at the site's midnight), and at least one value in every column.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.grafana.dashboards import (
    DASHBOARDS, Query, annotation_queries, constants, group_by, interpolate, load, panel_queries,
    query_variables, select_aliases,
)

INTERVAL = "30m"
JST_MIDNIGHT_UTC_S = 15 * 3600  # 00:00 JST is 15:00 UTC


def _run(day, influxql: str) -> list[dict]:
    result = day.server.query(influxql, day.database)["results"][0]
    assert "error" not in result, f"{result.get('error')}: {influxql}"
    return result.get("series", [])


def _variables(day, doc: dict) -> dict[str, str]:
    """Template variables as Grafana resolves them, in order; each query must return values."""
    values = dict(constants(doc))
    for v in query_variables(doc):
        series = _run(day, interpolate(v["query"], day.start_utc, day.end_utc, INTERVAL, values))
        assert series and series[0]["columns"] == ["key", "value"], f"variable {v['name']} is empty"
        values[v["name"]] = series[0]["values"][0][1]
    return values


def _check_shape(q: Query, influxql: str, series: list[dict]) -> None:
    assert series, f"{q.where}: no result for {influxql}"
    aliases = select_aliases(q.influxql)
    bucket, tags = group_by(q.influxql)
    for s in series:
        assert s["columns"] == ["time", *aliases], f"{q.where}: columns {s['columns']}"
        assert set(tags) <= set(s.get("tags", {})), f"{q.where}: series without tags {tags}"
        assert s["values"], f"{q.where}: a series without rows"
    keys = [tuple(sorted(s.get("tags", {}).items())) for s in series]
    assert len(keys) == len(set(keys)), f"{q.where}: repeated series"
    for i, name in enumerate(aliases, start=1):
        assert any(row[i] is not None for s in series for row in s["values"]), \
            f"{q.where}: column {name} has no value"
    times_s = [row[0] // 1_000_000_000 for s in series for row in s["values"]]
    if bucket == "1d":
        assert all(t % 86400 == JST_MIDNIGHT_UTC_S for t in times_s), f"{q.where}: days not cut at JST midnight"
    elif bucket is not None:
        assert all(t % 1800 == 0 for t in times_s), f"{q.where}: buckets off the 30-minute grid"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_every_query_returns_data_of_the_expected_shape(filled_day, path):
    doc = load(path)
    values = _variables(filled_day, doc)
    assert values["site"] == "misono" and values["timezone"] == "Asia/Tokyo"
    queries = [*panel_queries(path, doc), *annotation_queries(path, doc)]
    assert queries
    for q in queries:
        influxql = interpolate(q.influxql, filled_day.start_utc, filled_day.end_utc, INTERVAL, values)
        assert "$" not in influxql.replace("$/", "").replace("/^", ""), f"{q.where}: unsubstituted {influxql}"
        _check_shape(q, influxql, _run(filled_day, influxql))


def _panel_series(day, file: str, title: str) -> list[dict]:
    path = next(p for p in DASHBOARDS if p.name == file)
    doc = load(path)
    values = _variables(day, doc)
    q = next(q for q in panel_queries(path, doc) if f"{title!r}" in q.where)
    return _run(day, interpolate(q.influxql, day.start_utc, day.end_utc, INTERVAL, values))


def test_link_flow_panel_has_one_series_per_router_link(filled_day):
    series = _panel_series(filled_day, "gridctl-block-overview.json", "P2P flow per router link")
    assert sorted(s["tags"]["device"] for s in series) == sorted(filled_day.link_ids)


def test_soc_panel_has_one_series_per_member_with_a_battery(filled_day):
    series = _panel_series(filled_day, "gridctl-block-overview.json", "Battery state of charge")
    assert sorted(s["tags"]["device"] for s in series) == sorted(filled_day.battery_nodes)
    assert all(0 <= row[1] <= 100 for s in series for row in s["values"])


def test_islanding_events_count_the_simulated_outage(filled_day):
    assert filled_day.islandings == 1
    (series,) = _panel_series(filled_day, "gridctl-block-overview.json", "Islanding events")
    assert series["values"][0][1] == filled_day.islandings
    (modes,) = _panel_series(filled_day, "gridctl-block-overview.json", "Operating mode")
    assert {row[1] for row in modes["values"]} >= {"grid_connected", "islanded"}


def test_member_bill_panel_matches_the_settled_periods(filled_day):
    (series,) = _panel_series(filled_day, "gridctl-member.json", "Bill in range")
    _, bill_jpy, grid_only_jpy, savings_jpy = series["values"][0]
    assert savings_jpy == pytest.approx(grid_only_jpy - bill_jpy, abs=0.05)
    daily = _panel_series(filled_day, "gridctl-member.json", "Bill against grid-only, per day")
    (day,) = [row for row in daily[0]["values"]]
    assert day[1] == pytest.approx(bill_jpy, abs=0.05)
    assert dt.datetime.fromtimestamp(day[0] / 1e9, dt.timezone.utc) == filled_day.start_utc


def test_settlement_stats_count_the_simulated_periods(filled_day):
    (periods,) = _panel_series(filled_day, "gridctl-settlement.json", "Periods settled")
    (flags,) = _panel_series(filled_day, "gridctl-settlement.json", "Data-quality flags")
    (checks,) = _panel_series(filled_day, "gridctl-settlement.json", "Failed checks")
    got = (periods["values"][0][1], flags["values"][0][1], checks["values"][0][1])
    assert got == (filled_day.periods, filled_day.flags, filled_day.failed_checks)
    assert filled_day.periods == 48 and filled_day.flags > 0  # the outage's periods carry flags
