"""Commissioning reports an installer can hand over: Markdown and JSON."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from gridctl.commission.checks import CheckResult, overall

_MARK = {"pass": "PASS", "fail": "**FAIL**", "warn": "warn", "skip": "skip"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(site_id: str, results: list[CheckResult], at_utc: dt.datetime, active: bool) -> str:
    """A Markdown report: header, verdict, one table row per check."""
    verdict = overall(results).upper()
    devices = sorted({r.device_id for r in results}, key=[r.device_id for r in results].index)
    lines = [
        f"# Commissioning report: {site_id}",
        "",
        f"- Probed at: {at_utc.isoformat(timespec='seconds')}",
        f"- Devices: {len(devices)}",
        f"- Active battery test: {'yes' if active else 'no'}",
        f"- Result: **{verdict}**",
        "",
        "| Device | Check | Result | Detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.device_id} | {r.check} | {_MARK.get(r.status, r.status)} | {_escape(r.detail)} |"
              for r in results]
    return "\n".join(lines) + "\n"


def render_json(site_id: str, results: list[CheckResult], at_utc: dt.datetime, active: bool) -> str:
    """The same report as JSON (one object; ``checks`` in probe order)."""
    body = {"site": site_id, "probed_at_utc": at_utc.isoformat(timespec="seconds"), "active": active,
            "result": overall(results), "checks": [r.as_dict() for r in results]}
    return json.dumps(body, indent=2) + "\n"


def write_reports(path: Path, site_id: str, results: list[CheckResult], at_utc: dt.datetime,
                  active: bool) -> tuple[Path, Path]:
    """Write ``<path stem>.md`` and ``<path stem>.json``; return both paths."""
    md, js = path.with_suffix(".md"), path.with_suffix(".json")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(render_markdown(site_id, results, at_utc, active), encoding="utf-8")
    js.write_text(render_json(site_id, results, at_utc, active), encoding="utf-8")
    return md, js
