"""JSON-ready dicts of settlements, for the ledger (string decimals: exact and stable)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, fields
from decimal import Decimal
from typing import Any

from gridctl.settlement.model import MemberLine, PeriodChecks, PeriodSettlement, StatementRules, Trade


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def member_to_dict(line: MemberLine) -> dict[str, Any]:
    """A member line as a dict of strings, numbers and lists."""
    data = {f.name: getattr(line, f.name) for f in fields(MemberLine)}
    data["trades"] = [vars(t) for t in line.trades]
    data["rules"] = vars(line.rules)
    return _plain(data)


def member_from_dict(data: dict[str, Any]) -> MemberLine:
    """Inverse of :func:`member_to_dict`."""
    values: dict[str, Any] = {}
    if "grid_only_jpy" not in data and "counterfactual_jpy" in data:  # ledgers made before the rename
        data = {**data, "grid_only_jpy": data["counterfactual_jpy"]}
    for f in fields(MemberLine):
        if f.name not in data and f.name in _MEMBER_LATER:
            continue  # an entry of an older ledger: the field's default (0)
        raw = data[f.name]
        if f.name == "trades":
            values[f.name] = tuple(
                Trade(counterparty=t["counterparty"], **{k: Decimal(t[k]) for k in t if k != "counterparty"})
                for t in raw
            )
        elif f.name == "rules":
            values[f.name] = StatementRules(
                **{**raw, "consumption_tax_pct": Decimal(raw["consumption_tax_pct"])}
            )
        elif f.name in ("member_id", "role", "import_tariff", "export_tariff"):
            values[f.name] = raw
        else:
            values[f.name] = Decimal(raw)
    return MemberLine(**values)


def period_to_dict(settlement: PeriodSettlement) -> dict[str, Any]:
    """The block-level part of a settlement (everything but the member lines)."""
    data = {f.name: getattr(settlement, f.name) for f in fields(PeriodSettlement) if f.name != "members"}
    data["checks"] = asdict(settlement.checks)
    data["member_ids"] = [m.member_id for m in settlement.members]
    return _plain(data)


def period_from_dict(data: dict[str, Any], members: tuple[MemberLine, ...]) -> PeriodSettlement:
    """Inverse of :func:`period_to_dict` given the member lines."""
    checks = data["checks"]
    sdr = data["supply_demand_ratio"]
    return PeriodSettlement(
        start_utc=dt.datetime.fromisoformat(data["start_utc"]),
        mechanism=data["mechanism"],
        price_jpy_per_kwh=Decimal(data["price_jpy_per_kwh"]),
        seller_price_jpy_per_kwh=Decimal(data["seller_price_jpy_per_kwh"]),
        fee_jpy_per_kwh=Decimal(data["fee_jpy_per_kwh"]),
        supply_demand_ratio=None if sdr is None else Decimal(sdr),
        sold_kwh=Decimal(data["sold_kwh"]),
        bought_kwh=Decimal(data["bought_kwh"]),
        losses_kwh=Decimal(data["losses_kwh"]),
        members=members,
        checks=PeriodChecks(
            energy_balance_ok=checks["energy_balance_ok"],
            money_balance_ok=checks["money_balance_ok"],
            individually_rational_ok=checks["individually_rational_ok"],
            tolerance_jpy=Decimal(checks["tolerance_jpy"]),
            failures=tuple(checks["failures"]),
        ),
        flags=tuple(data["flags"]),
        readings_sha256=data["readings_sha256"],
        **{name: _decimal_or_none(data.get(name)) for name in _PERIOD_BAND},
        **{name: Decimal(data.get(name, "0")) for name in _PERIOD_WHEELING},
        market_terms_from=data.get("market_terms_from"),
    )


#: Period fields added later: absent (None) in the entries of older ledgers.
_PERIOD_BAND = ("buy_limit_jpy_per_kwh", "sell_limit_jpy_per_kwh", "supply_kwh", "demand_kwh")
#: Period and member fields of wheeling, added later: absent (0) in the entries of older ledgers.
_PERIOD_WHEELING = ("wheeled_kwh", "wheeling_shortfall_jpy", "platform_credit_jpy")
_MEMBER_LATER = frozenset({
    "wheeled_sent_kwh", "wheeled_received_kwh", "wheeling_paid_jpy", "wheeling_received_jpy",
    "platform_credit_jpy",
})


def _decimal_or_none(raw: str | None) -> Decimal | None:
    return None if raw is None else Decimal(raw)
