"""Apply a case's parameters to the base site: a validated rebuild, so every cross-check runs.

Every case site solves with one HiGHS thread (``control.solver_threads = 1``): tasks run side
by side, and concurrent HiGHS instances must use the same thread count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gridctl.config import SiteConfig
from gridctl.config.errors import format_key_path
from gridctl.config.tariffs import Tariff
from gridctl.tariffs import TariffLookupError, tariff_version
from sim.sweep.spec import CaseParams, TariffSet

__all__ = ["CaseError", "LoadedTariffSet", "apply_case", "check_tariff_cover"]


class CaseError(ValueError):
    """A case's parameters do not give a valid site (one line)."""


@dataclass(frozen=True)
class LoadedTariffSet:
    """A tariff set with its file read: ``tariffs`` replaces the site's when not None."""

    name: str
    tariffs: tuple[Tariff, ...] | None
    assign: TariffSet


def apply_case(site: SiteConfig, params: CaseParams, tariff_set: LoadedTariffSet | None) -> SiteConfig:
    """The base site with ``params`` applied (tariff set, then per-node tariffs, battery
    capacities, battery scale, market mechanism, reserve hours); raise CaseError if invalid."""
    data = site.model_dump(mode="json")
    data["control"]["solver_threads"] = 1
    if tariff_set is not None:
        if tariff_set.tariffs is not None:
            data["tariffs"] = [t.model_dump(mode="json") for t in tariff_set.tariffs]
        _set_contracts(data, tariff_set.assign.tariff, "tariff")
        _set_contracts(data, tariff_set.assign.buyback_tariff, "buyback_tariff")
    if params.tariff:
        _set_contracts(data, params.tariff, "tariff")
    if params.battery_capacity_kwh:
        _set_capacities(data, params.battery_capacity_kwh)
    if params.battery_scale is not None:
        for battery in _batteries(data):
            battery["rating"]["capacity_kwh"] *= params.battery_scale
    if params.mechanism is not None:
        data["market"]["mechanism"] = params.mechanism
    if params.reserve_hours_h is not None:
        data["islanding"]["reserve_hours_h"] = params.reserve_hours_h
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = format_key_path(tuple(error["loc"]))
        raise CaseError(f"the case gives an invalid site: {where + ': ' if where else ''}"
                        f"{error['msg'].removeprefix('Value error, ')}") from None


def _node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    for node in data["nodes"]:
        if node["id"] == node_id:
            return node
    raise CaseError(f"no node '{node_id}' in the base site")


def _set_contracts(data: dict[str, Any], by_node: dict[str, str], key: str) -> None:
    for node_id, tariff_id in by_node.items():
        _node(data, node_id)["contract"][key] = tariff_id


def _batteries(node_or_site: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = node_or_site.get("nodes", [node_or_site])
    return [d for node in nodes for d in node["devices"] if d["kind"] == "battery"]


def _set_capacities(data: dict[str, Any], by_node: dict[str, float]) -> None:
    for node_id, capacity_kwh in by_node.items():
        batteries = _batteries(_node(data, node_id))
        if not batteries:
            raise CaseError(f"battery_capacity_kwh: node '{node_id}' has no battery")
        base_kwh = sum(b["rating"]["capacity_kwh"] for b in batteries)
        for battery in batteries:
            battery["rating"]["capacity_kwh"] = capacity_kwh * battery["rating"]["capacity_kwh"] / base_kwh


def check_tariff_cover(site: SiteConfig, start_utc: dt.datetime, end_utc: dt.datetime) -> None:
    """Every member's tariffs must have a version on the first and last simulated day."""
    zone = ZoneInfo(site.site.timezone)
    days = sorted({start_utc.astimezone(zone).date(),
                   (end_utc - dt.timedelta(seconds=1)).astimezone(zone).date()})
    for node in site.nodes:
        for tariff_id in filter(None, (node.contract.tariff, node.contract.buyback_tariff)):
            for day in days:
                try:
                    tariff_version(site, tariff_id, day)
                except TariffLookupError as exc:
                    raise CaseError(f"{node.id}: {exc}") from None
