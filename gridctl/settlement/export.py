"""Per-period export for retailers: one typed row per member per settled period.

Pure: settlements (as the ledger holds them) in, rows out; the CLI writes them as CSV or
Parquet (``gridctl settle export``, columns in docs/settlement-export.md).

The columns are the fields of :class:`PeriodMemberRow`, in order: the one place that names
them. A field without a source is copied from the :class:`~gridctl.settlement.model.MemberLine`
attribute of the same name, so a member column the settlement gains is exported by adding one
annotated line here; a block-level column names its source with :func:`_period`. Each
column's type follows from its annotation and its unit suffix: ``_kwh`` energies are exact
decimals with :data:`ENERGY_SCALE` places, ``_jpy`` money and ``_jpy_per_kwh`` prices with
:data:`MONEY_SCALE` places (the ledger's quanta), so nothing is rounded on the way out.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gridctl.settlement.model import MemberLine, PeriodSettlement

JST = ZoneInfo("Asia/Tokyo")
#: Decimal places of exported energies [kWh] (the ledger's counter and energy quantum).
ENERGY_SCALE = 6
#: Decimal places of exported money [JPY] and prices [JPY/kWh] (the ledger's quanta).
MONEY_SCALE = 4
#: Total digits of an exported decimal (Parquet ``decimal128(18, scale)``, fits an int64).
DECIMAL_PRECISION = 18
#: Separator of the flags in one CSV cell.
FLAG_SEPARATOR = ";"

_Getter = Callable[[PeriodSettlement, MemberLine, int], Any]


def _period(getter: _Getter) -> Any:
    """A column taken from the period (block level) or the ledger, not the member line."""
    return field(metadata={"source": getter})


@dataclass(frozen=True)
class PeriodMemberRow:
    """One member's settlement of one period, as exported (field order = column order).

    Energies [kWh] are counter differences at the member's meters and router legs, >= 0;
    money [JPY] is tax-inclusive at the ledger's 0.0001 JPY quantum; prices [JPY/kWh].
    ``bill_jpy`` = grid import - grid export + P2P paid + fee - P2P received + wheeling paid -
    wheeling received - platform credit at the member's prices (negative: the member is owed);
    ``grid_only_jpy`` is the grid-only bill of the member's own net metered energy. P2P kWh are
    the P2P-priced (own-surplus) kWh; grid energy relayed over a router is in the ``wheeled_*``
    columns (docs/settlement-rules.md).
    The period's band and block totals are None for periods recorded before they were kept.
    """

    period_start_jst: dt.datetime = _period(lambda p, m, r: p.start_utc.astimezone(JST))
    member_id: str
    revision: int = _period(lambda p, m, r: r)
    role: str
    grid_import_kwh: Decimal
    grid_export_kwh: Decimal
    p2p_bought_kwh: Decimal
    p2p_sold_kwh: Decimal
    import_price_jpy_per_kwh: Decimal
    export_price_jpy_per_kwh: Decimal
    p2p_price_jpy_per_kwh: Decimal = _period(lambda p, m, r: p.price_jpy_per_kwh)
    p2p_seller_price_jpy_per_kwh: Decimal = _period(lambda p, m, r: p.seller_price_jpy_per_kwh)
    fee_jpy_per_kwh: Decimal = _period(lambda p, m, r: p.fee_jpy_per_kwh)
    grid_import_jpy: Decimal
    grid_export_jpy: Decimal
    p2p_paid_jpy: Decimal
    p2p_received_jpy: Decimal
    fee_jpy: Decimal
    wheeled_sent_kwh: Decimal
    wheeled_received_kwh: Decimal
    wheeling_paid_jpy: Decimal
    wheeling_received_jpy: Decimal
    platform_credit_jpy: Decimal
    bill_jpy: Decimal
    grid_only_jpy: Decimal
    import_tariff: str
    export_tariff: str
    mechanism: str = _period(lambda p, m, r: p.mechanism)
    lambda_b_prime_jpy_per_kwh: Decimal | None = _period(lambda p, m, r: p.buy_limit_jpy_per_kwh)
    lambda_s_prime_jpy_per_kwh: Decimal | None = _period(lambda p, m, r: p.sell_limit_jpy_per_kwh)
    supply_kwh: Decimal | None = _period(lambda p, m, r: p.supply_kwh)
    demand_kwh: Decimal | None = _period(lambda p, m, r: p.demand_kwh)
    market_terms_from: str | None = _period(lambda p, m, r: p.market_terms_from)
    flags: tuple[str, ...] = _period(lambda p, m, r: p.flags)


@dataclass(frozen=True)
class Column:
    """An exported column: its name, Python type, decimal places (decimals only), nullability."""

    name: str
    kind: type
    scale: int | None
    nullable: bool
    source: _Getter


def _scale(name: str) -> int:
    if name.endswith("_kwh") and not name.endswith("_per_kwh"):
        return ENERGY_SCALE
    if name.endswith(("_jpy", "_jpy_per_kwh")):
        return MONEY_SCALE
    raise TypeError(f"decimal column '{name}' has no unit suffix (_kwh, _jpy, _jpy_per_kwh)")


def _columns() -> tuple[Column, ...]:
    hints = typing.get_type_hints(PeriodMemberRow)
    member_fields = {f.name for f in fields(MemberLine)}
    out = []
    for f in fields(PeriodMemberRow):
        hint, nullable = hints[f.name], False
        args = typing.get_args(hint)
        if type(None) in args:  # X | None
            hint, nullable = next(a for a in args if a is not type(None)), True
        kind = typing.get_origin(hint) or hint
        source = f.metadata.get("source")
        if source is None:
            if f.name not in member_fields:
                raise TypeError(f"column '{f.name}' is neither a MemberLine field nor given a source")
            source = _member_attribute(f.name)
        out.append(Column(f.name, kind, _scale(f.name) if kind is Decimal else None, nullable, source))
    return tuple(out)


def _member_attribute(name: str) -> _Getter:
    return lambda p, m, r: getattr(m, name)


#: The exported columns, in order.
COLUMNS: tuple[Column, ...] = _columns()


class ExportValueError(ValueError):
    """A ledger value cannot be exported exactly (more decimal places than its column keeps)."""


def _exact(value: Decimal, column: Column, where: str) -> Decimal:
    quantum = Decimal(1).scaleb(-(column.scale or 0))
    fixed = value.quantize(quantum)
    if fixed != value:
        raise ExportValueError(
            f"{where}: {column.name} = {value} has more than {column.scale} decimal places"
        )
    return fixed


def period_rows(settlement: PeriodSettlement, revision: int, member_id: str | None = None) -> list[PeriodMemberRow]:
    """The rows of one period's settlement at ``revision``, one per member (in ledger order).

    Parameters
    ----------
    settlement : PeriodSettlement
        The current settlement of the period, as read from the ledger.
    revision : int
        Its revision (1 for the first settlement, +1 per correction).
    member_id : str, optional
        Only this member's row.

    Raises
    ------
    ExportValueError
        A decimal has more places than its column keeps (it would not be exact).
    """
    rows = []
    for line in settlement.members:
        if member_id is not None and line.member_id != member_id:
            continue
        where = f"period {settlement.start_utc.astimezone(JST).isoformat()} member {line.member_id}"
        values = {}
        for column in COLUMNS:
            value = column.source(settlement, line, revision)
            if column.kind is Decimal and value is not None:
                value = _exact(value, column, where)
            values[column.name] = value
        rows.append(PeriodMemberRow(**values))
    return rows


def ledger_rows(
    settlements: Iterable[tuple[PeriodSettlement, int]], member_id: str | None = None
) -> Iterator[PeriodMemberRow]:
    """Rows of ``(settlement, revision)`` pairs in the order given (period, then member)."""
    for settlement, revision in settlements:
        yield from period_rows(settlement, revision, member_id)


def csv_header() -> list[str]:
    """The column names, in order."""
    return [c.name for c in COLUMNS]


def csv_cells(row: PeriodMemberRow) -> list[str]:
    """One row as CSV cells: exact fixed-point decimals, ISO 8601 times with +09:00.

    An absent value is an empty cell; flags are joined with :data:`FLAG_SEPARATOR`.
    """
    return [_cell(getattr(row, c.name)) for c in COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:f}"  # never an exponent ("0E-6"): the digits as kept
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return FLAG_SEPARATOR.join(value)
    return str(value)


def arrow_table(rows: Iterable[PeriodMemberRow], metadata: dict[str, str] | None = None) -> Any:
    """The rows as a ``pyarrow.Table`` with exact types (see :func:`arrow_schema`)."""
    import pyarrow as pa

    rows = list(rows)
    schema = arrow_schema(metadata)
    arrays = [pa.array([getattr(r, c.name) for r in rows], type=schema.field(c.name).type) for c in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_schema(metadata: dict[str, str] | None = None) -> Any:
    """Parquet/Arrow types: ``decimal128(18, scale)`` for energy, money and prices, a
    millisecond timestamp in Asia/Tokyo (Parquet has no seconds unit) for the period start, ``int32`` revision,
    strings for ids, a list of strings for flags."""
    import pyarrow as pa

    def arrow_type(column: Column) -> Any:
        if column.kind is Decimal:
            return pa.decimal128(DECIMAL_PRECISION, column.scale)
        if column.kind is dt.datetime:
            return pa.timestamp("ms", tz="Asia/Tokyo")
        if column.kind is int:
            return pa.int32()
        if column.kind is tuple:
            return pa.list_(pa.string())
        return pa.string()

    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in COLUMNS], metadata=metadata
    )
