"""Reading the dashboard JSON files: panels, targets, variables and annotation queries.

Grafana's macros and template variables are substituted here as Grafana's InfluxQL data source
does before a query goes to the server (``$timeFilter``, ``$__interval``, ``$var``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
DS_INPUT = "${DS_INFLUXDB}"


@dataclass(frozen=True)
class Query:
    """One InfluxQL statement of a dashboard and where it sits."""

    where: str           # "<file> panel 3 'Block power' target A"
    influxql: str
    result_format: str   # time_series, table, or "variable"/"annotation"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(doc: dict) -> Iterator[dict]:
    """Every panel, including those nested in collapsed rows."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(path: Path, doc: dict) -> Iterator[Query]:
    for panel in panels(doc):
        for t in panel.get("targets", []):
            yield Query(f"{path.name} panel {panel['id']} {panel['title']!r} target {t['refId']}",
                        t["query"], t.get("resultFormat", "time_series"))


def annotation_queries(path: Path, doc: dict) -> Iterator[Query]:
    for a in doc["annotations"]["list"]:
        if a.get("query"):
            yield Query(f"{path.name} annotation {a['name']!r}", a["query"], "annotation")


def overlapping(boxes: list[tuple[int, dict]]) -> list[tuple[int, int]]:
    """Pairs of panel ids whose ``gridPos`` rectangles share any cell."""
    pairs = []
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            if (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                    and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]):
                pairs.append((a, b))
    return pairs


def query_variables(doc: dict) -> list[dict]:
    return [v for v in doc["templating"]["list"] if v["type"] == "query"]


def constants(doc: dict) -> dict[str, str]:
    return {v["name"]: v["query"] for v in doc["templating"]["list"] if v["type"] == "constant"}


def interpolate(influxql: str, start_utc: dt.datetime, end_utc: dt.datetime, interval: str,
                values: Mapping[str, str]) -> str:
    """The statement as Grafana sends it: time filter in epoch ms, interval, variables."""
    start_ms = int(start_utc.timestamp() * 1000)
    end_ms = int(end_utc.timestamp() * 1000) - 1
    out = influxql.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    out = out.replace("$__interval", interval).replace("$interval", interval)
    for name in sorted(values, key=len, reverse=True):  # $site before $s
        out = re.sub(rf"\$\{{{name}\}}|\${name}\b", lambda _: values[name], out)
    return out


def _top_level(text: str, keyword: str) -> list[int]:
    """Offsets of ``keyword`` outside parentheses and quotes."""
    depth, quote, hits = 0, "", []
    upper = text.upper()
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"/":
            quote = ch if ch != "/" or text[i - 1] in "~ " else ""
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and upper.startswith(keyword, i):
            hits.append(i)
    return hits


def select_aliases(influxql: str) -> list[str]:
    """The ``AS "alias"`` of each expression of the outer SELECT (empty string: no alias)."""
    select = influxql[len("SELECT "):_top_level(influxql, " FROM ")[0]]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(select):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(select[start:i])
            start = i + 1
    parts.append(select[start:])
    return [m.group(1) if (m := re.search(r'\bAS "(\w+)"\s*$', p.strip())) else "" for p in parts]


def group_by(influxql: str) -> tuple[str | None, list[str]]:
    """The outer ``GROUP BY``: time bucket (or None) and tag keys."""
    hits = _top_level(influxql, " GROUP BY ")
    if not hits:
        return None, []
    clause = influxql[hits[-1] + len(" GROUP BY "):]
    clause = re.split(r"\s(?:fill|tz|LIMIT|ORDER)\b", clause)[0]
    bucket, tags = None, []
    for item in (p.strip() for p in clause.split(",")):
        if m := re.fullmatch(r"time\((.+)\)", item):
            bucket = m.group(1)
        elif item:
            tags.append(item.strip('"'))
    return bucket, tags
